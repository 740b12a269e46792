package hosting_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/push"
	"github.com/aegir-project/aegir/pkg/store"
)

// master is one master's view of a shared state: its own store handle
// and its own home's known_hosts.
type master struct {
	kh   *hosting.StateKnownHosts
	file string
}

func twoMasterKeys(t *testing.T) (a, b master, st *store.Store) {
	t.Helper()
	loc := testenv.State(t)
	open := func(name string) master {
		s, err := store.Open(context.Background(), loc, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st = s
		file := filepath.Join(t.TempDir(), "known_hosts")
		return master{kh: &hosting.StateKnownHosts{Store: s, File: file, Master: name}, file: file}
	}
	return open("ma"), open("mb"), st
}

func (m master) cfg(srv *testenv.SSHD, accept bool) exec.SSHConfig {
	return exec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile, KnownHostsFile: m.file,
		KnownHosts: m.kh, AcceptNewHostKey: accept, ConnectTimeout: 5 * time.Second, Name: "web2"}
}

func (m master) dial(t *testing.T, srv *testenv.SSHD, accept bool) (exec.Executor, error) {
	t.Helper()
	ex, err := exec.DialSSH(context.Background(), m.cfg(srv, accept))
	if err == nil {
		t.Cleanup(func() { ex.Close() })
	}
	return ex, err
}

func read(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// Two masters on one state: a key accepted through A is trusted by B
// without accepting, B's known_hosts is written with it (0600) and an
// rsync through B's file goes through; the server's key changed is
// refused by both, nothing written; forgotten through A (the state and
// A's file), B's file loses it at B's next look, and the new key accepted
// through B is trusted by A.
func TestStateKnownHostsTwoMasters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := testenv.StartSSHD(t)
	a, b, st := twoMasterKeys(t)
	if _, err := b.dial(t, old, false); !errors.Is(err, exec.ErrHostKey) || !strings.Contains(err.Error(), "not in the state") {
		t.Fatalf("B before any key: %v", err)
	}
	if _, err := a.dial(t, old, true); err != nil {
		t.Fatalf("A accepting: %v", err)
	}
	host := knownhosts.Normalize(old.Addr())
	keys, err := st.HostKeys(ctx, host)
	if err != nil || len(keys) != 1 || keys[0].AddedBy != "ma" || keys[0].Fingerprint != ssh.FingerprintSHA256(old.HostKey) {
		t.Fatalf("the state after A accepted: %+v, %v", keys, err)
	}
	if !strings.Contains(read(t, a.file), old.KnownHostsLine+"\n") {
		t.Errorf("A's known_hosts lacks the key: %q", read(t, a.file))
	}
	ex, err := b.dial(t, old, false)
	if err != nil {
		t.Fatalf("B without accepting, after A accepted: %v", err)
	}
	if !strings.Contains(read(t, b.file), old.KnownHostsLine+"\n") {
		t.Errorf("B's known_hosts lacks the key: %q", read(t, b.file))
	}
	if fi, err := os.Stat(b.file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("B's known_hosts: %v, %v; want mode 0600", err, fi)
	}
	// OpenSSH (rsync's ssh, host keys checked strictly) trusts B's file.
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "index.php"), []byte("<?php\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(old.UserTempDir(t), "wp")
	if s, err := push.Tree(ctx, ex, src, dst, push.Options{SSH: b.cfg(old, false), Method: push.Rsync}); err != nil || s.Method != push.Rsync {
		t.Fatalf("rsync through B's known_hosts: %+v, %v", s, err)
	}
	if got := read(t, filepath.Join(dst, "index.php")); got != "<?php\n" {
		t.Fatalf("rsync's copy: %q", got)
	}
	ex.Close()

	// The same address, another host key.
	old.Stop()
	srv := testenv.StartSSHDWith(t, testenv.SSHDOptions{Port: old.Port, KeyFile: old.KeyFile})
	beforeA, beforeB := read(t, a.file), read(t, b.file)
	for _, m := range []master{a, b} {
		for _, accept := range []bool{false, true} {
			_, err := m.dial(t, srv, accept)
			if !errors.Is(err, exec.ErrHostKey) {
				t.Fatalf("%s, changed key, accept %v: %v", m.kh.Master, accept, err)
			}
			for _, want := range []string{"CHANGED", ssh.FingerprintSHA256(old.HostKey), "recorded by master ma", ssh.FingerprintSHA256(srv.HostKey), "forget the server's old host key"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s's refusal does not say %q: %v", m.kh.Master, want, err)
				}
			}
		}
	}
	if keys, _ := st.HostKeys(ctx, host); len(keys) != 1 || keys[0].Fingerprint != ssh.FingerprintSHA256(old.HostKey) {
		t.Errorf("the state after the refusals: %+v", keys)
	}
	if read(t, a.file) != beforeA || read(t, b.file) != beforeB {
		t.Errorf("a refusal wrote a known_hosts file:\nA %q\nB %q", read(t, a.file), read(t, b.file))
	}

	// Forgotten through A; recorded anew through B.
	gone, err := a.kh.ForgetKeys(ctx, host)
	if err != nil || len(gone) != 1 {
		t.Fatalf("forgetting: %+v, %v", gone, err)
	}
	if strings.Contains(read(t, a.file), host) {
		t.Errorf("A's known_hosts still has the host: %q", read(t, a.file))
	}
	if _, err := b.dial(t, srv, false); !errors.Is(err, exec.ErrHostKey) || !strings.Contains(err.Error(), "not known") {
		t.Fatalf("B after the forget, not accepting: %v", err)
	}
	if strings.Contains(read(t, b.file), old.KnownHostsLine) {
		t.Errorf("B's known_hosts kept the forgotten key: %q", read(t, b.file))
	}
	if _, err := b.dial(t, srv, true); err != nil {
		t.Fatalf("B accepting the new key: %v", err)
	}
	if _, err := a.dial(t, srv, false); err != nil {
		t.Fatalf("A after B accepted the new key: %v", err)
	}
	if !strings.Contains(read(t, a.file), srv.KnownHostsLine+"\n") {
		t.Errorf("A's known_hosts lacks the new key: %q", read(t, a.file))
	}
}

