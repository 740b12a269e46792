package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// poolFor starts a private sshd and a pool whose known_hosts knows it.
func poolFor(t *testing.T) (*Pool, provision.ServerRef, *testenv.SSHD, *atomic.Int32) {
	t.Helper()
	srv := testenv.StartSSHD(t)
	home := t.TempDir()
	b, err := os.ReadFile(srv.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "known_hosts"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := NewPool(home)
	var dials atomic.Int32
	dial := p.Dial
	p.Dial = func(ctx context.Context, cfg exec.SSHConfig) (Executor, error) {
		dials.Add(1)
		return dial(ctx, cfg)
	}
	t.Cleanup(p.Close)
	ref := provision.ServerRef{Name: "remote1", Host: srv.Host, SSHPort: srv.Port, SSHUser: srv.User, SSHKey: srv.KeyFile}
	return p, ref, srv, &dials
}

// One connection per server, shared by parallel callers; a connection
// that died is replaced, and what had not started runs on the new one.
func TestPoolSharesAndReconnects(t *testing.T) {
	t.Parallel()
	p, ref, _, dials := poolFor(t)
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, err := p.Connect(ctx, ref)
			if err != nil {
				t.Error(err)
				return
			}
			if res, err := ex.Run(ctx, exec.Command{Name: "id", Args: []string{"-un"}}); err != nil || strings.TrimSpace(string(res.Stdout)) != testenv.SSHTestUser {
				t.Errorf("id -un: %q, %v", res.Stdout, err)
			}
		}()
	}
	wg.Wait()
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections for 12 parallel tasks on one server, want 1", n)
	}

	ex, _ := p.Connect(ctx, ref)
	// The connection dies under the pool (as when a firewall drops it).
	pc := ex.(*poolConn)
	pc.mu.Lock()
	_ = pc.ex.Close()
	pc.mu.Unlock()

	res, err := ex.Run(ctx, exec.Command{Name: "echo", Args: []string{"again"}})
	if err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("a command after the connection died: %q, %v", res.Stdout, err)
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d connections after one died, want 2", n)
	}
	// Files too: an idempotent operation is repeated on the new connection.
	pc.mu.Lock()
	_ = pc.ex.Close()
	pc.mu.Unlock()
	if _, err := ex.Stat(ctx, "/etc/hostname"); err != nil {
		t.Fatalf("stat after the connection died: %v", err)
	}
	// A command with input is not repeated (its input may be half read):
	// it fails, and the next one gets a new connection.
	pc.mu.Lock()
	_ = pc.ex.Close()
	pc.mu.Unlock()
	_, err = ex.Run(ctx, exec.Command{Name: "cat", Stdin: strings.NewReader("x")})
	if !errors.Is(err, exec.ErrUnreachable) || !strings.Contains(err.Error(), "the next step reconnects") {
		t.Fatalf("a command with input on a dead connection: %v", err)
	}
	if _, err := ex.Run(ctx, exec.Command{Name: "true"}); err != nil {
		t.Fatalf("the next command: %v", err)
	}
	if n := dials.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
	// A failing command on a live connection is just a failure.
	if _, err := ex.Run(ctx, exec.Command{Name: "false"}); err == nil {
		t.Fatal("false succeeded")
	}
	if n := dials.Load(); n != 4 {
		t.Fatalf("a failed command redialled: %d connections", n)
	}
}

func init() {
	// It logs the config directories of its site and target.
	Register("test.configdir", func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error) {
		env.Logf(provision.LevelInfo, "%s %s", c.ConfigDir(), c.AtTarget().ConfigDir())
		return nil, nil
	})
}

// lastLine is the message of res's last log line.
func lastLine(res *provision.Result) string {
	if len(res.Log) == 0 {
		return ""
	}
	return res.Log[len(res.Log)-1].Message
}

// A remote web server whose record names no aegir home gets .aegir in
// its SSH user's home; a local one the master's home.
func TestRunResolvesRemoteHome(t *testing.T) {
	t.Parallel()
	p, ref, _, _ := poolFor(t)
	c := &provision.Job{Task: "test.configdir",
		Site:   provision.SiteSpec{Web: provision.WebSpec{ServerRef: provision.ServerRef{Name: "web2", Host: ref.Host, SSHUser: ref.SSHUser, SSHPort: ref.SSHPort, SSHKey: ref.SSHKey}, Type: "nginx"}},
		Target: &provision.SiteSpec{Domain: "a.test", Platform: provision.PlatformSpec{Root: "/srv/p"}, Web: provision.WebSpec{ServerRef: provision.ServerRef{Name: "web1", Host: "localhost"}, Type: "nginx"}}}
	res := Run(context.Background(), "/master/home", c, nil, p)
	if res.Status != provision.StatusSuccess {
		t.Fatalf("%s: %s", res.Status, res.Error)
	}
	if want := "/home/" + testenv.SSHTestUser + "/.aegir/config/web2 /master/home/config/web1"; lastLine(res) != want {
		t.Errorf("config dirs %+v, want %s", res.Log, want)
	}
	// Given, it stays.
	c2 := *c
	c2.Site.Web.Home = "/srv/aegir"
	if res := Run(context.Background(), "/master/home", &c2, nil, p); !strings.HasPrefix(lastLine(res), "/srv/aegir/config/web2 ") {
		t.Errorf("config dir with a remote home given: %+v", res.Log)
	}
}
