package tasks

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// countingDialer is an SSH executor that counts the tunnels it opens.
type countingDialer struct {
	exec.Executor
	dials *atomic.Int32
}

func (c countingDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.dials.Add(1)
	return c.Executor.(exec.Dialer).Dial(ctx, network, addr)
}

// With db_tunnel, the admin connection to a remote database server goes
// through the SSH connection to its machine (the real MariaDB on the
// sshd's loopback); without, straight. A site on this machine with its
// database there gets grants for this machine's address as the remote
// sees it.
func TestDBServiceTunnel(t *testing.T) {
	srv, ex := sshServer(t)
	ctx := context.Background()
	var dials atomic.Int32
	env := &engine.Env{Connect: func(context.Context, provision.ServerRef) (exec.Executor, error) {
		return countingDialer{ex, &dials}, nil
	}}
	for _, tunnel := range []bool{true, false} {
		c := &provision.Job{Site: provision.SiteSpec{DBServer: provision.DBSpec{Machine: provision.ServerRef{Name: "db2", Host: srv.Host, SSHUser: srv.User, SSHPort: srv.Port},
			Type: "mariadb", Host: "127.0.0.1", Port: 3306, AdminUser: "root", Tunnel: tunnel}}}
		dials.Store(0)
		svc, err := dbService(ctx, env, c)
		if err != nil {
			t.Fatal(err)
		}
		v, err := svc.Verify(ctx)
		svc.Close()
		if err != nil {
			t.Fatalf("tunnel %v: verify: %v", tunnel, err)
		}
		if n := dials.Load(); tunnel && n == 0 || !tunnel && n != 0 {
			t.Errorf("tunnel %v: %d tunnels opened (MariaDB %s)", tunnel, n, v)
		}
		if c.Site.DB.GrantHost != "127.0.0.1" {
			t.Errorf("grant host %q, want 127.0.0.1 (SSH_CLIENT on the database server)", c.Site.DB.GrantHost)
		}
	}
}

// A site on a remote web server (here the sshd, as its deploy user) whose
// grant host the front end gave as the web server's name: the grants are
// for the address the web server reaches the database host from (a
// database server with skip_name_resolve matches only addresses), found
// on the web server; a database host it cannot resolve keeps the name,
// with a warning.
func TestGrantHostOfRemoteWeb(t *testing.T) {
	srv, ex := sshServer(t)
	ctx := context.Background()
	var log []string
	env := &engine.Env{Connect: func(context.Context, provision.ServerRef) (exec.Executor, error) { return ex, nil },
		Log: provision.LoggerFunc(func(level, msg string) { log = append(log, level+": "+msg) })}
	for _, tc := range []struct{ dbHost, want, says string }{
		{"localhost", "loopback", "web2 reaches localhost from "}, // 127.0.0.1 or ::1, as the host resolves it
		{"127.0.0.1", "127.0.0.1", "web2 reaches 127.0.0.1 from 127.0.0.1"},
		{"no-such-host.invalid", "web2.example.org", "warning: database grants are for the name web2.example.org"},
	} {
		log = nil
		c := &provision.Job{Site: provision.SiteSpec{Web: provision.WebSpec{ServerRef: provision.ServerRef{Name: "web2", Host: srv.Host, SSHUser: srv.User, SSHPort: srv.Port}},
			DBServer: provision.DBSpec{Host: tc.dbHost}, DB: provision.SiteDBSpec{GrantHost: "web2.example.org"}}}
		grantHostOfWeb(ctx, env, c)
		got := c.Site.DB.GrantHost
		if ip := net.ParseIP(got); tc.want == "loopback" && ip != nil && ip.IsLoopback() {
			got = "loopback"
		}
		if got != tc.want || len(log) != 1 || !strings.HasPrefix(strings.TrimPrefix(log[0], "info: "), tc.says) {
			t.Errorf("db host %s: grant host %q, log %q; want %q and %q", tc.dbHost, c.Site.DB.GrantHost, log, tc.want, tc.says)
		}
	}
}

// sshServer starts a private sshd and connects to it as its deploy user.
func sshServer(t *testing.T) (*testenv.SSHD, exec.Executor) {
	t.Helper()
	srv := testenv.StartSSHD(t)
	ex, err := exec.DialSSH(context.Background(), exec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile,
		KnownHostsFile: srv.KnownHostsFile, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return srv, ex
}
