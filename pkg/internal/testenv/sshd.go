package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHTestUser is the system user the sshd fixture logs in as. EnsureSSHTestUser
// creates it on first use (useradd, home /home/aegir-test, shell /bin/bash,
// no password: key logins only) with a sudo rule
// /etc/sudoers.d/aegir-test that lets it run anything as any user without
// a password, as a remote server's deploy user would for reloads. To remove
// it: userdel -r aegir-test && rm /etc/sudoers.d/aegir-test
const SSHTestUser = "aegir-test"

const sshdProgram = "/usr/sbin/sshd"

// SSHD is a private OpenSSH server on 127.0.0.1, started by StartSSHD.
type SSHD struct {
	Host string // 127.0.0.1
	Port int
	User string // SSHTestUser
	// KeyFile is an ed25519 private key (OpenSSH format, 0600) that logs in
	// as User, and as root when the server allows root logins.
	KeyFile string
	// HostKey is the server's public host key; HostKeyFile its private key
	// (to start another server with the same key).
	HostKey     ssh.PublicKey
	HostKeyFile string
	// KnownHostsLine is the known_hosts line for this server
	// ("[127.0.0.1]:PORT ssh-ed25519 AAAA..."); KnownHostsFile a file
	// holding just that line.
	KnownHostsLine string
	KnownHostsFile string
	Dir            string // the server's own directory: config, keys, pid, log

	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
}

// SSHDOptions changes how StartSSHDWith starts a server.
type SSHDOptions struct {
	Port        int    // 0: a free port
	HostKeyFile string // empty: a new ed25519 host key
	// ExtraHostKeyFiles are more host keys (of other types) the server
	// offers, as a real server has RSA and ECDSA keys beside ed25519.
	ExtraHostKeyFiles []string
	KeyFile           string // client private key to authorize; empty: a new ed25519 key
	RootLogin         bool   // also let root log in with KeyFile
	// User is who logs in: SSHTestUser when empty, or a deploy user of
	// EnsureDeployUser (NoSudoUser, HelperUser).
	User string
}

// StartSSHD starts a private sshd on 127.0.0.1 and a free port, with its
// own host key and a fresh client key authorized for SSHTestUser. It
// stops when the test ends.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	return StartSSHDWith(t, SSHDOptions{})
}

// StartSSHDWith starts a private sshd as StartSSHD does, with options.
func StartSSHDWith(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	Need(t, sshdProgram)
	EnsureSSHTestUser(t)
	if o.User == "" {
		o.User = SSHTestUser
	} else {
		EnsureDeployUser(t, o.User)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("testenv: sshd: %v", err)
	}
	// Not t.TempDir (0700): sshd reads authorized_keys as the test user.
	// Private keys in it are 0600.
	dir, err := os.MkdirTemp("", "aegir-sshd-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("testenv: sshd: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &SSHD{Host: "127.0.0.1", User: o.User, Dir: dir}

	s.HostKeyFile = o.HostKeyFile
	if s.HostKeyFile == "" {
		s.HostKeyFile = filepath.Join(dir, "ssh_host_ed25519_key")
		writeEd25519Key(t, s.HostKeyFile)
	}
	s.HostKey = publicKeyOf(t, s.HostKeyFile)
	s.KeyFile = o.KeyFile
	if s.KeyFile == "" {
		s.KeyFile = filepath.Join(dir, "id_ed25519")
		writeEd25519Key(t, s.KeyFile)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	writeFile(t, authorized, ssh.MarshalAuthorizedKey(publicKeyOf(t, s.KeyFile)), 0o644)

	for attempt := 0; attempt < 5; attempt++ {
		s.Port = o.Port
		if s.Port == 0 {
			s.Port = FreePort(t)
		}
		if err = s.start(t, authorized, o); err == nil {
			break
		}
		if o.Port != 0 || !strings.Contains(err.Error(), "in use") {
			break // a port taken by another test is worth a retry, nothing else
		}
	}
	if err != nil {
		t.Fatalf("testenv: sshd: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("testenv: sshd log (%s):\n%s", s.Dir, s.Log())
		}
	})

	s.KnownHostsLine = knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))}, s.HostKey)
	s.KnownHostsFile = filepath.Join(dir, "known_hosts")
	writeFile(t, s.KnownHostsFile, []byte(s.KnownHostsLine+"\n"), 0o600)
	return s
}

