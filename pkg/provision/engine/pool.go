package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Pool keeps one connection per server for the length of a run or a
// dispatch, shared by the tasks that run in parallel (an SSH connection
// runs at most exec.MaxSessions commands at once; the others wait), and
// coalesces web server reloads.
//
// Connect hands out an executor that stays valid for the pool's life:
// when the connection behind it dies (the server rebooted, a firewall cut
// an idle connection), the next operation that fails on it finds the
// connection dead, dials a new one and, when that is safe, tries again
// once: a command that had not started yet, or a file operation that
// gives the same result when repeated.
type Pool struct {
	home    string
	mu      sync.Mutex
	conns   map[string]*poolConn
	local   *localConn
	Reloads *ReloadSet
	// Dial opens a connection to a remote server; set to exec.DialSSH by
	// NewPool, replaceable in tests.
	Dial func(ctx context.Context, cfg exec.SSHConfig) (Executor, error)
	// Journals keeps moves' journals and locks where every master reads
	// them (the state, when several masters share it); nil: files in the
	// aegir home. Each task's Env gets it.
	Journals Journals
	// Processes keeps the records of the process groups tasks run on
	// remote servers where every master reads them (the state); nil: in
	// each task's directory in the aegir home. Each task's Env gets it.
	Processes exec.RemoteRecords
	// KnownHosts keeps the SSH host keys the pool's connections trust
	// where every master reads them (the state), which keeps
	// KnownHostsFile written for OpenSSH tools; nil: KnownHostsFile
	// alone.
	KnownHosts exec.KnownHosts
	// ACMEAccounts is where the ACME accounts live, one for every master
	// (the state); nil: files in the aegir home. Each task's Env gets it.
	ACMEAccounts acme.Accounts
	// Master names this master among those that share the state, for
	// the messages of its connections (an SSH key that is not on it);
	// empty: "this master".
	Master string
}

// NewPool makes a Pool whose SSH connections verify host keys against
// HOME/known_hosts (see KnownHosts).
func NewPool(home string) *Pool {
	return &Pool{home: home, conns: map[string]*poolConn{}, local: &localConn{Executor: exec.NewLocal()}, Reloads: NewReloadSet(), Dial: func(ctx context.Context, cfg exec.SSHConfig) (Executor, error) {
		return exec.DialSSH(ctx, cfg)
	}}
}

// KnownHostsFile is the known_hosts file of the pool's OpenSSH tools
// (rsync's ssh), and of its SSH connections when KnownHosts is nil.
func (p *Pool) KnownHostsFile() string { return path.Join(p.home, "known_hosts") }

// SSHConfig is how the pool connects to a remote server.
func (p *Pool) SSHConfig(s provision.ServerRef) exec.SSHConfig {
	port := s.SSHPort
	if port == 0 {
		port = 22
	}
	user := s.SSHUser
	if user == "" {
		user = "root"
	}
	return exec.SSHConfig{Host: s.Host, Port: port, User: user, KeyFile: s.SSHKey,
		KnownHostsFile: p.KnownHostsFile(), KnownHosts: p.KnownHosts, AcceptNewHostKey: s.AcceptHostKey, Name: s.Name, Master: p.Master}
}

// Connect returns the executor for s, connecting on first use. Connecting
// to one server does not hold up connections to others.
func (p *Pool) Connect(ctx context.Context, s provision.ServerRef) (Executor, error) {
	return p.connect(ctx, s, nil)
}

// connect is Connect; the connection it opens tells env's log what it did
// (the host key it recorded).
func (p *Pool) connect(ctx context.Context, s provision.ServerRef, env *Env) (Executor, error) {
	if s.IsLocal() {
		return p.local, nil
	}
	cfg := p.SSHConfig(s)
	key := hostKey(cfg)
	p.mu.Lock()
	c, ok := p.conns[key]
	if !ok {
		c = &poolConn{p: p, cfg: cfg, host: key}
		p.conns[key] = c
	}
	p.mu.Unlock()
	var logf func(string, ...any)
	if env != nil {
		logf = func(format string, args ...any) { env.Logf(provision.LevelInfo, format, args...) }
	}
	if _, err := c.dial(ctx, logf); err != nil {
		return nil, err
	}
	return c, nil
}