// A known_hosts from before the state kept host keys is imported on first
// use: its plain lines the state lacks are recorded; a key that conflicts
// with the state's is not, and is reported with both fingerprints; lines
// naming no host plainly (hashed) are kept at the file's end. Once written
// from the state, the file is not imported again: a key forgotten stays
// forgotten.
func TestStateKnownHostsImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, st := twoMasterKeys(t)
	k1, k2, k3, k4 := testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t)
	if _, err := a.kh.Add(ctx, "web3", k3); err != nil {
		t.Fatal(err)
	}
	hashed := knownhosts.Line([]string{knownhosts.HashHostname("secret.example")}, k4)
	// A hashed line of a server's address is imported.
	k6 := testenv.NewPublicKey(t)
	ofServer := knownhosts.Line([]string{knownhosts.HashHostname("[10.0.0.6]:2222")}, k6)
	b.kh.Hosts = []string{"web9", "[10.0.0.6]:2222"}
	old := "# my hosts\n" + knownhosts.Line([]string{"web1", "[10.0.0.1]:2222"}, k1) + "\n" +
		knownhosts.Line([]string{"web3"}, k2) + "\n" + hashed + "\n" + ofServer + "\n"
	if err := os.WriteFile(b.file, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	conflicts, err := b.kh.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || conflicts[0].Host != "web3" {
		t.Fatalf("conflicts: %+v, want web3's", conflicts)
	}
	msg := conflicts[0].String()
	for _, want := range []string{ssh.FingerprintSHA256(k2), ssh.FingerprintSHA256(k3), "recorded by master ma", b.file, "not imported"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the conflict does not say %q: %s", want, msg)
		}
	}
	for host, want := range map[string]ssh.PublicKey{"web1": k1, "[10.0.0.1]:2222": k1, "web3": k3, "[10.0.0.6]:2222": k6} {
		keys, err := st.HostKeys(ctx, host)
		if err != nil || len(keys) != 1 || keys[0].Fingerprint != ssh.FingerprintSHA256(want) {
			t.Errorf("the state's keys of %s: %+v, %v", host, keys, err)
		}
	}
	got := read(t, b.file)
	for _, want := range []string{"web1 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k1))), hashed} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("the file written from the state lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k2)))) || strings.Contains(got, ofServer) {
		t.Errorf("the refused key, or the imported hashed line, is still in the file:\n%s", got)
	}
	if !strings.Contains(got, "[10.0.0.6]:2222 "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k6)))+"\n") {
		t.Errorf("the hashed line imported is not written from the state:\n%s", got)
	}
	if fi, _ := os.Stat(b.file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// Forgotten through A; B's next process does not bring it back.
	if _, err := a.kh.Forget(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	again := &hosting.StateKnownHosts{Store: b.kh.Store, File: b.file, Master: "mb"}
	if c, err := again.Import(ctx); err != nil || len(c) != 0 {
		t.Fatalf("second import: %+v, %v", c, err)
	}
	if keys, _ := st.HostKeys(ctx, "web1"); len(keys) != 0 {
		t.Errorf("the forgotten key came back: %+v", keys)
	}
	if got := read(t, b.file); strings.Contains(got, "web1 ") || !strings.Contains(got, hashed) {
		t.Errorf("B's file after the forget:\n%s", got)
	}

	// A line added by hand at the end (ssh-keyscan >> known_hosts) is
	// recorded at the next look, by a master running since.
	k5 := testenv.NewPublicKey(t)
	f, err := os.OpenFile(b.file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(knownhosts.Line([]string{"web8"}, k5) + "\n")
	f.Close()
	keys, err := again.Keys(ctx, "web8")
	if err != nil || len(keys) != 1 || !exec.SameKey(keys[0].Key, k5) || !strings.Contains(keys[0].Where, "master mb") {
		t.Fatalf("a key added by hand: %+v, %v", keys, err)
	}
	if keys, err := a.kh.Keys(ctx, "web8"); err != nil || len(keys) != 1 {
		t.Fatalf("the other master's keys of web8: %+v, %v", keys, err)
	}
	if got := read(t, b.file); strings.Count(got, "web8 ") != 1 || !strings.HasSuffix(got, "recorded in the state at the next connection.\n") {
		t.Errorf("B's file after the import of a line added by hand:\n%s", got)
	}
}

// A lookup skips the full sync while B's file is as B left it and holds
// the state's keys of the host looked up; it does not hide a change: a
// key A records (or forgets and replaces) for another host is in B's file
// at B's first look at that host, and a line added to B's file by hand
// is imported at B's next lookup of any host.
func TestStateKnownHostsLookupSeesChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, _ := twoMasterKeys(t)
	x, y, z := hosting.HostOf("x.example", 22), hosting.HostOf("y.example", 2222), hosting.HostOf("z.example", 22)
	ky, kx1, kx2, kz := testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t)
	if _, err := b.kh.Add(ctx, y, ky); err != nil {
		t.Fatal(err)
	}
	lookup := func(m master, host string, want ssh.PublicKey) {
		t.Helper()
		keys, err := m.kh.Keys(ctx, host)
		if err != nil || len(keys) != 1 || string(keys[0].Key.Marshal()) != string(want.Marshal()) {
			t.Fatalf("keys of %s: %v, %v", host, keys, err)
		}
	}
	inFile := func(m master, host string, key ssh.PublicKey) bool {
		return strings.Contains(read(t, m.file), host+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
	}
	lookup(b, y, ky)
	if _, err := a.kh.Add(ctx, x, kx1); err != nil {
		t.Fatal(err)
	}
	lookup(b, x, kx1)
	if !inFile(b, x, kx1) {
		t.Fatalf("B's file after B's look at %s, which A recorded:\n%s", x, read(t, b.file))
	}
	if _, err := a.kh.Forget(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := a.kh.Add(ctx, x, kx2); err != nil {
		t.Fatal(err)
	}
	lookup(b, x, kx2)
	if inFile(b, x, kx1) || !inFile(b, x, kx2) {
		t.Fatalf("B's file after %s's key was replaced through A:\n%s", x, read(t, b.file))
	}
	f, err := os.OpenFile(b.file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(knownhosts.Line([]string{z}, kz) + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lookup(b, y, ky)
	lookup(a, z, kz) // imported into the state by B's look at y
}

// Add is a first contact's: a host that has a key of any type recorded by
// then (another master's first contact, made meanwhile) has its key, and
// a first key of another type is refused as a changed one would be, not
// recorded beside it. Masters recording first keys of different types at
// once end with at most one key, and each master told its key was
// recorded finds it in the state.
func TestStateKnownHostsFirstKeyOfAnotherType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, st := twoMasterKeys(t)
	host := hosting.HostOf("web5.example", 22)
	ka, kb := testenv.NewPublicKey(t), testenv.NewECDSAPublicKey(t)
	if wrote, err := a.kh.Add(ctx, host, ka); err != nil || !wrote {
		t.Fatalf("A's first key: %v, %v", wrote, err)
	}
	_, err := b.kh.Add(ctx, host, kb)
	var kc *exec.KeyConflictError
	if !errors.As(err, &kc) || len(kc.Known) != 1 || !exec.SameKey(kc.Known[0].Key, ka) {
		t.Fatalf("B's first key of another type, after A's: %v; want a conflict naming A's", err)
	}
	if keys, err := st.HostKeys(ctx, host); err != nil || len(keys) != 1 || keys[0].AddedBy != "ma" {
		t.Fatalf("the state's keys: %+v, %v; want A's alone", keys, err)
	}
	if strings.Contains(read(t, b.file), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(kb)))) {
		t.Errorf("B's refused key is in B's file:\n%s", read(t, b.file))
	}

	// At once, on several handles, ed25519 and ECDSA keys.
	loc := testenv.State(t)
	var hs []*hosting.StateKnownHosts
	for i := range 4 {
		s, err := store.Open(ctx, loc, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		hs = append(hs, &hosting.StateKnownHosts{Store: s, File: filepath.Join(t.TempDir(), "known_hosts"), Master: "m" + string(rune('a'+i))})
	}
	for round := range 10 {
		host := hosting.HostOf("race"+string(rune('a'+round))+".example", 22)
		keys := make([]ssh.PublicKey, 8)
		wrote := make([]bool, len(keys))
		errs := make([]error, len(keys))
		for i := range keys {
			if i%2 == 0 {
				keys[i] = testenv.NewPublicKey(t)
			} else {
				keys[i] = testenv.NewECDSAPublicKey(t)
			}
		}
		var wg sync.WaitGroup
		for i := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wrote[i], errs[i] = hs[i%len(hs)].Add(ctx, host, keys[i])
			}()
		}
		wg.Wait()
		recs, err := hs[0].Store.HostKeys(ctx, host)
		if err != nil || len(recs) > 1 {
			t.Fatalf("round %d: the state has %+v (%v); want one key at most", round, recs, err)
		}
		for i := range keys {
			if errs[i] != nil && !errors.As(errs[i], &kc) {
				t.Fatalf("round %d, master %d: %v", round, i, errs[i])
			}
			if errs[i] == nil && (len(recs) != 1 || recs[0].Fingerprint != ssh.FingerprintSHA256(keys[i])) {
				t.Errorf("round %d: master %d was told its key was recorded (wrote %v); the state has %+v", round, i, wrote[i], recs)
			}
		}
	}
}

