package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// aegir runs the command line in-process with AEGIR_HOME=home, as a
// script does: with -y, since nothing is on its input to answer a question.
func aegir(t *testing.T, home string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"--home", home, "-y"}, args...), cli.IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// must runs aegir and fails the test unless it exits 0.
func must(t *testing.T, home string, args ...string) string {
	t.Helper()
	out, errs, code := aegir(t, home, args...)
	if code != 0 {
		t.Fatalf("aegir %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// newHome makes an aegir home the web server's workers can pass through.
// Its sites' logs and its logrotate file are the test's.
func newHome(t *testing.T) string {
	dir := testenv.PublicDir(t)
	home := filepath.Join(dir, "home")
	must(t, home, "init")
	f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\nphp_fpm:\n  runtime_dir: %s\n  logrotate_file: %s\n", filepath.Join(dir, "runtime"), filepath.Join(dir, "logrotate.conf"))
	return home
}

type service struct {
	Kind, Type, Status, Version, Message string
}

func serverServices(t *testing.T, home, name string) map[string]service {
	t.Helper()
	var s struct{ Services []service }
	if err := json.Unmarshal([]byte(must(t, home, "server", "show", name, "--format", "json")), &s); err != nil {
		t.Fatal(err)
	}
	m := map[string]service{}
	for _, sv := range s.Services {
		m[sv.Kind] = sv
	}
	return m
}

// Server verify against a real nginx, MariaDB and PostgreSQL: versions are
// recorded, the include file is written; faults fail with what and how.
func TestServerVerifyReal(t *testing.T) {
	home := newHome(t)
	ng := testenv.StartNginx(t, filepath.Join(home, "config", "web1"))
	must(t, home, "server", "add", "web1", "--host", "localhost",
		"--http", "nginx", "--http-port", itoa(ng.Port), "--http-listen-ip", "127.0.0.1", "--http-test-cmd", ng.TestCmd, "--http-restart-cmd", ng.ReloadCmd,
		"--db", "mariadb", "--db-host", "127.0.0.1")
	sv := serverServices(t, home, "web1")
	if sv["http"].Status != "enabled" || !strings.HasPrefix(sv["http"].Version, "1.") {
		t.Errorf("http service after verify: %+v", sv["http"])
	}
	if sv["db"].Status != "enabled" || !strings.Contains(sv["db"].Version, "MariaDB") {
		t.Errorf("db service after verify: %+v", sv["db"])
	}
	if !strings.Contains(sv["http"].Message, "include "+filepath.Join(home, "config", "web1", "nginx.conf")) {
		t.Errorf("http message does not give the include line: %q", sv["http"].Message)
	}

	must(t, home, "server", "add", "pg1", "--host", "localhost", "--db", "postgresql", "--db-host", "127.0.0.1")
	if sv := serverServices(t, home, "pg1"); sv["db"].Status != "enabled" || !strings.Contains(sv["db"].Version, "15") {
		t.Errorf("postgresql service after verify: %+v", sv["db"])
	}

	// A database server that does not answer: the task fails, says so, and
	// the service is marked error.
	port := testenv.FreePort(t)
	_, errs, code := aegir(t, home, "server", "add", "db2", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1", "--db-port", itoa(port))
	if code != cli.ExitFailed {
		t.Fatalf("unreachable db: exit %d, want 1\n%s", code, errs)
	}
	if !strings.Contains(errs, "hint: ") || !strings.Contains(strings.ToLower(errs), "127.0.0.1:"+itoa(port)) {
		t.Errorf("unreachable db: message lacks the address or a hint:\n%s", errs)
	}
	if sv := serverServices(t, home, "db2"); sv["db"].Status != "error" {
		t.Errorf("unreachable db service status %q, want error", sv["db"].Status)
	}

	// A web server whose program is missing.
	_, errs, code = aegir(t, home, "server", "add", "web2", "--host", "localhost", "--http", "nginx",
		"--http-test-cmd", "/nonexistent/nginx -t", "--http-restart-cmd", "/nonexistent/nginx -s reload")
	if code != cli.ExitFailed || !strings.Contains(errs, "hint: ") {
		t.Fatalf("missing nginx: exit %d\n%s", code, errs)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A database admin password file its group or others may read is
// refused, as ssh refuses such a private key: exit 2, the chmod that
// fixes it, and no server recorded. Once 0600 it is taken.
func TestAdminPasswordFileMode(t *testing.T) {
	home := newHome(t)
	pw := filepath.Join(t.TempDir(), "db-admin.pw")
	if err := os.WriteFile(pw, []byte("s3cret-admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(pw, mode); err != nil {
			t.Fatal(err)
		}
		_, errs, code := aegir(t, home, "server", "add", "db1", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1",
			"--db-admin-password-file", pw, "--queue")
		if code != cli.ExitUsage || !strings.Contains(errs, "--db-admin-password-file") || !strings.Contains(errs, "chmod 600 "+pw) {
			t.Fatalf("password file of mode %04o: exit %d, want 2 with the chmod that fixes it:\n%s", mode, code, errs)
		}
		if strings.Contains(errs, "s3cret") {
			t.Fatalf("the refusal printed the password:\n%s", errs)
		}
		if out := must(t, home, "server", "list", "--format", "csv"); strings.Contains(out, "db1") {
			t.Fatalf("a refused server was recorded:\n%s", out)
		}
	}
	if err := os.Chmod(pw, 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, home, "server", "add", "db1", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1",
		"--db-admin-password-file", pw, "--queue")
	// server edit checks it the same way.
	if err := os.Chmod(pw, 0o660); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, home, "server", "edit", "db1", "--db-admin-password-file", pw, "--queue"); code != cli.ExitUsage || !strings.Contains(errs, "chmod 600") {
		t.Fatalf("server edit with a group-readable password file: exit %d\n%s", code, errs)
	}
}