// hostKey names a remote server as its executor's Host does:
// user@host:port.
func hostKey(cfg exec.SSHConfig) string {
	return fmt.Sprintf("%s@%s", cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
}

// taskHomes tells t the aegir homes of the job's remote web servers,
// where their task directories go.
func (p *Pool) taskHomes(t *exec.Task, c *provision.Job) {
	set := func(ref provision.ServerRef, home string) {
		if !ref.IsLocal() && ref.Host != "" {
			t.SetHome(hostKey(p.SSHConfig(ref)), home)
		}
	}
	set(c.Web(), c.Site.Web.Home)
	if c.HasTarget() {
		set(c.AtTarget().Web(), c.Target.Web.Home)
	}
}

// RemoteHome returns the home directory of s's SSH user, asked once per
// pool: where the server's aegir home is by default.
func (p *Pool) RemoteHome(ctx context.Context, s provision.ServerRef) (string, error) {
	return p.remoteHome(ctx, s, nil)
}

// remoteHome is RemoteHome, connecting with env's log (see connect).
func (p *Pool) remoteHome(ctx context.Context, s provision.ServerRef, env *Env) (string, error) {
	ex, err := p.connect(ctx, s, env)
	if err != nil {
		return "", err
	}
	c, ok := ex.(*poolConn)
	if !ok {
		return "", errors.New("remote home: not a remote server")
	}
	c.homeMu.Lock()
	defer c.homeMu.Unlock()
	if c.home != "" {
		return c.home, nil
	}
	res, err := c.Run(ctx, exec.Command{Name: "printenv", Args: []string{"HOME"}, Timeout: DefaultProbeTimeout})
	if err != nil {
		return "", fmt.Errorf("asking %s for its home directory: %w", c.host, err)
	}
	home := strings.TrimSpace(string(res.Stdout))
	if !path.IsAbs(home) || path.Clean(home) == "/" {
		return "", provision.Errorf(provision.ErrInvalidContext, "give the server an aegir home",
			"the SSH user of %s has no usable home directory (HOME=%q)", c.host, home).With(entities.Do("server.edit", s.Name, "remote-home=DIR"))
	}
	c.home = path.Clean(home)
	return c.home, nil
}

// DefaultProbeTimeout bounds the small commands the back end runs to learn
// about a server (its home directory, its programs).
const DefaultProbeTimeout = 30 * time.Second

// Close closes every connection of the pool.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.conns {
		c.close()
		delete(p.conns, k)
	}
}

// poolConn is the pool's executor for one remote server: the current
// connection, replaced when it dies.
type poolConn struct {
	p    *Pool
	cfg  exec.SSHConfig
	host string // user@host:port

	mu sync.Mutex // held while dialing
	ex Executor   // nil: not connected

	homeMu sync.Mutex
	home   string

	programs exec.ProgramCache
}

// localConn is the pool's executor for this machine: the local executor,
// with the programs found on it remembered.
type localConn struct {
	Executor
	programs exec.ProgramCache
}

// FindProgram is exec.FindProgram, each set of names looked for once in
// the pool's life.
func (l *localConn) FindProgram(ctx context.Context, names ...string) (string, error) {
	return l.programs.Find(ctx, l.Executor, names...)
}

// FindProgram is exec.FindProgram, each set of names looked for once in
// the pool's life (a new connection to the same server keeps the answers).
func (c *poolConn) FindProgram(ctx context.Context, names ...string) (string, error) {
	return c.programs.Find(ctx, c, names...)
}

var (
	_ Executor           = (*poolConn)(nil)
	_ exec.Dialer        = (*poolConn)(nil)
	_ exec.ProgramFinder = (*poolConn)(nil)
	_ exec.ProgramFinder = (*localConn)(nil)
)