// A state that stops answering mid-dial refuses the connection (nothing
// trusted, nothing recorded) with a message that says what to do: check
// the state answers, then connect again.
func TestStateKnownHostsStateGone(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	s, err := store.Open(context.Background(), testenv.State(t), true)
	if err != nil {
		t.Fatal(err)
	}
	m := master{kh: &hosting.StateKnownHosts{Store: s, File: filepath.Join(t.TempDir(), "known_hosts"), Master: "ma"}}
	m.file = m.kh.File
	s.Close()
	for _, accept := range []bool{false, true} {
		_, err := m.dial(t, srv, accept)
		if !errors.Is(err, exec.ErrHostKey) {
			t.Fatalf("accept %v: %v", accept, err)
		}
		var h interface{ Hint() string }
		if !errors.As(err, &h) || !strings.Contains(h.Hint(), "the state") || !strings.Contains(h.Hint(), "try again") {
			t.Errorf("accept %v: the refusal does not say what to do: %v", accept, err)
		}
	}
}

// A key the master's known_hosts marks @revoked is refused by its
// connections, as it was before the state kept host keys, even when the
// state has it (another master accepted it); and a plain line of a
// revoked key is not imported.
func TestStateKnownHostsRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testenv.StartSSHD(t)
	a, b, st := twoMasterKeys(t)
	if _, err := a.dial(t, srv, true); err != nil {
		t.Fatalf("A accepting: %v", err)
	}
	if _, err := b.dial(t, srv, false); err != nil {
		t.Fatalf("B before the revocation: %v", err)
	}
	revoke := "@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey))) + "\n"
	if err := os.WriteFile(b.file, []byte(read(t, b.file)+revoke), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, accept := range []bool{false, true} {
		_, err := b.dial(t, srv, accept)
		if !errors.Is(err, exec.ErrHostKey) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("B, the key revoked in B's file, accept %v: %v", accept, err)
		}
	}
	if got := read(t, b.file); !strings.Contains(got, revoke) {
		t.Errorf("B's file lost the @revoked line:\n%s", got)
	}

	// An old file: the plain line of a revoked key is not imported.
	k := testenv.NewPublicKey(t)
	old := knownhosts.Line([]string{"web7"}, k) + "\n@revoked web7 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + "\n"
	c := &hosting.StateKnownHosts{Store: st, File: filepath.Join(t.TempDir(), "known_hosts"), Master: "mc"}
	if err := os.WriteFile(c.File, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, err := st.HostKeys(ctx, "web7"); err != nil || len(keys) != 0 {
		t.Errorf("the revoked key was imported: %+v, %v", keys, err)
	}
}

