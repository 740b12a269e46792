package store

import (
	"context"
	"sync"
	"testing"
)

// TestHostKeys: a key recorded through one master is read through the
// other; recording it again writes nothing; a different key of the same
// type for the host is not written and the recorded one is returned; a key
// of another type is; forgetting a host returns its keys and leaves the
// other hosts'.
func TestHostKeys(t *testing.T) {
	ctx := context.Background()
	a, b := openPair(t)
	k1 := HostKey{Host: "[10.0.0.2]:2222", Type: "ssh-ed25519", Key: "ssh-ed25519 AAAAone", Fingerprint: "SHA256:one", AddedBy: "ma"}
	got, wrote, err := a.AddHostKey(ctx, k1)
	if err != nil || !wrote || got.Key != k1.Key || got.AddedAt.IsZero() {
		t.Fatalf("first key: %+v wrote %v, %v", got, wrote, err)
	}
	if got, wrote, err := b.AddHostKey(ctx, HostKey{Host: k1.Host, Type: k1.Type, Key: k1.Key, Fingerprint: k1.Fingerprint, AddedBy: "mb"}); err != nil || wrote || got.AddedBy != "ma" {
		t.Fatalf("the same key again: %+v wrote %v, %v", got, wrote, err)
	}
	changed := HostKey{Host: k1.Host, Type: "ssh-ed25519", Key: "ssh-ed25519 AAAAtwo", Fingerprint: "SHA256:two", AddedBy: "mb"}
	if got, wrote, err := b.AddHostKey(ctx, changed); err != nil || wrote || got.Key != k1.Key || got.Fingerprint != "SHA256:one" || got.AddedBy != "ma" {
		t.Fatalf("a changed key: %+v wrote %v, %v; want the recorded one back, nothing written", got, wrote, err)
	}
	rsa := HostKey{Host: k1.Host, Type: "ssh-rsa", Key: "ssh-rsa AAAArsa", Fingerprint: "SHA256:rsa", AddedBy: "mb"}
	other := HostKey{Host: "web3", Type: "ssh-ed25519", Key: "ssh-ed25519 AAAAthree", Fingerprint: "SHA256:three"}
	for _, k := range []HostKey{rsa, other} {
		if _, wrote, err := b.AddHostKey(ctx, k); err != nil || !wrote {
			t.Fatalf("%+v: wrote %v, %v", k, wrote, err)
		}
	}
	keys, err := a.HostKeys(ctx, k1.Host)
	if err != nil || len(keys) != 2 || keys[0].Key != k1.Key || keys[1].Key != rsa.Key || keys[0].AddedBy != "ma" || keys[1].Fingerprint != "SHA256:rsa" {
		t.Fatalf("keys of %s: %+v, %v", k1.Host, keys, err)
	}
	if all, err := a.HostKeys(ctx, ""); err != nil || len(all) != 3 {
		t.Fatalf("every key: %+v, %v", all, err)
	}
	gone, err := b.ForgetHostKeys(ctx, k1.Host)
	if err != nil || len(gone) != 2 {
		t.Fatalf("forgetting %s: %+v, %v", k1.Host, gone, err)
	}
	if keys, err := a.HostKeys(ctx, k1.Host); err != nil || len(keys) != 0 {
		t.Fatalf("after forgetting: %+v, %v", keys, err)
	}
	if keys, err := a.HostKeys(ctx, "web3"); err != nil || len(keys) != 1 {
		t.Fatalf("another host after forgetting: %+v, %v", keys, err)
	}
	// Forgotten, a new key is recorded.
	if _, wrote, err := b.AddHostKey(ctx, changed); err != nil || !wrote {
		t.Fatalf("the new key after forgetting: wrote %v, %v", wrote, err)
	}
}

// TestHostKeysFirstContactRace: masters that record different first keys
// of one host at once end with one row, and every one of them is told
// the same key, the one recorded.
func TestHostKeysFirstContactRace(t *testing.T) {
	ctx := context.Background()
	hs := openHandles(t, 4)
	for round := range 10 {
		host := "race" + itoa(int64(round))
		var wg sync.WaitGroup
		got := make([]HostKey, 8)
		wrote := make([]bool, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := HostKey{Host: host, Type: "ssh-ed25519", Key: "ssh-ed25519 AAAA" + itoa(int64(i)), Fingerprint: "SHA256:" + itoa(int64(i)), AddedBy: "m" + itoa(int64(i))}
				got[i], wrote[i], errs[i] = hs[i%len(hs)].AddHostKey(ctx, k)
			}()
		}
		wg.Wait()
		writers := 0
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("round %d, master %d: %v", round, i, errs[i])
			}
			if wrote[i] {
				writers++
			}
			if got[i].Key != got[0].Key {
				t.Errorf("round %d: master %d was told %q, master 0 %q", round, i, got[i].Key, got[0].Key)
			}
		}
		keys, err := hs[0].HostKeys(ctx, host)
		if err != nil || len(keys) != 1 || keys[0].Key != got[0].Key || writers != 1 {
			t.Fatalf("round %d: %d writers, the state has %+v (%v); want one row, the key each was told", round, writers, keys, err)
		}
	}
}
