package exec_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/exec/exectest"
)

func TestRemoteCommand(t *testing.T) {
	tests := []struct {
		name string
		c    exec.Command
		want string
	}{
		{"plain", exec.Command{Name: "nginx", Args: []string{"-t"}}, "exec nginx -t"},
		{"quoted", exec.Command{Name: "echo", Args: []string{"a b", "it's", "$HOME", "", "x;y", "*"}},
			`exec echo 'a b' 'it'"'"'s' '$HOME' '' 'x;y' '*'`},
		{"newline", exec.Command{Name: "printf", Args: []string{"a\nb"}}, "exec printf 'a\nb'"},
		{"program with space", exec.Command{Name: "/opt/my tools/run"}, `exec '/opt/my tools/run'`},
		{"dir", exec.Command{Name: "ls", Dir: "/var/www/my site"}, `cd '/var/www/my site' && exec ls`},
		{"env", exec.Command{Name: "drush", Args: []string{"cr"}, Env: []string{"A=1", "B=two words"}},
			`exec env A=1 'B=two words' drush cr`},
		{"user", exec.Command{Name: "id", User: "www-data"}, `exec sudo -n -u www-data -- env id`},
		{"same user", exec.Command{Name: "id", User: "aegir"}, `exec id`},
		{"all", exec.Command{Name: "php", Args: []string{"-r", "echo 1;"}, Dir: "/srv", Env: []string{"X=$y"}, User: "www-data"},
			`cd /srv && exec sudo -n -u www-data -- env 'X=$y' php -r 'echo 1;'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exec.RemoteCommand(tt.c, "aegir"); got != tt.want {
				t.Errorf("RemoteCommand = %s\n                  want %s", got, tt.want)
			}
		})
	}
}

// dial connects to srv as its test user with its key and known_hosts.
func dial(t *testing.T, srv *testenv.SSHD, mod func(*exec.SSHConfig)) (exec.Executor, error) {
	t.Helper()
	cfg := exec.SSHConfig{
		Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile,
		KnownHostsFile: srv.KnownHostsFile, ConnectTimeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	ex, err := exec.DialSSH(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { ex.Close() })
	}
	return ex, err
}

func mustDial(t *testing.T, srv *testenv.SSHD, mod func(*exec.SSHConfig)) exec.Executor {
	t.Helper()
	ex, err := dial(t, srv, mod)
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	return ex
}

func TestSSHConformance(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	// One connection for the whole suite, as one dispatch shares one.
	ex := mustDial(t, srv, nil)
	if want := "aegir-test@127.0.0.1:"; !strings.HasPrefix(ex.Host(), want) || ex.IsLocal() {
		t.Errorf("Host() = %q, IsLocal() = %v", ex.Host(), ex.IsLocal())
	}
	exectest.Run(t, func(t *testing.T) exec.Executor { return ex })
}

func TestSSHConformanceRoot(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHDWith(t, testenv.SSHDOptions{RootLogin: true})
	ex := mustDial(t, srv, func(c *exec.SSHConfig) { c.User = "root" })
	exectest.Run(t, func(t *testing.T) exec.Executor { return ex })
}

// wantErr asserts that err wraps sentinel and says every one of want.
func wantErr(t *testing.T, err, sentinel error, want ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want one wrapping %q", err, sentinel)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
}

func TestSSHUnknownHostKey(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	kh := filepath.Join(t.TempDir(), "sub", "known_hosts")
	_, err := dial(t, srv, func(c *exec.SSHConfig) { c.KnownHostsFile = kh })
	wantErr(t, err, exec.ErrHostKey, "not known", "[127.0.0.1]:", ssh.FingerprintSHA256(srv.HostKey), "record it")
	var fix interface{ Fix() []entities.Action }
	if !errors.As(err, &fix) || len(fix.Fix()) != 1 || fix.Fix()[0].Verb != "server.edit" || len(fix.Fix()[0].Args) != 1 || fix.Fix()[0].Args[0].Name != "accept-host-key" {
		t.Errorf("the error's fix is not the server's edit with accept-host-key: %v", err)
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused key was recorded: stat %s: %v", kh, err)
	}

	// With accept: recorded (file 0600), and the next connection without
	// accept goes through.
	ex := mustDial(t, srv, func(c *exec.SSHConfig) { c.KnownHostsFile = kh; c.AcceptNewHostKey = true })
	if res, err := ex.Run(context.Background(), exec.Command{Name: "id", Args: []string{"-un"}}); err != nil || string(res.Stdout) != "aegir-test\n" {
		t.Fatalf("id -un after accepting: %q, %v", res.Stdout, err)
	}
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != srv.KnownHostsLine+"\n" {
		t.Errorf("known_hosts holds %q, want %q", b, srv.KnownHostsLine+"\n")
	}
	if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts has mode %v, want 0600", fi.Mode().Perm())
	}
	mustDial(t, srv, func(c *exec.SSHConfig) { c.KnownHostsFile = kh })
	mustDial(t, srv, func(c *exec.SSHConfig) { c.KnownHostsFile = kh; c.AcceptNewHostKey = true })
	if b2, _ := os.ReadFile(kh); string(b2) != string(b) {
		t.Errorf("a known key was recorded again: %q", b2)
	}
}

func TestSSHChangedHostKey(t *testing.T) {
	t.Parallel()
	old := testenv.StartSSHD(t)
	kh := old.KnownHostsFile
	mustDial(t, old, nil)
	old.Stop()
	// The "reinstalled" server: same address, new host key.
	srv := testenv.StartSSHDWith(t, testenv.SSHDOptions{Port: old.Port, KeyFile: old.KeyFile})
	for _, accept := range []bool{false, true} {
		_, err := dial(t, srv, func(c *exec.SSHConfig) { c.KnownHostsFile = kh; c.AcceptNewHostKey = accept })
		wantErr(t, err, exec.ErrHostKey, "CHANGED", "[127.0.0.1]:",
			ssh.FingerprintSHA256(old.HostKey), ssh.FingerprintSHA256(srv.HostKey),
			kh+" line 1", "ssh-keygen -R", "intercepting")
	}
	if b, _ := os.ReadFile(kh); string(b) != old.KnownHostsLine+"\n" {
		t.Errorf("known_hosts was changed: %q", b)
	}
}

// newKeyFile writes a fresh ed25519 private key no server knows.
func newKeyFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "id_other")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	writeKey(t, file, priv, "")
	return file
}

func TestSSHWrongKey(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	other := newKeyFile(t)
	_, err := dial(t, srv, func(c *exec.SSHConfig) { c.KeyFile = other })
	wantErr(t, err, exec.ErrAuth, "aegir-test@127.0.0.1:", "refused our key", other, "authorized_keys")

	// A key file that is not a key, and one that is missing.
	_, err = dial(t, srv, func(c *exec.SSHConfig) { c.KeyFile = srv.KnownHostsFile })
	wantErr(t, err, exec.ErrAuth, srv.KnownHostsFile, "not a usable SSH private key", "the server's ssh-key")
	missing := filepath.Join(t.TempDir(), "nope")
	_, err = dial(t, srv, func(c *exec.SSHConfig) { c.KeyFile = missing })
	wantErr(t, err, exec.ErrAuth, missing, "is not on this master: copy it to that path there", "the server's ssh-key")
}

func TestSSHUnreachable(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t) // nothing listens there
	start := time.Now()
	_, err := exec.DialSSH(context.Background(), exec.SSHConfig{
		Host: "127.0.0.1", Port: port, User: "aegir-test",
		KeyFile: newKeyFile(t), KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
	})
	wantErr(t, err, exec.ErrUnreachable, "cannot connect to 127.0.0.1:", "connection refused", "sshd listens on port")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a refused connection took %s to report", d)
	}
}

func TestSSHNotAnSSHServer(t *testing.T) {
	t.Parallel()
	addr := testenv.ServeTCP(t, func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		c.Close()
	})
	_, err := exec.DialSSH(context.Background(), exec.SSHConfig{
		Host: "127.0.0.1", Port: addr.Port, User: "aegir-test",
		KeyFile: newKeyFile(t), KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
	})
	wantErr(t, err, exec.ErrUnreachable, "SSH handshake with aegir-test@127.0.0.1:", "failed", "check that an SSH server listens")
}

// writeKey writes priv as an OpenSSH private key file, encrypted when
// passphrase is set, and returns its public key.
func writeKey(t *testing.T, file string, priv any, passphrase string) ssh.PublicKey {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}

// A server with several host keys, of which known_hosts holds only the
// RSA one, must be asked for that key: not reported as changed.
func TestSSHKnownKeyOfAnotherType(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := filepath.Join(t.TempDir(), "ssh_host_rsa_key")
	rsaPub := writeKey(t, rsaFile, rsaKey, "")
	srv := testenv.StartSSHDWith(t, testenv.SSHDOptions{ExtraHostKeyFiles: []string{rsaFile}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, rsaPub)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := mustDial(t, srv, func(c *exec.SSHConfig) { c.KnownHostsFile = kh })
	if _, err := ex.Run(context.Background(), exec.Command{Name: "true"}); err != nil {
		t.Fatal(err)
	}
	// With only the ed25519 key known, that one is used.
	mustDial(t, srv, nil)
}

func TestSSHPassphraseKey(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	file := filepath.Join(t.TempDir(), "id_locked")
	writeKey(t, file, priv, "secret")
	_, err := exec.DialSSH(context.Background(), exec.SSHConfig{Host: "127.0.0.1", Port: 1, KeyFile: file,
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")})
	wantErr(t, err, exec.ErrAuth, file, "passphrase", "ssh-agent")
}

// A key the server's record names that is not on this master: the error
// names the key, the server and the master (read on another master, it
// says whose copy is missing), and says to copy it to that path there
// (each master needs it there).
func TestSSHKeyNotOnThisMaster(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "id_elsewhere")
	_, err := exec.DialSSH(context.Background(), exec.SSHConfig{Host: "127.0.0.1", Port: 1, KeyFile: file, Name: "rem1", Master: "mb",
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")})
	wantErr(t, err, exec.ErrAuth, "the SSH key "+file+" of server rem1 is not on master mb: copy it to that path there")
	_, err = exec.DialSSH(context.Background(), exec.SSHConfig{Host: "127.0.0.1", Port: 1, KeyFile: file,
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")})
	wantErr(t, err, exec.ErrAuth, "the SSH key "+file+" of server 127.0.0.1 is not on this master")
}

// Without --ssh-key: the keys in ~/.ssh, then the agent. (Not parallel:
// it sets HOME and SSH_AUTH_SOCK.)
func TestSSHDefaultKeysAndAgent(t *testing.T) {
	srv := testenv.StartSSHD(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	noKey := func(c *exec.SSHConfig) { c.KeyFile = "" }
	_, err := dial(t, srv, noKey)
	wantErr(t, err, exec.ErrAuth, "no SSH key", "id_ed25519", "ssh-keygen", "the server's ssh-key")

	// ~/.ssh/id_ed25519
	key, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	def := filepath.Join(home, ".ssh", "id_ed25519")
	if err := os.WriteFile(def, key, 0o600); err != nil {
		t.Fatal(err)
	}
	mustDial(t, srv, noKey)
	if err := os.Remove(def); err != nil {
		t.Fatal(err)
	}

	// The agent (a real ssh-agent holding the key).
	testenv.Need(t, "ssh-agent", "ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := osexec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	add := osexec.Command("ssh-add", srv.KeyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	ex := mustDial(t, srv, noKey)
	if _, err := ex.Run(context.Background(), exec.Command{Name: "true"}); err != nil {
		t.Fatal(err)
	}
}

// A task's commands on a remote server are recorded while they run (the
// session's process group); when the task's process dies, they live on,
// and the rescue kills them through a new connection, as the command's
// user, unless the pid now names another command.
func TestDeadTaskRemoteProcessesAreKilled(t *testing.T) {
	srv := testenv.StartSSHD(t)
	home := t.TempDir()
	task, err := exec.StartTask(home, 3)
	if err != nil {
		t.Fatal(err)
	}
	ex := mustDial(t, srv, nil)
	ctx := exec.WithTask(context.Background(), task)
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(ctx, exec.Command{Name: "sleep", Args: []string{"60"}, Timeout: time.Minute})
		done <- err
	}()
	procs := filepath.Join(exec.TaskDir(home, 3), "processes")
	var record []byte
	for deadline := time.Now().Add(10 * time.Second); !strings.HasPrefix(string(record), "ssh\t"); time.Sleep(10 * time.Millisecond) {
		record, _ = os.ReadFile(procs)
		if time.Now().After(deadline) {
			t.Fatal("the remote command was not recorded")
		}
	}
	// The dispatcher "dies": its connection goes, its record stays as it
	// was while the command ran (no deferred clean-up runs after a kill).
	ex.Close()
	<-done
	dir := exec.TaskDir(home, 3)
	if err := os.Rename(dir, dir+".keep"); err != nil {
		t.Fatal(err)
	}
	task.Close(context.Background())
	if err := os.Rename(dir+".keep", dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(procs, record, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := exec.ClaimDeadTask(home, 3)
	if err != nil {
		t.Fatal(err)
	}
	rps, _ := d.RemoteProcesses(context.Background())
	if len(rps) != 1 || rps[0].Name != "sleep" || rps[0].User != srv.User {
		t.Fatalf("remote processes recorded: %+v", rps)
	}
	pid, _ := strconv.Atoi(rps[0].PID)
	if !testenv.ProcessAlive(pid) {
		t.Fatalf("the remote sleep (pid %d) did not outlive its connection; the test proves nothing", pid)
	}
	ex2 := mustDial(t, srv, nil)
	// A pid that names another command is left alone.
	other := rps[0]
	other.Name = "not-sleep"
	if killed, err := exec.KillRemote(context.Background(), ex2, other); killed || err != nil {
		t.Fatalf("KillRemote of a pid that is another command's: %v %v", killed, err)
	}
	if !testenv.ProcessAlive(pid) {
		t.Fatal("KillRemote killed a process that is not the task's command")
	}
	killRemote(t, ex2, rps[0], pid)
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
}

// A task's directory on a server with no aegir home of its own is found
// by asking the server for its HOME, a command of the task: recording
// that command's process must not wait for TempDir, which waits for it.
func TestTaskDirOnServerWithoutHome(t *testing.T) {
	srv := testenv.StartSSHD(t)
	task, err := exec.StartTask(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close(context.Background())
	ex := mustDial(t, srv, nil)
	ctx, cancel := context.WithTimeout(exec.WithTask(context.Background(), task), 20*time.Second)
	defer cancel()
	dir, err := exec.TempDir(ctx, ex)
	if err != nil || !strings.HasSuffix(dir, "/.aegir/tmp/task-4") {
		t.Fatalf("TempDir: %q, %v", dir, err)
	}
	if fi, err := ex.Stat(ctx, dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the task's directory %s on the server: %v %v", dir, fi, err)
	}
	if again, err := exec.TempDir(ctx, ex); err != nil || again != dir {
		t.Fatalf("TempDir again: %q, %v", again, err)
	}
}

// killRemote kills p through ex (KillRemote) and waits until its process
// pid is gone.
func killRemote(t *testing.T, ex exec.Executor, p exec.RemoteProcess, pid int) {
	t.Helper()
	if killed, err := exec.KillRemote(context.Background(), ex, p); !killed || err != nil {
		t.Fatalf("KillRemote: %v %v", killed, err)
	}
	for deadline := time.Now().Add(5 * time.Second); testenv.ProcessAlive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the remote sleep (pid %d) still runs after KillRemote", pid)
		}
	}
}

// memRecords is an exec.RemoteRecords in memory, as the state keeps them.
type memRecords struct {
	mu   sync.Mutex
	recs map[int64][]exec.RemoteProcess
}

func (m *memRecords) Add(_ context.Context, id int64, ps []exec.RemoteProcess) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		if !slices.Contains(m.recs[id], p) {
			m.recs[id] = append(m.recs[id], p)
		}
	}
	return nil
}

func (m *memRecords) Remove(_ context.Context, id int64, ps []exec.RemoteProcess) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[id] = slices.DeleteFunc(m.recs[id], func(p exec.RemoteProcess) bool { return slices.Contains(ps, p) })
	return nil
}

func (m *memRecords) List(_ context.Context, id int64) ([]exec.RemoteProcess, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs[id]), nil
}

func (m *memRecords) Forget(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, id)
	return nil
}

// With RemoteRecords (the state), a task's commands on remote servers are
// recorded there, not in its directory on the master: the rescue of
// another master, whose home has no directory of the task, reads them,
// kills the command that outlived its dead master, and forgets them. A
// command that ended is no longer recorded, and the task's end forgets
// the rest.
func TestRemoteProcessesInRecords(t *testing.T) {
	srv := testenv.StartSSHD(t)
	recs := &memRecords{recs: map[int64][]exec.RemoteProcess{}}
	home := t.TempDir()
	task, err := exec.StartTask(home, 4)
	if err != nil {
		t.Fatal(err)
	}
	task.KeepRemoteIn(recs)
	ex := mustDial(t, srv, nil)
	ctx := exec.WithTask(context.Background(), task)
	if _, err := ex.Run(ctx, exec.Command{Name: "true"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(ctx, exec.Command{Name: "sleep", Args: []string{"60"}, Timeout: time.Minute})
		done <- err
	}()
	var rps []exec.RemoteProcess
	for deadline := time.Now().Add(10 * time.Second); len(rps) != 1 || rps[0].Name != "sleep"; time.Sleep(10 * time.Millisecond) {
		rps, _ = recs.List(context.Background(), 4)
		if time.Now().After(deadline) {
			t.Fatalf("the remote sleep was not recorded (records %+v)", rps)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(exec.TaskDir(home, 4), "processes")); strings.Contains(string(b), "ssh\t") {
		t.Errorf("the remote command is recorded on the master too: %q", b)
	}
	// The master "dies": its connection goes, its records stay as they
	// were while the command ran (no deferred clean-up runs after a kill).
	ex.Close()
	<-done
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if left, _ := recs.List(context.Background(), 4); len(left) == 0 {
			break // the ended command is forgotten
		}
		if time.Now().After(deadline) {
			t.Fatal("the ended command's record stays")
		}
	}
	if err := recs.Add(context.Background(), 4, rps); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(rps[0].PID)
	if !testenv.ProcessAlive(pid) {
		t.Fatalf("the remote sleep (pid %d) did not outlive its connection; the test proves nothing", pid)
	}
	// Another master's rescue: its own home, the same records.
	d, err := exec.ClaimDeadTask(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	d.Remote = recs
	got, err := d.RemoteProcesses(context.Background())
	if err != nil || len(got) != 1 || got[0] != rps[0] || got[0].User != srv.User {
		t.Fatalf("the rescue's remote processes: %+v %v, want %+v", got, err, rps)
	}
	killRemote(t, mustDial(t, srv, nil), got[0], pid)
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
	if left, _ := recs.List(context.Background(), 4); len(left) != 0 {
		t.Fatalf("records after the rescue: %+v", left)
	}
	// A task that ends forgets its records.
	recs.Add(context.Background(), 4, rps)
	task.Close(context.Background())
	if left, _ := recs.List(context.Background(), 4); len(left) != 0 {
		t.Fatalf("records after the task's end: %+v", left)
	}
}
