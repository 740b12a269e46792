package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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
// when the test runs as root) and stops it (SIGTERM: once the test's
// sessions are closed) and removes its files when the test ends. password
// is the superuser's; it may hold any character but a line break.
func StartPostgres(t testing.TB, password string) *Postgres {
	t.Helper()
	Need(t, "initdb", "postgres")
	dir, err := os.MkdirTemp("", "aegir-pg-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	asPostgres, owner := postgresUser(t)
	if owner != nil {
		if err := os.Chown(dir, owner[0], owner[1]); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	p := &Postgres{Dir: dir, Host: "127.0.0.1", Port: FreePort(t), SocketDir: dir, User: "postgres", Password: password}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if owner != nil {
		_ = os.Chown(pwfile, owner[0], owner[1])
	}
	data := filepath.Join(dir, "data")
	initdb := slices.Concat(asPostgres, []string{"initdb", "-D", data, "-U", p.User, "--pwfile=" + pwfile, "-A", "scram-sha-256",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"})
	if out, err := exec.Command(initdb[0], initdb[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)

	argv := slices.Concat(asPostgres, []string{"postgres", "-D", data, "-c", "port=" + strconv.Itoa(p.Port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40"})
	// postmaster.pid ends with the status line "ready" once the server
	// accepts connections.
	StartDaemon(t, "postgres", argv, nil, func() error {
		b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "\nready") {
			return errors.New("not ready yet")
		}
		return nil
	})
	return p
}

// postgresUser returns the argv prefix that runs a program as the postgres
// system user, and its uid and gid, when the test runs as root (PostgreSQL
// refuses to run as root); else nothing: run as ourselves. setpriv execs
// the program (no process stays between), and its --pdeathsig survives the
// change of user, so the server dies with a test binary that is killed.
func postgresUser(t testing.TB) (prefix []string, owner []int) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	Need(t, "setpriv")
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("testenv: no postgres system user (%v); run: sudo scripts/deps.sh", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--pdeathsig=KILL", "--"}, []int{uid, gid}
}

// String describes the server for messages.
func (p *Postgres) String() string { return fmt.Sprintf("postgres at %s:%d", p.Host, p.Port) }