func (s *SSHD) start(t testing.TB, authorized string, o SSHDOptions) error {
	root := "no"
	users := s.User
	if o.RootLogin {
		root, users = "prohibit-password", s.User+" root"
	}
	conf := filepath.Join(s.Dir, "sshd_config")
	writeFile(t, conf, []byte(fmt.Sprintf(`# aegir test sshd: private instance, loopback only
Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin %s
AllowUsers %s
MaxSessions 10
MaxStartups 100
PrintMotd no
Subsystem sftp internal-sftp
LogLevel VERBOSE
`, s.Port, strings.Join(append([]string{s.HostKeyFile}, o.ExtraHostKeyFiles...), "\nHostKey "), filepath.Join(s.Dir, "sshd.pid"), authorized, root, users)), 0o644)

	// The log goes to a file, not a pipe: the per-connection processes
	// inherit it and may outlive the server.
	s.logFile = filepath.Join(s.Dir, "sshd.log")
	logf, err := os.OpenFile(s.logFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.done = make(chan struct{})
	cmd := exec.Command(sshdProgram, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %v", sshdProgram, err)
	}
	s.cmd = cmd
	go func() { _ = cmd.Wait(); close(s.done) }()

	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start: %s", sshdProgram, strings.TrimSpace(s.Log()))
		default:
		}
		if sshBanner(addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("%s did not answer on %s within 10s: %s", sshdProgram, addr, s.Log())
}

// sshBanner reports whether an SSH server answers on addr. (It might be
// another test's server on a port that was free a moment ago; the check
// on s.done covers that: our sshd then exits, unable to bind.)
func sshBanner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 8)
	n, _ := c.Read(buf)
	return strings.HasPrefix(string(buf[:n]), "SSH-")
}

// Stop stops the server now (it also stops when the test ends). Sessions
// already open stay until their clients close them.
func (s *SSHD) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Log returns what the server has logged so far.
func (s *SSHD) Log() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Addr returns host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// UserTempDir returns a new directory under /tmp owned by the server's User
// (mode 0755), removed when the test ends: a place the test user can write.
func (s *SSHD) UserTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "aegir-sshd-user-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	u, err := user.Lookup(s.User)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(d, uid, gid); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return d
}

var ensureUserMu sync.Mutex

// EnsureSSHTestUser creates SSHTestUser and its sudo rule if they are
// missing. It is idempotent and safe when several test processes call it at
// once (they serialise on a lock file). It needs root.
func EnsureSSHTestUser(t testing.TB) {
	t.Helper()
	ensureUserMu.Lock()
	defer ensureUserMu.Unlock()
	unlock := lockUsers(t)
	defer unlock()

	if _, err := user.Lookup(SSHTestUser); err != nil {
		if os.Geteuid() != 0 {
			t.Fatalf("testenv: the system user %s is missing and only root can create it; run the tests as root (make test)", SSHTestUser)
		}
		// '*': no password, but not locked, so sshd without PAM lets the
		// key log in.
		out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash",
			"--password", "*", "--comment", "aegir test user (SSH tests)", SSHTestUser).CombinedOutput()
		if err != nil {
			t.Fatalf("testenv: useradd %s: %v: %s", SSHTestUser, err, out)
		}
	}
	// In the web server's group, as docs/remote-servers.md sets a deploy
	// user up (a user made before is added).
	if out, err := exec.Command("id", "-nG", SSHTestUser).Output(); err == nil && !slices.Contains(strings.Fields(string(out)), "www-data") {
		needRoot(t, "adding "+SSHTestUser+" to www-data")
		if out, err := exec.Command("usermod", "-aG", "www-data", SSHTestUser).CombinedOutput(); err != nil {
			t.Fatalf("testenv: usermod %s: %v: %s", SSHTestUser, err, out)
		}
	}
	rule := []byte(SSHTestUser + " ALL=(ALL:ALL) NOPASSWD: ALL\n")
	sudoers := "/etc/sudoers.d/" + SSHTestUser
	if old, err := os.ReadFile(sudoers); err != nil || !bytes.Equal(old, rule) {
		if os.Geteuid() != 0 {
			t.Fatalf("testenv: %s is missing and only root can write it; run the tests as root (make test)", sudoers)
		}
		writeFile(t, sudoers, rule, 0o440)
	}
}

// writeEd25519Key writes a new ed25519 private key in OpenSSH format.
func writeEd25519Key(t testing.TB, file string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "aegir test key")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	writeFile(t, file, pem.EncodeToMemory(block), 0o600)
}

// NewECDSAPublicKey returns a new ECDSA (P-256) public key, of no server:
// a host key of another type than NewPublicKey's.
func NewECDSAPublicKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	k, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return k
}

// NewPublicKey returns a new ed25519 public key, of no server: a host
// key another server would have.
func NewPublicKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return k
}

func publicKeyOf(t testing.TB, keyFile string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatalf("testenv: %s: %v", keyFile, err)
	}
	return signer.PublicKey()
}

// writeFile writes a file atomically (temp + rename) with exactly mode.
func writeFile(t testing.TB, name string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := name + ".tmp"
	err := os.WriteFile(tmp, data, mode)
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