// current returns the live connection, dialing one if there is none.
func (c *poolConn) current(ctx context.Context) (Executor, error) { return c.dial(ctx, nil) }

// dial is current; a connection it opens logs through logf.
func (c *poolConn) dial(ctx context.Context, logf func(string, ...any)) (Executor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ex != nil {
		return c.ex, nil
	}
	cfg := c.cfg
	cfg.Logf = logf
	ex, err := c.p.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c.ex = ex
	return ex, nil
}

// dropIfDead forgets ex when its connection no longer answers, and
// reports whether it did.
func (c *poolConn) dropIfDead(ctx context.Context, ex Executor) bool {
	a, ok := ex.(interface{ Alive(context.Context) bool })
	if !ok || a.Alive(ctx) {
		return false
	}
	c.mu.Lock()
	if c.ex == ex {
		c.ex = nil
	}
	c.mu.Unlock()
	_ = ex.Close()
	return true
}

func (c *poolConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ex != nil {
		_ = c.ex.Close()
		c.ex = nil
	}
}

// call runs f on the current connection. When f fails and the connection
// turns out dead, the connection is replaced, and f runs once more on the
// new one if retry says the failure allows it.
func call[T any](ctx context.Context, c *poolConn, retry func(error) bool, f func(Executor) (T, error)) (T, error) {
	ex, err := c.current(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := f(ex)
	if err == nil || ctx.Err() != nil || !c.dropIfDead(ctx, ex) {
		return v, err
	}
	if !retry(err) {
		return v, fmt.Errorf("%w (the connection to %s was lost; the next step reconnects)", err, c.host)
	}
	ex, derr := c.current(ctx)
	if derr != nil {
		return v, fmt.Errorf("%w; reconnecting: %w", err, derr)
	}
	return f(ex)
}

func always(error) bool { return true }
func never(error) bool  { return false }

// do is call for operations that only return an error.
func (c *poolConn) do(ctx context.Context, retry func(error) bool, f func(Executor) error) error {
	_, err := call(ctx, c, retry, func(ex Executor) (struct{}, error) { return struct{}{}, f(ex) })
	return err
}

// Run runs a command; it is run again on a new connection only when it
// had not started (exec.ErrNotStarted).
func (c *poolConn) Run(ctx context.Context, cmd exec.Command) (exec.Result, error) {
	if cmd.Stdin != nil {
		// Input that was partly read cannot be fed again.
		return call(ctx, c, never, func(ex Executor) (exec.Result, error) { return ex.Run(ctx, cmd) })
	}
	return call(ctx, c, func(err error) bool { return errors.Is(err, exec.ErrNotStarted) },
		func(ex Executor) (exec.Result, error) { return ex.Run(ctx, cmd) })
}

func (c *poolConn) ReadFile(ctx context.Context, p string) ([]byte, error) {
	return call(ctx, c, always, func(ex Executor) ([]byte, error) { return ex.ReadFile(ctx, p) })
}

func (c *poolConn) WriteFile(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	return c.do(ctx, always, func(ex Executor) error { return ex.WriteFile(ctx, p, data, mode) })
}

func (c *poolConn) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	return call(ctx, c, always, func(ex Executor) (io.ReadCloser, error) { return ex.Open(ctx, p) })
}

func (c *poolConn) Create(ctx context.Context, p string, mode fs.FileMode) (io.WriteCloser, error) {
	return call(ctx, c, always, func(ex Executor) (io.WriteCloser, error) { return ex.Create(ctx, p, mode) })
}

func (c *poolConn) Stat(ctx context.Context, p string) (fs.FileInfo, error) {
	return call(ctx, c, always, func(ex Executor) (fs.FileInfo, error) { return ex.Stat(ctx, p) })
}

func (c *poolConn) Lstat(ctx context.Context, p string) (fs.FileInfo, error) {
	return call(ctx, c, always, func(ex Executor) (fs.FileInfo, error) { return ex.Lstat(ctx, p) })
}

