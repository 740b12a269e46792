// Package tasks is the back end's task types: each composes the executors,
// web, database and platform drivers into one unit of work, registered
// with engine.Register under its type ("server.verify", "site.install",
// ...). Import it for its side effect.
package tasks

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() {
	engine.Register("server.verify", serverVerify)
}

// dbService opens the job's database server as its admin: straight
// to its address, or through an SSH tunnel to its machine when the server
// says so (db_tunnel). It fills in the grant host when the front end left
// it to the back end (see grantHostOfMaster).
func dbService(ctx context.Context, env *engine.Env, c *provision.Job) (db.Service, error) {
	t, err := db.ParseType(c.Site.DBServer.Type)
	if err != nil {
		return nil, err
	}
	cfg := db.Config{Name: c.Site.DBServer.Machine.Name, Type: t, Host: c.Site.DBServer.Host, Port: c.Site.DBServer.Port, AdminUser: c.Site.DBServer.AdminUser, AdminPassword: c.Site.DBServer.AdminPassword}
	ref := c.DB()
	if c.Site.DBServer.Tunnel && !ref.IsLocal() {
		ex, err := env.Connect(ctx, ref)
		if err != nil {
			return nil, err
		}
		d, ok := ex.(exec.Dialer)
		if !ok {
			return nil, provision.Errorf(provision.ErrInternal, "this is a bug in aegir; report it with the task log", "no tunnel to %s", ex.Host())
		}
		cfg.Dialer = d.Dial
		env.Logf(provision.LevelDebug, "database admin connection to %s through an SSH tunnel to %s", cfg.Addr(), ex.Host())
	}
	if c.Site.DB.GrantHost == "" && c.Site.DBServer.Type != "" && !ref.IsLocal() {
		h, err := grantHostOfMaster(ctx, env, ref)
		if err != nil {
			return nil, err
		}
		c.Site.DB.GrantHost = h
	}
	if namedHost(c.Site.DB.GrantHost) && c.Site.DBServer.Host != "" && !c.Web().IsLocal() {
		grantHostOfWeb(ctx, env, c)
	}
	return db.New(cfg)
}

// namedHost reports whether a grant host is a host name (not an address,
// localhost or a pattern).
func namedHost(h string) bool {
	return h != "" && h != "localhost" && net.ParseIP(h) == nil && !strings.ContainsAny(h, "%_")
}

// grantHostOfWeb turns a grant host given as the web server's name into
// the address the database server sees its connections come from: the
// source address the web server's route to the database host takes (ip
// route get, on the web server). A database server that does not resolve
// names (skip_name_resolve) only matches grants for addresses. When that
// cannot be told, the name stays, with a warning.
func grantHostOfWeb(ctx context.Context, env *engine.Env, c *provision.Job) {
	addr, err := routeSource(ctx, env, c.Web(), c.Site.DBServer.Host)
	if err != nil {
		env.Logf(provision.LevelWarning, "database grants are for the name %s (a database server with skip_name_resolve will refuse the site): cannot tell %s's address towards %s: %v",
			c.Site.DB.GrantHost, c.Site.Web.Name, c.Site.DBServer.Host, err)
		return
	}
	env.Logf(provision.LevelInfo, "%s reaches %s from %s: database grants are for that address", c.Site.Web.Name, c.Site.DBServer.Host, addr)
	c.Site.DB.GrantHost = addr
}

// routeSource is the source address server ref uses to reach host.
func routeSource(ctx context.Context, env *engine.Env, ref provision.ServerRef, host string) (string, error) {
	ex, err := env.Connect(ctx, ref)
	if err != nil {
		return "", err
	}
	ip := host
	if net.ParseIP(host) == nil {
		res, err := ex.Run(ctx, exec.Command{Name: "getent", Args: []string{"ahosts", host}, Timeout: engine.DefaultProbeTimeout})
		if err != nil {
			return "", fmt.Errorf("%s does not resolve %s: %w", ex.Host(), host, err)
		}
		ip, _, _ = strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	}
	if net.ParseIP(ip) == nil {
		return "", fmt.Errorf("%s resolves %s to %q", ex.Host(), host, ip)
	}
	res, err := ex.Run(ctx, exec.Command{Name: "ip", Args: []string{"-o", "route", "get", ip}, Timeout: engine.DefaultProbeTimeout})
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(res.Stdout))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "src" && net.ParseIP(f[i+1]) != nil {
			return f[i+1], nil
		}
	}
	return "", fmt.Errorf("no source address in %q", strings.TrimSpace(string(res.Stdout)))
}

// grantHostOfMaster is this machine's address as the database server sees
// it, for the grants of a site whose web server is this machine and whose
// database server is another: the client address of our SSH connection
// to it (SSH_CLIENT), the same route the site's connections take.
func grantHostOfMaster(ctx context.Context, env *engine.Env, ref provision.ServerRef) (string, error) {
	ex, err := env.Connect(ctx, ref)
	if err != nil {
		return "", err
	}
	res, err := ex.Run(ctx, exec.Command{Name: "printenv", Args: []string{"SSH_CLIENT"}, Timeout: engine.DefaultProbeTimeout})
	addr, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	if err != nil || net.ParseIP(addr) == nil {
		return "", &provision.Error{Code: provision.ErrDatabase, Err: err,
			Msg:  fmt.Sprintf("cannot tell this machine's address as %s sees it (SSH_CLIENT=%q), to grant the site's database user access from it", ex.Host(), addr),
			Hint: "check that sshd on the database server sets SSH_CLIENT, or run the site on a web server other than this machine"}
	}
	env.Logf(provision.LevelInfo, "%s sees this machine as %s: database grants are for that address", ref.Name, addr)
	return addr, nil
}
