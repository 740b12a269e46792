package web_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/web"
)

// inDir runs every command in dir unless it names its own: a login whose
// working directory is dir.
type inDir struct {
	exec.Executor
	dir string
}

func (e inDir) Run(ctx context.Context, c exec.Command) (exec.Result, error) {
	if c.Dir == "" {
		c.Dir = e.dir
	}
	return e.Executor.Run(ctx, c)
}

// A deploy user over SSH has no /usr/sbin on its PATH, and its shell's
// exec looks in the working directory for a name it cannot find: with a
// directory named nginx there, `nginx -v` exits 126. Verify finds
// /usr/sbin/nginx all the same, and the control programs likewise.
func TestVerifyOverSSHFindsSbinPrograms(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	ex, err := exec.DialSSH(context.Background(), exec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User,
		KeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	home := srv.UserTempDir(t)
	for _, n := range []string{"nginx", "apache2ctl"} {
		if err := os.Mkdir(filepath.Join(home, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rex := inDir{ex, home}
	ctx := context.Background()
	if _, err := rex.Run(ctx, exec.Command{Name: "nginx", Args: []string{"-v"}}); err == nil || !strings.Contains(err.Error(), "126") {
		t.Fatalf("the trap is not set: nginx -v in %s: %v", home, err)
	}
	s, err := web.New(rex, web.Config{Type: web.Nginx, ConfigDir: filepath.Join(home, "config"), HTTPPort: testenv.FreePort(t), HTTPSPort: 8443,
		TestCmd: "true", RestartCmd: "true", PHPFPM: "127.0.0.1:9000", Sudo: true, ReloadTimeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No web server runs there: the programs are found, and the wait for
	// the reload of the include file it wrote fails, as it must.
	st, err := s.Verify(ctx)
	if err == nil || !strings.Contains(err.Error(), "serve the new configuration") && !strings.Contains(err.Error(), "serve aegir's configuration") {
		t.Fatalf("Verify over SSH with no web server: %v", err)
	}
	if st.Binary != "/usr/sbin/nginx" || st.Version == "" {
		t.Errorf("Verify found %q version %q, want /usr/sbin/nginx and its version", st.Binary, st.Version)
	}
	if p, err := exec.FindProgram(ctx, rex, "apache2", "apache2ctl"); err != nil || p != "/usr/sbin/apache2" {
		t.Errorf("FindProgram(apache2, apache2ctl) = %q, %v; want /usr/sbin/apache2", p, err)
	}
	if p, err := exec.FindProgram(ctx, rex, "apache2ctl"); err != nil || p != "/usr/sbin/apache2ctl" {
		t.Errorf("FindProgram(apache2ctl) = %q, %v; want /usr/sbin/apache2ctl", p, err)
	}
	// On the PATH first; a missing one is ErrNotFound and says where it looked.
	if p, err := exec.FindProgram(ctx, rex, "aegir-no-such-program", "sh"); err != nil || p != "/usr/bin/sh" && p != "/bin/sh" {
		t.Errorf("FindProgram(..., sh) = %q, %v", p, err)
	}
	_, err = exec.FindProgram(ctx, rex, "aegir-no-such-program")
	if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "/usr/sbin") || !strings.Contains(err.Error(), "aegir-no-such-program") {
		t.Errorf("a missing program: %v", err)
	}
}

// The pool remembers what it found on a server for its life.
func TestPoolRemembersPrograms(t *testing.T) {
	bin := t.TempDir()
	prog := filepath.Join(bin, "aegir-probe-prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	pool := engine.NewPool(t.TempDir())
	defer pool.Close()
	ctx := context.Background()
	ex, err := pool.Connect(ctx, provision.ServerRef{Name: "localhost", Host: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := exec.FindProgram(ctx, ex, "aegir-probe-prog"); err != nil || p != prog {
		t.Fatalf("FindProgram = %q, %v; want %s", p, err, prog)
	}
	os.Remove(prog)
	if _, err := exec.FindProgram(ctx, exec.NewLocal(), "aegir-probe-prog"); !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("without the pool, a removed program: %v", err)
	}
	ex2, _ := pool.Connect(ctx, provision.ServerRef{Name: "localhost", Host: "localhost"})
	if p, err := exec.FindProgram(ctx, ex2, "aegir-probe-prog"); err != nil || p != prog {
		t.Errorf("the pool asked again: %q, %v", p, err)
	}
}
