package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a private PostgreSQL server a test started (StartPostgres):
// its own cluster in a temporary directory, on a free port of 127.0.0.1,
// with password authentication (scram-sha-256) for every connection, unlike
// the system's cluster, which trusts local connections.
type Postgres struct {
	Dir       string // the cluster's directory: data/, the socket, the log
	Host      string // 127.0.0.1
	Port      int
	SocketDir string // the unix socket's directory
	User      string // the superuser: postgres
	Password  string // the superuser's password
}

// StartPostgres starts a private PostgreSQL server for the test (initdb and
// postgres of Debian's postgresql package, run as the postgres system user
// when the test runs as root) and stops it and removes its files when the
// test ends. password is the superuser's; it may hold any character but a
// line break.
func StartPostgres(t testing.TB, password string) *Postgres {
	t.Helper()
	Need(t, "initdb", "postgres")
	dir, err := os.MkdirTemp("", "aegir-pg-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred := postgresCredential(t)
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	p := &Postgres{Dir: dir, Host: "127.0.0.1", Port: FreePort(t), SocketDir: dir, User: "postgres", Password: password}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if cred != nil {
		_ = os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command("initdb", "-D", data, "-U", p.User, "--pwfile="+pwfile, "-A", "scram-sha-256",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)

	var out bytes.Buffer
	cmd := exec.Command("postgres", "-D", data, "-c", "port="+strconv.Itoa(p.Port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40")
	cmd.Stdout, cmd.Stderr = &out, &out
	// Pdeathsig: the server dies with a test binary that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting postgres: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown: ends the sessions
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("testenv: postgres output:\n%s", lastLines(out.String(), 30))
		}
	})
	// postmaster.pid ends with the status line "ready" once the server
	// accepts connections.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("testenv: postgres exited at start: %v\n%s", err, out.String())
		default:
		}
		if b, err := os.ReadFile(filepath.Join(data, "postmaster.pid")); err == nil && strings.Contains(string(b), "\nready") {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: postgres not ready after 15 s\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postgresCredential is the postgres system user when the test runs as
// root (PostgreSQL refuses to run as root), else nil: run as ourselves.
func postgresCredential(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("testenv: no postgres system user (%v); run: sudo scripts/deps.sh", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// String describes the server for messages.
func (p *Postgres) String() string { return fmt.Sprintf("postgres at %s:%d", p.Host, p.Port) }