// A line of a file whose host the state has keys of, none of them its
// key, is refused as the dial refuses it (changed), whatever its type:
// imported, every master would trust it. A host new to the state takes
// every key of the file (ssh-keyscan's lines, one of each type).
func TestStateKnownHostsImportAnotherType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, st := twoMasterKeys(t)
	known, other := testenv.NewPublicKey(t), testenv.NewECDSAPublicKey(t)
	if _, err := a.kh.Add(ctx, "web1", known); err != nil {
		t.Fatal(err)
	}
	n1, n2 := testenv.NewPublicKey(t), testenv.NewECDSAPublicKey(t)
	old := knownhosts.Line([]string{"web1"}, other) + "\n" + knownhosts.Line([]string{"new1"}, n1) + "\n" + knownhosts.Line([]string{"new1"}, n2) + "\n"
	if err := os.WriteFile(b.file, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	conflicts, err := b.kh.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || conflicts[0].Host != "web1" || !strings.Contains(conflicts[0].String(), ssh.FingerprintSHA256(other)) ||
		!strings.Contains(conflicts[0].String(), ssh.FingerprintSHA256(known)) {
		t.Fatalf("conflicts: %+v; want web1's key of another type", conflicts)
	}
	if keys, err := st.HostKeys(ctx, "web1"); err != nil || len(keys) != 1 || keys[0].Fingerprint != ssh.FingerprintSHA256(known) {
		t.Errorf("web1's keys: %+v, %v; want A's alone", keys, err)
	}
	if keys, err := st.HostKeys(ctx, "new1"); err != nil || len(keys) != 2 {
		t.Errorf("new1's keys: %+v, %v; want both of the file's", keys, err)
	}
	if strings.Contains(read(t, b.file), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))) {
		t.Errorf("the refused key is in B's file:\n%s", read(t, b.file))
	}
}
