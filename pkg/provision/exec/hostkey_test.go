package exec_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// The file store: Add refuses a different key of a type the host has
// (nothing written), takes one the host has already without writing, and
// Forget removes the host's lines, plain or hashed, and no other.
func TestFileKnownHosts(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "known_hosts")
	f := exec.FileKnownHosts{File: file}
	k1, k2, k3 := testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t)
	host := "[10.0.0.2]:2222"
	if wrote, err := f.Add(ctx, host, k1); err != nil || !wrote {
		t.Fatalf("first key: %v %v", wrote, err)
	}
	if wrote, err := f.Add(ctx, host, k1); err != nil || wrote {
		t.Fatalf("the same key again: %v %v", wrote, err)
	}
	before, _ := os.ReadFile(file)
	_, err := f.Add(ctx, host, k2)
	var kc *exec.KeyConflictError
	if !errors.As(err, &kc) || len(kc.Known) != 1 || !exec.SameKey(kc.Known[0].Key, k1) || kc.Known[0].Where != file+" line 1" {
		t.Fatalf("a changed key: %v", err)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Errorf("a refused key was written: %q", after)
	}
	// A key of another type is no first key either: Add is the first
	// contact's, which another connection made meanwhile (the dial refuses
	// any key the host's known keys lack).
	_, err = f.Add(ctx, host, testenv.NewECDSAPublicKey(t))
	if !errors.As(err, &kc) || len(kc.Known) != 1 || !exec.SameKey(kc.Known[0].Key, k1) {
		t.Fatalf("a key of another type: %v", err)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Errorf("a refused key of another type was written: %q", after)
	}
	// Another host, plainly and hashed.
	hashed := knownhosts.Line([]string{knownhosts.HashHostname(host)}, k3)
	other := knownhosts.Line([]string{"web3"}, k3)
	if err := os.WriteFile(file, append(before, []byte(hashed+"\n"+other+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := f.Keys(ctx, host)
	if err != nil || len(keys) != 2 || !exec.SameKey(keys[0].Key, k1) || !exec.SameKey(keys[1].Key, k3) {
		t.Fatalf("keys of %s: %v %v", host, keys, err)
	}
	if n, err := f.Forget(ctx, host); err != nil || n != 2 {
		t.Fatalf("Forget: %d lines, %v; want 2 (plain, hashed)", n, err)
	}
	if b, _ := os.ReadFile(file); string(b) != other+"\n" {
		t.Errorf("after Forget: %q, want only the other host's line", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after Forget: %v", fi.Mode().Perm())
	}
	if keys, err := f.Keys(ctx, host); err != nil || len(keys) != 0 {
		t.Fatalf("keys after Forget: %v %v", keys, err)
	}
}

// memKnownHosts is a KnownHosts of another kind than the file: a map,
// whose Add can be made to lose a race to another key.
type memKnownHosts struct {
	mu     sync.Mutex
	keys   map[string][]exec.KnownKey
	winner ssh.PublicKey // set: Add finds this key recorded first
}

func (m *memKnownHosts) String() string { return "the test's store" }
func (m *memKnownHosts) Keys(_ context.Context, host string) ([]exec.KnownKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[host], nil
}
func (m *memKnownHosts) Add(_ context.Context, host string, key ssh.PublicKey) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.winner != nil {
		w := exec.KnownKey{Key: m.winner, Where: "recorded by master mb"}
		m.keys[host] = []exec.KnownKey{w}
		return false, &exec.KeyConflictError{Host: host, Known: []exec.KnownKey{w}}
	}
	m.keys[host] = append(m.keys[host], exec.KnownKey{Key: key, Where: "recorded by master ma"})
	return true, nil
}
func (m *memKnownHosts) Forget(_ context.Context, host string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.keys[host])
	delete(m.keys, host)
	return n, nil
}

// A connection with a store of its own (SSHConfig.KnownHosts) checks and
// records keys there, never in KnownHostsFile; a changed key's hint is
// neutral (forget the old key, record the new) with the server's edit as
// its action; a first key that lost the race to another master's is
// refused as changed, naming the winner.
func TestSSHKnownHostsStore(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	m := &memKnownHosts{keys: map[string][]exec.KnownKey{}}
	use := func(accept bool) func(*exec.SSHConfig) {
		return func(c *exec.SSHConfig) {
			c.KnownHostsFile = file
			c.KnownHosts = m
			c.AcceptNewHostKey = accept
			c.Name = "web2"
		}
	}
	_, err := dial(t, srv, use(false))
	wantErr(t, err, exec.ErrHostKey, "not known", "not in the test's store")
	var logged []string
	mustDial(t, srv, func(c *exec.SSHConfig) {
		use(true)(c)
		c.Logf = func(f string, a ...any) { logged = append(logged, f) }
	})
	host := knownhosts.Normalize(srv.Addr())
	if keys := m.keys[host]; len(keys) != 1 || !exec.SameKey(keys[0].Key, srv.HostKey) || len(logged) != 1 {
		t.Fatalf("after accepting: %v (logged %q)", keys, logged)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store's key was written to the file: %v", err)
	}
	mustDial(t, srv, use(false))

	// Another key known: changed.
	old := testenv.NewPublicKey(t)
	m.keys[host] = []exec.KnownKey{{Key: old, Where: "recorded by master mb"}}
	for _, accept := range []bool{false, true} {
		_, err := dial(t, srv, use(accept))
		wantErr(t, err, exec.ErrHostKey, "CHANGED", "the test's store has", ssh.FingerprintSHA256(old), "recorded by master mb",
			ssh.FingerprintSHA256(srv.HostKey), "forget the server's old host key and record the new one")
		if strings.Contains(err.Error(), "ssh-keygen") {
			t.Errorf("the hint names ssh-keygen, which cannot change the store: %v", err)
		}
		var fix interface{ Fix() []entities.Action }
		if !errors.As(err, &fix) || len(fix.Fix()) != 1 || fix.Fix()[0].Target != "web2" || len(fix.Fix()[0].Args) != 2 ||
			fix.Fix()[0].Args[0].Name != "forget-host-key" || fix.Fix()[0].Args[1].Name != "accept-host-key" {
			t.Errorf("the fix is not the server's edit forgetting and accepting: %v", fix.Fix())
		}
	}

	// First contact lost to another master's key.
	m.keys = map[string][]exec.KnownKey{}
	m.winner = old
	_, err = dial(t, srv, use(true))
	wantErr(t, err, exec.ErrHostKey, "CHANGED", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(srv.HostKey))
}
