package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Deploy users of remote servers with less than SSHTestUser's sudo:
// created on first use (EnsureDeployUser), each in the web server's
// group (www-data), as docs/remote-servers.md sets the deploy user up.
// To remove them: userdel -r NAME && rm -f /etc/sudoers.d/NAME
const (
	// NoSudoUser has no sudo rule at all.
	NoSudoUser = "aegir-test-nosudo"
	// HelperUser may run, as root, only a helper that InstallHelper put in
	// HelperDir.
	HelperUser = "aegir-test-priv"
)

// HelperDir holds the helpers of tests (InstallHelper): root's, so that
// only root makes the directories its sudo rule names.
const HelperDir = "/run/aegir-test-priv"

// helperRule is HelperUser's one sudo rule.
const helperRule = HelperUser + " ALL=(root) NOPASSWD: " + HelperDir + "/*/aegir-priv\n"

// EnsureDeployUser creates name (NoSudoUser or HelperUser) and its sudo
// rule (none for NoSudoUser) if they are missing, as EnsureSSHTestUser.
func EnsureDeployUser(t testing.TB, name string) {
	t.Helper()
	ensureUserMu.Lock()
	defer ensureUserMu.Unlock()
	unlock := lockUsers(t)
	defer unlock()
	rule := map[string]string{NoSudoUser: "", HelperUser: helperRule}
	r, ok := rule[name]
	if !ok {
		t.Fatalf("testenv: %s is not a deploy user of the tests", name)
	}
	if _, err := user.Lookup(name); err != nil {
		needRoot(t, "the system user "+name)
		out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", "--password", "*",
			"--groups", "www-data", "--comment", "aegir test deploy user (SSH tests)", name).CombinedOutput()
		if err != nil {
			t.Fatalf("testenv: useradd %s: %v: %s", name, err, out)
		}
	}
	sudoers := "/etc/sudoers.d/" + name
	old, err := os.ReadFile(sudoers)
	switch {
	case r == "" && err == nil:
		needRoot(t, "removing "+sudoers)
		if err := os.Remove(sudoers); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	case r != "" && (err != nil || !bytes.Equal(old, []byte(r))):
		needRoot(t, sudoers)
		writeFile(t, sudoers, []byte(r), 0o440)
	}
}

func needRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("testenv: %s: only root can make it; run the tests as root (make test)", what)
	}
}

// lockUsers serialises the creation of users between test processes.
func lockUsers(t testing.TB) func() {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "aegir-testenv-user.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("testenv: locking %s: %v", lock.Name(), err)
	}
	return func() { syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); lock.Close() }
}

// InstallHelper installs the running test binary as a privileged helper,
// root's, at HelperDir/ID/aegir-priv, with config as its priv.conf beside
// it, and returns its path; both go when the test ends. The test's
// TestMain runs the binary as the helper when it is started by that name
// (privhelper.Invoked), with HelperConfig as its configuration.
func InstallHelper(t testing.TB, config string) string {
	t.Helper()
	needRoot(t, HelperDir)
	if err := os.MkdirAll(HelperDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir, err := os.MkdirTemp(HelperDir, "")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer in.Close()
	p := filepath.Join(dir, "aegir-priv")
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("testenv: copying the test binary to %s: %v", p, err)
	}
	writeFile(t, HelperConfig(p), []byte(config), 0o644)
	return p
}

// HelperConfig is the configuration of the helper at exe (InstallHelper).
func HelperConfig(exe string) string { return filepath.Join(filepath.Dir(exe), "priv.conf") }

// AsUser runs argv as the system user name (its groups too) and returns
// its combined output and exit status.
func AsUser(t testing.TB, name string, argv ...string) (string, int) {
	t.Helper()
	out, err := exec.Command("runuser", append([]string{"-u", name, "--"}, argv...)...).CombinedOutput()
	var xe *exec.ExitError
	if err == nil {
		return string(out), 0
	}
	if !errors.As(err, &xe) {
		t.Fatalf("testenv: runuser %s: %v", name, err)
	}
	return string(out), xe.ExitCode()
}

// ReloadOnTouch reloads w as root (its ReloadCmd) each time trigger's
// modification time changes, until the test ends: what a root-owned
// systemd path unit does for a deploy user without any sudo rule
// (docs/remote-servers.md). trigger is created for owner, who touches it
// (the server's --http-restart-cmd).
func ReloadOnTouch(t testing.TB, w *Web, trigger, owner string) {
	t.Helper()
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	u, err := user.Lookup(owner)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	var uid, gid int
	fmt.Sscan(u.Uid, &uid)
	fmt.Sscan(u.Gid, &gid)
	if err := os.Chown(trigger, uid, gid); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	fi, _ := os.Stat(trigger)
	last := fi.ModTime()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if fi, err := os.Stat(trigger); err == nil && !fi.ModTime().Equal(last) {
				last = fi.ModTime()
				if out, err := exec.Command("sh", "-c", w.ReloadCmd).CombinedOutput(); err != nil {
					t.Logf("testenv: reload on touch: %v: %s", err, out)
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
