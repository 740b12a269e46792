package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestACMEAccounts: an account created through one master is read by
// another, which cannot replace it (its own key is kept nowhere); many
// creating at once end with one; the location is recorded only for the
// key stored; the list leaves the key out; a deleted account is gone.
func TestACMEAccounts(t *testing.T) {
	ctx := context.Background()
	a, b := openPair(t)
	const dir = "https://ca.test/directory"
	if _, err := b.ACMEAccount(ctx, dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no account yet: %v", err)
	}
	keyA, keyB := []byte("-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY-----\n"), []byte("key B")
	got, err := a.CreateACMEAccount(ctx, ACMEAccount{Directory: dir, KeyPEM: keyA, Email: "a@example.org"}, "m1")
	if err != nil || string(got.KeyPEM) != string(keyA) || got.Master != "m1" || got.Created.IsZero() {
		t.Fatalf("first create: %+v, %v", got, err)
	}
	got, err = b.CreateACMEAccount(ctx, ACMEAccount{Directory: dir, KeyPEM: keyB, Location: "https://ca.test/acct/b"}, "m2")
	if err != nil || string(got.KeyPEM) != string(keyA) || got.Master != "m1" || got.Location != "" {
		t.Fatalf("second create answers %+v, %v: want the first one's", got, err)
	}
	if ok, err := b.SetACMEAccount(ctx, dir, keyB, "https://ca.test/acct/b", "b@example.org"); ok || err != nil {
		t.Fatalf("set with another key: %v, %v", ok, err)
	}
	if ok, err := b.SetACMEAccount(ctx, dir, keyA, "https://ca.test/acct/a", "a@example.org"); !ok || err != nil {
		t.Fatalf("set with the stored key: %v, %v", ok, err)
	}
	got, err = a.ACMEAccount(ctx, dir)
	if err != nil || got.Location != "https://ca.test/acct/a" || got.Email != "a@example.org" || string(got.KeyPEM) != string(keyA) {
		t.Fatalf("after set: %+v, %v", got, err)
	}
	list, err := b.ACMEAccounts(ctx)
	if err != nil || len(list) != 1 || list[0].Directory != dir || list[0].Location != got.Location || list[0].KeyPEM != nil {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// Eight at once on another directory: one row, the same for all.
	const other = "https://other.test/dir"
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			got, err := s.CreateACMEAccount(ctx, ACMEAccount{Directory: other, KeyPEM: []byte(fmt.Sprintf("key %d", i))}, fmt.Sprintf("m%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = string(got.KeyPEM)
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("concurrent creates answered different keys: %q", keys)
		}
	}
	if err := a.DeleteACMEAccount(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ACMEAccount(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted account: %v", err)
	}
	if err := a.DeleteACMEAccount(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
}
