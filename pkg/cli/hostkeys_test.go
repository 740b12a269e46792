package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	pexec "github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/push"
	"github.com/aegir-project/aegir/pkg/store"
)

// sharedHomes makes two aegir homes on one new state (PostgreSQL with
// AEGIR_TEST_STATE=postgres, else one SQLite file), masters ma and mb.
func sharedHomes(t *testing.T) (a, b, loc string) {
	t.Helper()
	loc = testenv.State(t)
	home := func(name string) string {
		h := newHome(t)
		f, err := os.OpenFile(filepath.Join(h, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "state: %s\nmaster: %s\n", loc, name)
		f.Close()
		must(t, h, "init", "-q")
		return h
	}
	return home("ma"), home("mb"), loc
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// Host keys shared by two masters on one state (not parallel: the master
// names are the process's). Master A's old known_hosts is imported; a
// key accepted through A (server add --accept-host-key) is trusted by B
// without it, B's known_hosts gets it and OpenSSH (rsync's ssh, strict)
// connects with that file; B's own old line for the host, another key,
// is refused with both fingerprints. The server's key changed: refused on
// A and B with the command that replaces it, nothing written. server
// edit --forget-host-key --accept-host-key through B replaces it, the
// edit's verify task logs what it forgot, and A trusts the new key.
func TestHostKeysSharedByMasters(t *testing.T) {
	ctx := context.Background()
	a, b, loc := sharedHomes(t)
	old := testenv.StartSSHD(t)
	host := knownhosts.Normalize(old.Addr())
	other := testenv.NewPublicKey(t)
	aFile, bFile := filepath.Join(a, "known_hosts"), filepath.Join(b, "known_hosts")
	if err := os.WriteFile(aFile, []byte(knownhosts.Line([]string{"web7.example"}, other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// B's file has another key for the host: refused at B's import.
	if err := os.WriteFile(bFile, []byte(knownhosts.Line([]string{host}, other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sshArgs := []string{"--host", old.Host, "--ssh-user", old.User, "--ssh-port", itoa(old.Port), "--ssh-key", old.KeyFile, "--db", "mariadb", "--db-host", "127.0.0.1"}
	must(t, a, append([]string{"server", "add", "s1", "--accept-host-key", "-q"}, sshArgs...)...)
	// The server no longer accepts new keys: B must trust the state's.
	must(t, a, "server", "edit", "s1", "--accept-host-key=false", "-q")
	st, err := store.Open(ctx, loc, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.HostKeys(ctx, "")
	if err != nil || len(keys) != 2 || keys[0].Host != host || keys[0].AddedBy != "ma" || keys[1].Host != "web7.example" {
		t.Fatalf("the state's keys after A: %+v, %v; want the server's (by ma) and web7's, imported", keys, err)
	}

	_, errs, code := aegir(t, b, "server", "verify", "s1")
	if code != 0 {
		t.Fatalf("verify on B: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"warning:", "not imported", ssh.FingerprintSHA256(other), ssh.FingerprintSHA256(old.HostKey), "aegir server edit s1 --forget-host-key --accept-host-key"} {
		if !strings.Contains(errs, want) {
			t.Errorf("B's import does not say %q:\n%s", want, errs)
		}
	}
	if got := readFile(t, bFile); !strings.Contains(got, old.KnownHostsLine+"\n") || strings.Contains(got, knownhosts.Line([]string{host}, other)) {
		t.Errorf("B's known_hosts:\n%s", got)
	}
	if fi, err := os.Stat(bFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("B's known_hosts: %v, %v; want mode 0600", err, fi)
	}
	sshCmd, err := push.SSHCommand(pexec.SSHConfig{Host: old.Host, Port: old.Port, User: old.User, KeyFile: old.KeyFile, KnownHostsFile: bFile, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshCmd[0], append(sshCmd[1:], old.Host, "echo", "hello")...).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("OpenSSH with B's known_hosts: %v\n%s", err, out)
	}

	// The same address, another host key.
	old.Stop()
	srv := testenv.StartSSHDWith(t, testenv.SSHDOptions{Port: old.Port, KeyFile: old.KeyFile})
	beforeA, beforeB := readFile(t, aFile), readFile(t, bFile)
	for _, h := range []string{a, b} {
		_, errs, code := aegir(t, h, "server", "verify", "s1")
		if code != cli.ExitFailed {
			t.Fatalf("verify after the key changed: exit %d\n%s", code, errs)
		}
		for _, want := range []string{"CHANGED", ssh.FingerprintSHA256(old.HostKey), "recorded by master ma", ssh.FingerprintSHA256(srv.HostKey),
			"hint: ", "aegir server edit s1 --forget-host-key --accept-host-key"} {
			if !strings.Contains(errs, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, errs)
			}
		}
		if strings.Contains(errs, "ssh-keygen -R") {
			t.Errorf("the refusal proposes ssh-keygen -R, which the state undoes:\n%s", errs)
		}
	}
	if readFile(t, aFile) != beforeA || readFile(t, bFile) != beforeB {
		t.Errorf("a refusal changed a known_hosts file")
	}
	if keys, _ := st.HostKeys(ctx, host); len(keys) != 1 || keys[0].Fingerprint != ssh.FingerprintSHA256(old.HostKey) {
		t.Errorf("the state's key after the refusals: %+v", keys)
	}

	// Replaced through B.
	_, errs, code = aegir(t, b, "server", "edit", "s1", "--forget-host-key", "--accept-host-key")
	if code != 0 {
		t.Fatalf("server edit --forget-host-key --accept-host-key: exit %d\n%s", code, errs)
	}
	if keys, _ := st.HostKeys(ctx, host); len(keys) != 1 || keys[0].Fingerprint != ssh.FingerprintSHA256(srv.HostKey) || keys[0].AddedBy != "mb" {
		t.Errorf("the state's key after the replacement: %+v", keys)
	}
	tasks, err := st.ListTasks(ctx, store.TaskFilter{TargetKind: entities.TargetServer})
	if err != nil || len(tasks) == 0 {
		t.Fatal(err)
	}
	lines, _, err := st.TaskLog(ctx, tasks[0].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for _, l := range lines {
		log.WriteString(l.Message + "\n")
	}
	for _, want := range []string{"on master mb forgot the host key(s) of " + host, ssh.FingerprintSHA256(old.HostKey), "recorded by master ma", "recorded the SSH host key of " + host} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the edit's verify task (%d) log does not say %q:\n%s", tasks[0].ID, want, log.String())
		}
	}
	if got := readFile(t, bFile); !strings.Contains(got, srv.KnownHostsLine+"\n") || strings.Contains(got, old.KnownHostsLine) {
		t.Errorf("B's known_hosts after the replacement:\n%s", got)
	}
	must(t, a, "server", "edit", "s1", "--accept-host-key=false", "-q")
	must(t, a, "server", "verify", "s1", "-q")
	if got := readFile(t, aFile); !strings.Contains(got, srv.KnownHostsLine+"\n") || strings.Contains(got, old.KnownHostsLine) {
		t.Errorf("A's known_hosts after the replacement:\n%s", got)
	}
}

// --forget-host-key is refused on this machine's server: exit 2.
func TestForgetHostKeyLocal(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	must(t, home, "server", "add", "here", "--host", "localhost", "-q")
	_, errs, code := aegir(t, home, "server", "edit", "here", "--forget-host-key")
	if code != cli.ExitUsage || !strings.Contains(errs, "--forget-host-key") || !strings.Contains(errs, "remote server") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
}

// A known_hosts that cannot be read stops a task before it connects, with
// what to check, not a bare error.
func TestKnownHostsUnreadableHint(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	if err := os.Mkdir(filepath.Join(home, "known_hosts"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, errs, code := aegir(t, home, "server", "add", "web1", "--host", "localhost")
	if code != cli.ExitFailed || !strings.Contains(errs, "importing the SSH host keys of "+filepath.Join(home, "known_hosts")) ||
		!strings.Contains(errs, "hint: check that the state answers") {
		t.Fatalf("a known_hosts that is a directory: exit %d\n%s", code, errs)
	}
}