func (c *poolConn) ReadDir(ctx context.Context, p string) ([]fs.FileInfo, error) {
	return call(ctx, c, always, func(ex Executor) ([]fs.FileInfo, error) { return ex.ReadDir(ctx, p) })
}

func (c *poolConn) MkdirAll(ctx context.Context, p string, mode fs.FileMode) error {
	return c.do(ctx, always, func(ex Executor) error { return ex.MkdirAll(ctx, p, mode) })
}

// Remove, Rename and Symlink are not repeated: the first attempt may have
// been done with only its answer lost.
func (c *poolConn) Remove(ctx context.Context, p string) error {
	return c.do(ctx, never, func(ex Executor) error { return ex.Remove(ctx, p) })
}

func (c *poolConn) RemoveAll(ctx context.Context, p string) error {
	return c.do(ctx, always, func(ex Executor) error { return ex.RemoveAll(ctx, p) })
}

func (c *poolConn) Rename(ctx context.Context, oldpath, newpath string) error {
	return c.do(ctx, never, func(ex Executor) error { return ex.Rename(ctx, oldpath, newpath) })
}

func (c *poolConn) Symlink(ctx context.Context, target, link string) error {
	return c.do(ctx, never, func(ex Executor) error { return ex.Symlink(ctx, target, link) })
}

func (c *poolConn) Chmod(ctx context.Context, p string, mode fs.FileMode) error {
	return c.do(ctx, always, func(ex Executor) error { return ex.Chmod(ctx, p, mode) })
}

func (c *poolConn) Chown(ctx context.Context, p, owner, group string) error {
	return c.do(ctx, always, func(ex Executor) error { return ex.Chown(ctx, p, owner, group) })
}

// Dial opens a tunnel from the server to addr (see exec.Dialer).
func (c *poolConn) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return call(ctx, c, always, func(ex Executor) (net.Conn, error) {
		d, ok := ex.(exec.Dialer)
		if !ok {
			return nil, fmt.Errorf("%s cannot open tunnels", ex.Host())
		}
		return d.Dial(ctx, network, addr)
	})
}

// SSHConfig is how the pool reaches the server, for other SSH clients
// (rsync) that must connect the same way.
func (c *poolConn) SSHConfig() exec.SSHConfig { return c.cfg }

// Host is user@host:port.
func (c *poolConn) Host() string { return c.host }

// IsLocal is false: the pool runs local commands without a poolConn.
func (c *poolConn) IsLocal() bool { return false }

// Close does nothing: the connection belongs to the pool (Pool.Close).
func (c *poolConn) Close() error { return nil }

// resolveWebHomes fills in the aegir home of the job's web server
// (and of the target's, for a migrate or clone) when the context names
// none: the master's home for this machine, .aegir in the SSH user's home
// for a remote server. A server that cannot be asked is left as it is:
// the task's own connection reports why.
func resolveWebHomes(ctx context.Context, env *Env, pool *Pool, c *provision.Job) {
	resolveWebHome(ctx, env, pool, c.Web(), c.Site.Web.Type, &c.Site.Web.Home)
	if c.HasTarget() {
		t := c.AtTarget()
		resolveWebHome(ctx, env, pool, t.Web(), t.Site.Web.Type, &c.Target.Web.Home)
	}
}

func resolveWebHome(ctx context.Context, env *Env, pool *Pool, ref provision.ServerRef, httpType string, home *string) {
	if *home != "" || httpType == "" {
		return
	}
	if ref.IsLocal() {
		*home = env.Home
		return
	}
	h, err := pool.remoteHome(ctx, ref, env)
	if err != nil {
		env.Logf(provision.LevelDebug, "could not learn the aegir home of %s: %v", ref.Name, err)
		return
	}
	*home = path.Join(h, ".aegir")
	env.LogFixf(provision.LevelDebug, []entities.Action{entities.Do("server.edit", ref.Name, "remote-home=DIR")}, "aegir home on %s: %s (the default; the server's remote-home changes it)", ref.Name, *home)
}
