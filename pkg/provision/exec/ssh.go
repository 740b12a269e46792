package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSHConfig says how to reach a remote server.
type SSHConfig struct {
	Host    string
	Port    int    // 0: 22
	User    string // empty: the local user's name
	KeyFile string // private key; empty: ~/.ssh/id_ed25519, id_rsa, or the agent
	// KnownHostsFile is the known_hosts file OpenSSH tools (rsync's ssh)
	// check host keys against; empty: ~/.ssh/known_hosts.
	KnownHostsFile string
	// KnownHosts is where this connection finds and records host keys;
	// nil: KnownHostsFile. A store of its own keeps KnownHostsFile
	// written for the tools.
	KnownHosts KnownHosts
	// AcceptNewHostKey records the key of a host not yet in KnownHosts.
	// A changed key is refused whatever this says.
	AcceptNewHostKey bool
	ConnectTimeout   time.Duration // 0: DefaultConnectTimeout
	// Name is the server's name in aegir, the target of the actions hints
	// propose (server.edit NAME); empty: SERVER.
	Name string
	// Master names the master that connects, among those that share the
	// state, for the message of a key file that is not on it; empty: this
	// master.
	Master string
	// Logf, if set, is told what the connection did that the task log
	// should show: the host key it recorded.
	Logf func(format string, args ...any)
}

// DefaultConnectTimeout bounds connecting and the SSH handshake.
const DefaultConnectTimeout = 15 * time.Second

// MaxSessions bounds the commands one SSH connection runs at the same time.
// OpenSSH's sshd allows 10 sessions per connection (MaxSessions); SFTP
// holds one, one is kept for stopping commands that time out, and one is
// left for luck.
const MaxSessions = 7

// Errors wrapped by DialSSH, so that callers can tell the failures apart
// (provision maps them to the unreachable, auth and host_key codes).
var (
	ErrUnreachable = errors.New("server unreachable")
	ErrAuth        = errors.New("SSH authentication failed")
	ErrHostKey     = errors.New("SSH host key verification failed")
)

// ErrNotStarted is wrapped (with ErrUnreachable) by Run when the connection
// failed before the command started: running it again on a new
// connection is safe.
var ErrNotStarted = errors.New("the command did not start")

// SSH runs commands and handles files on a remote server over one SSH
// connection. It is safe for concurrent use; at most MaxSessions commands
// run at once, others wait for a free session.
type SSH struct {
	cfg    SSHConfig
	host   string // user@host:port, for messages
	client *ssh.Client
	sem    chan struct{} // sessions for commands
	// killSem is the session reserved for killing timed-out commands, so
	// that a kill never waits behind the commands it should stop.
	killSem chan struct{}

	sftpMu sync.Mutex
	sftp   *sftp.Client
}

var _ Executor = (*SSH)(nil)

// DialSSH connects to a remote server, verifies its host key and logs in
// with a key. Errors wrap ErrUnreachable, ErrAuth or ErrHostKey and say
// what to do.
func DialSSH(ctx context.Context, cfg SSHConfig) (Executor, error) {
	s, err := dialSSH(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func dialSSH(ctx context.Context, cfg SSHConfig) (*SSH, error) {
	if cfg.Host == "" {
		return nil, fmt.Errorf("%w: no host given", ErrUnreachable)
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	home, _ := os.UserHomeDir()
	if cfg.User == "" {
		cfg.User = currentUser()
	}
	if cfg.KnownHostsFile == "" {
		cfg.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	name := fmt.Sprintf("%s@%s", cfg.User, addr)

	auth, agentConn, err := authMethods(cfg, home)
	if err != nil {
		return nil, err
	}
	if agentConn != nil {
		// The agent signs during the handshake only.
		defer agentConn.Close()
	}
	known := cfg.KnownHosts
	if known == nil {
		known = FileKnownHosts{File: cfg.KnownHostsFile}
	}
	hk := &hostKeys{ctx: ctx, known: known, accept: cfg.AcceptNewHostKey, server: cfg.Name, logf: cfg.Logf}
	conf := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(addr),
		Timeout:           cfg.ConnectTimeout,
	}

	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot connect to %s: %v; "+
			"check that the host is up, that sshd listens on port %d and that no firewall blocks it (try: ssh -p %d %s@%s true)",
			ErrUnreachable, addr, err, cfg.Port, cfg.Port, cfg.User, cfg.Host)
	}
	// The handshake has no context: bound it by the deadline and close the
	// connection if ctx ends first.
	_ = conn.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, conf)
	stop()
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to %s: %w", name, ctx.Err())
		}
		return nil, handshakeError(err, hk, cfg, name)
	}
	_ = conn.SetDeadline(time.Time{})
	return &SSH{
		cfg:     cfg,
		host:    name,
		client:  ssh.NewClient(c, chans, reqs),
		sem:     make(chan struct{}, MaxSessions),
		killSem: make(chan struct{}, 1),
	}, nil
}

func handshakeError(err error, hk *hostKeys, cfg SSHConfig, name string) error {
	if hk.err != nil {
		return hk.err
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") {
		pub := "KEY.pub"
		if cfg.KeyFile != "" {
			pub = cfg.KeyFile + ".pub"
		}
		return fmt.Errorf("%w: %s refused our key (%s); "+
			"add the public key to ~%s/.ssh/authorized_keys on the server (e.g. ssh-copy-id -i %s -p %d %s@%s), "+
			"or set the server's ssh-key to the right key",
			ErrAuth, name, keyDescription(cfg), cfg.User, Quote(pub), cfg.Port, cfg.User, cfg.Host)
	}
	return fmt.Errorf("%w: SSH handshake with %s failed: %v; "+
		"check that an SSH server listens on %s port %d", ErrUnreachable, name, err, cfg.Host, cfg.Port)
}

func keyDescription(cfg SSHConfig) string {
	if cfg.KeyFile != "" {
		return "key " + cfg.KeyFile
	}
	return "default keys and agent"
}

// authMethods loads the private key(s) to log in with: cfg.KeyFile, or
// else the default keys in ~/.ssh and the agent at SSH_AUTH_SOCK (whose
// connection the caller closes after the handshake).
func authMethods(cfg SSHConfig, home string) ([]ssh.AuthMethod, net.Conn, error) {
	if cfg.KeyFile != "" {
		signer, err := loadKey(cfg.KeyFile)
		if errors.Is(err, errKeyMissing) {
			// With several masters, each needs the key at the path the
			// server's record names (docs/masters.md).
			server, master := cfg.Name, "this master"
			if server == "" {
				server = cfg.Host
			}
			if cfg.Master != "" {
				master = "master " + cfg.Master
			}
			return nil, nil, fmt.Errorf("%w: the SSH key %s of server %s is not on %s: copy it to that path there (every master that runs the server's tasks needs it), or set the server's ssh-key to a key that master has", ErrAuth, cfg.KeyFile, server, master)
		}
		if err != nil {
			return nil, nil, err
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, nil, nil
	}
	var signers []ssh.Signer
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", n)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		signer, err := loadKey(p)
		if err != nil {
			var pe *ssh.PassphraseMissingError
			if errors.As(err, &pe) {
				continue // maybe in the agent
			}
			return nil, nil, err
		}
		signers = append(signers, signer)
	}
	var methods []ssh.AuthMethod
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	var agentConn net.Conn
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			agentConn = conn
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		}
	}
	if len(methods) == 0 {
		return nil, nil, fmt.Errorf("%w: no SSH key: none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa is usable and no agent runs (SSH_AUTH_SOCK); "+
			"create a key with ssh-keygen -t ed25519, or set the server's ssh-key to one", ErrAuth)
	}
	return methods, agentConn, nil
}

// errKeyMissing is loadKey's error for a key file that is not there.
var errKeyMissing = errors.New("no such SSH key file")

func loadKey(file string) (ssh.Signer, error) {
	pem, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errKeyMissing, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read SSH key: %v; set the server's ssh-key to a readable private key file", ErrAuth, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var pe *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pe):
		return nil, fmt.Errorf("%w: SSH key %s is protected by a passphrase: %w; "+
			"load it into ssh-agent (ssh-add) and leave the server's ssh-key empty, or use a key without a passphrase", ErrAuth, file, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %s is not a usable SSH private key: %v; "+
			"set the server's ssh-key to the private key (not the .pub file)", ErrAuth, file, err)
	}
	return signer, nil
}

// Host returns user@host:port.
func (s *SSH) Host() string { return s.host }

// IsLocal returns false.
func (*SSH) IsLocal() bool { return false }

// Close closes the SFTP session and the connection.
func (s *SSH) Close() error {
	s.sftpMu.Lock()
	if s.sftp != nil {
		_ = s.sftp.Close()
		s.sftp = nil
	}
	s.sftpMu.Unlock()
	return s.client.Close()
}

// RemoteCommand returns the shell command line that runs c on a remote
// server logged in as sshUser: every word quoted, the working directory
// entered with cd, the environment set with env, and another user reached
// with sudo (non-interactive: a missing sudo rule fails at once).
func RemoteCommand(c Command, sshUser string) string {
	var b strings.Builder
	if c.Dir != "" {
		b.WriteString("cd " + Quote(c.Dir) + " && ")
	}
	b.WriteString("exec ")
	sudo := c.User != "" && c.User != sshUser
	if sudo {
		b.WriteString("sudo -n -u " + Quote(c.User) + " -- ")
	}
	// env after sudo (which resets the environment); env also makes a
	// missing program exit 127 under sudo, as the shell does.
	if sudo || len(c.Env) > 0 {
		b.WriteString("env ")
		for _, kv := range c.Env {
			b.WriteString(Quote(kv) + " ")
		}
	}
	b.WriteString(Quote(c.Name))
	for _, a := range c.Args {
		b.WriteString(" " + Quote(a))
	}
	return b.String()
}

// killGrace is how long a timed-out command has between SIGTERM and SIGKILL.
const killGrace = 500 * time.Millisecond

// pidMarker starts the line the remote shell writes to stderr before it
// runs a command: its pid, which after exec is the command's, and also the
// process group sshd made for the session. Run strips the line.
const pidMarker = "aegir-pid:"

// Run runs c on the server. See Executor.Run.
func (s *SSH) Run(ctx context.Context, c Command) (Result, error) {
	if err := checkCommand(c); err != nil {
		return Result{}, err
	}
	return s.run(ctx, c, s.sem)
}

// run runs c in a session taken from sem.
func (s *SSH) run(ctx context.Context, c Command, sem chan struct{}) (Result, error) {
	timeout := effectiveTimeout(c)
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	select {
	case sem <- struct{}{}:
	case <-tctx.Done():
		return Result{}, s.runCtxError(ctx, c, timeout)
	}
	defer func() { <-sem }()

	sess, err := s.newSession(tctx)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w: %s: opening an SSH session: %v; the connection was lost, retry the task",
			ErrUnreachable, ErrNotStarted, s.host, err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	pid := &pidSniffer{w: &stderr, found: make(chan struct{})}
	if t := taskOf(ctx); t != nil {
		// The rescue of a task whose dispatcher died kills the groups
		// the task left running.
		user := c.User
		if user == "" {
			user = s.cfg.User
		}
		var rp RemoteProcess
		pid.onPID = func(p string) {
			rp = RemoteProcess{Host: s.host, User: user, PID: p, Name: c.Name}
			t.startedRemote(rp)
		}
		defer func() {
			pid.mu.Lock() // onPID runs under it
			p := rp
			pid.mu.Unlock()
			if p.PID != "" {
				t.endedRemote(p)
			}
		}()
	}
	sess.Stdout, sess.Stderr = &stdout, pid
	// Stdin through a pipe we feed: a program that exits without reading
	// all of it is no error (the library's own copy would report EOF).
	var stdin io.WriteCloser
	if c.Stdin != nil {
		if stdin, err = sess.StdinPipe(); err != nil {
			return Result{}, fmt.Errorf("%w: %w: %s: %v", ErrUnreachable, ErrNotStarted, s.host, err)
		}
	}

	start := time.Now()
	if err := sess.Start("echo " + pidMarker + "$$ >&2; " + RemoteCommand(c, s.cfg.User)); err != nil {
		return Result{}, fmt.Errorf("%w: %w: %s: starting %s: %v", ErrUnreachable, ErrNotStarted, s.host, c.String(), err)
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, c.Stdin)
			stdin.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	var werr error
	select {
	case werr = <-done:
	case <-tctx.Done():
		s.kill(sess, c.User, pid, done)
		res := Result{Stdout: stdout.Bytes(), Stderr: pid.bytes(), ExitCode: -1, Duration: time.Since(start)}
		return res, s.runCtxError(ctx, c, timeout)
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: pid.bytes(), Duration: time.Since(start)}
	if werr == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(werr, &ee) {
		res.ExitCode = ee.ExitStatus()
		if ee.Signal() != "" && res.ExitCode == 0 {
			res.ExitCode = -1
		}
		xe := exitError(c, res.ExitCode, res.Stdout, res.Stderr)
		if res.ExitCode == 127 {
			return res, notFoundError(c, s.host, xe)
		}
		return res, xe
	}
	res.ExitCode = -1
	return res, fmt.Errorf("%w: %s: %s: %v", ErrUnreachable, s.host, c.String(), werr)
}

// kill stops a command that ran out of time or was cancelled: SIGTERM to
// its process group, SIGKILL after killGrace, from a second session as the
// command's user (sshd honours the SSH "signal" request only for some
// logins, and never across sudo). Closing the session alone would leave
// the program running, so a command cancelled right after it started
// waits for the shell to tell its pid first (pidWait at most: a server
// that says nothing for so long has a wedged connection).
func (s *SSH) kill(sess *ssh.Session, user string, sniff *pidSniffer, done <-chan error) {
	select {
	case <-sniff.found:
	case <-done:
		return
	case <-time.After(pidWait):
	}
	pid := sniff.get()
	signal := func(sig string) {
		if pid == "" {
			return
		}
		_, _ = s.run(context.Background(), Command{Name: "kill", Args: []string{"-s", sig, "--", "-" + pid},
			User: user, Timeout: 10 * time.Second}, s.killSem)
	}
	signal("TERM")
	select {
	case <-done:
		return
	case <-time.After(killGrace):
	}
	signal("KILL")
	sess.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // a wedged connection: give up waiting
	}
}

// pidWait bounds the wait for the pid of a command to stop.
const pidWait = 10 * time.Second

// pidSniffer passes standard error through, except for the line with the
// pid marker (normally the first; a login script may print before it).
type pidSniffer struct {
	w     *bytes.Buffer
	mu    sync.Mutex
	head  []byte // an incomplete line while the marker is not seen
	pid   string
	seen  bool
	found chan struct{} // closed when the marker is seen; nil: not told
	// onPID, if set, is told the pid once it is seen.
	onPID func(string)
}

func (p *pidSniffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen {
		return p.w.Write(b)
	}
	p.head = append(p.head, b...)
	for !p.seen {
		i := bytes.IndexByte(p.head, '\n')
		if i < 0 {
			break
		}
		line := p.head[:i]
		if pid, ok := bytes.CutPrefix(line, []byte(pidMarker)); ok {
			p.pid, p.seen = string(pid), true
			if p.found != nil {
				close(p.found)
			}
			if _, err := strconv.Atoi(p.pid); err == nil && p.onPID != nil {
				p.onPID(p.pid)
			}
		} else {
			p.w.Write(p.head[:i+1])
		}
		p.head = p.head[i+1:]
	}
	if p.seen {
		p.w.Write(p.head)
		p.head = nil
	}
	return len(b), nil
}

func (p *pidSniffer) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := strconv.Atoi(p.pid); err != nil {
		return ""
	}
	return p.pid
}

func (p *pidSniffer) bytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(bytes.Clone(p.w.Bytes()), p.head...)
}

func (s *SSH) runCtxError(ctx context.Context, c Command, timeout time.Duration) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s on %s: %w", c.String(), s.host, ctx.Err())
	}
	return timeoutError(c, s.host, timeout)
}

// sftpClient returns the connection's SFTP client, starting it on first use.
func (s *SSH) sftpClient() (*sftp.Client, error) {
	s.sftpMu.Lock()
	defer s.sftpMu.Unlock()
	if s.sftp != nil {
		return s.sftp, nil
	}
	c, err := sftp.NewClient(s.client)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: starting SFTP: %v; check that the server's sshd enables the sftp subsystem",
			ErrUnreachable, s.host, err)
	}
	s.sftp = c
	return c, nil
}

// fileErr adds the operation, path and host to an SFTP error, keeping
// errors.Is(err, fs.ErrNotExist) and the like working.
func (s *SSH) fileErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s %s on %s: %w", op, path, s.host, err)
}

// withSFTP checks ctx and runs f with the SFTP client.
func (s *SSH) withSFTP(ctx context.Context, op, path string, f func(*sftp.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.sftpClient()
	if err != nil {
		return err
	}
	return s.fileErr(op, path, f(c))
}

// ReadFile reads a whole file.
func (s *SSH) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var data []byte
	err := s.withSFTP(ctx, "read", path, func(c *sftp.Client) error {
		f, err := c.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var buf bytes.Buffer
		_, err = f.WriteTo(&buf)
		data = buf.Bytes()
		return err
	})
	return data, err
}

// WriteFile writes data to path atomically with the given mode.
func (s *SSH) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	return writeFileVia(ctx, s, path, data, mode)
}

// Open opens a file for reading: by SFTP, or a named pipe through a
// session (see openPipe).
func (s *SSH) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if fi, err := s.Stat(ctx, path); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
		return s.openPipe(ctx, path)
	}
	var f *sftp.File
	err := s.withSFTP(ctx, "open", path, func(c *sftp.Client) (err error) {
		f, err = c.Open(path)
		return err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Create returns a writer to a temporary file beside path that Close
// renames onto path with the given mode. SFTP creates the file with the
// server's umask (0644 mostly): it is made 0600 before anything is
// written to it, so a secret is never in a file others may open.
func (s *SSH) Create(ctx context.Context, path string, mode fs.FileMode) (io.WriteCloser, error) {
	tmp := tempPath(path)
	var f *sftp.File
	var c *sftp.Client
	err := s.withSFTP(ctx, "create", path, func(cl *sftp.Client) (err error) {
		c = cl
		if f, err = c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL); err != nil {
			return err
		}
		if err = f.Chmod(0o600); err != nil {
			_ = f.Close()
			_ = c.Remove(tmp)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &atomicWriter{
		w:    f,
		seal: func() error { return s.fileErr("chmod", tmp, f.Chmod(mode.Perm())) },
		commit: func() error {
			return s.fileErr("rename", path, c.PosixRename(tmp, path))
		},
		abort: func() { _ = c.Remove(tmp) },
	}, nil
}

// Stat describes path, following symlinks.
func (s *SSH) Stat(ctx context.Context, path string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := s.withSFTP(ctx, "stat", path, func(c *sftp.Client) (err error) {
		fi, err = c.Stat(path)
		return err
	})
	return fi, err
}

// Lstat describes path itself, not what a symlink points to.
func (s *SSH) Lstat(ctx context.Context, path string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := s.withSFTP(ctx, "lstat", path, func(c *sftp.Client) (err error) {
		fi, err = c.Lstat(path)
		return err
	})
	return fi, err
}

// ReadDir lists a directory, sorted by name.
func (s *SSH) ReadDir(ctx context.Context, path string) ([]fs.FileInfo, error) {
	var list []fs.FileInfo
	err := s.withSFTP(ctx, "readdir", path, func(c *sftp.Client) (err error) {
		list, err = c.ReadDirContext(ctx, path)
		sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
		return err
	})
	return list, err
}

// MkdirAll creates path and its missing parents with mode.
func (s *SSH) MkdirAll(ctx context.Context, path string, mode fs.FileMode) error {
	return s.withSFTP(ctx, "mkdir", path, func(c *sftp.Client) error {
		return mkdirAll(c, path, mode.Perm())
	})
}

func mkdirAll(c *sftp.Client, path string, mode fs.FileMode) error {
	fi, err := c.Stat(path)
	if err == nil {
		if fi.IsDir() {
			return nil
		}
		return fmt.Errorf("%s exists and is not a directory: %w", path, fs.ErrExist)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(path); parent != path {
		if err := mkdirAll(c, parent, mode); err != nil {
			return err
		}
	}
	if err := c.Mkdir(path); err != nil {
		// Created meanwhile by someone else?
		if fi, serr := c.Stat(path); serr == nil && fi.IsDir() {
			return nil
		}
		return err
	}
	return c.Chmod(path, mode)
}

// Remove removes a file or an empty directory.
func (s *SSH) Remove(ctx context.Context, path string) error {
	return s.withSFTP(ctx, "remove", path, func(c *sftp.Client) error { return c.Remove(path) })
}

// RemoveAll removes path and everything under it, with one rm -rf on the
// server rather than one SFTP request per file.
func (s *SSH) RemoveAll(ctx context.Context, path string) error {
	if err := checkRemoveAll(path); err != nil {
		return err
	}
	_, err := s.Run(ctx, Command{Name: "rm", Args: []string{"-rf", "--", path}})
	var xe *ExitError
	if err != nil && s.cfg.User != "root" && errors.As(err, &xe) {
		// Never through sudo: what a deploy user may not remove goes to
		// the privileged helper, which checks it (package priv).
		return fmt.Errorf("%w; %s may not remove all of %s: what PHP wrote there must be group-writable for it (docs/remote-servers.md)",
			err, s.cfg.User, path)
	}
	return err
}

// Rename renames oldpath to newpath, replacing a file there.
func (s *SSH) Rename(ctx context.Context, oldpath, newpath string) error {
	return s.withSFTP(ctx, "rename", oldpath, func(c *sftp.Client) error { return c.PosixRename(oldpath, newpath) })
}

// Symlink creates link pointing to target.
func (s *SSH) Symlink(ctx context.Context, target, link string) error {
	return s.withSFTP(ctx, "symlink", link, func(c *sftp.Client) error { return c.Symlink(target, link) })
}

// Chmod sets the permission bits of path.
func (s *SSH) Chmod(ctx context.Context, path string, mode fs.FileMode) error {
	return s.withSFTP(ctx, "chmod", path, func(c *sftp.Client) error {
		// A symbolic link is refused, not followed (see Local.Chmod). SFTP
		// has no chmod that does not follow a link: a link swapped in
		// between the check and the change is followed (the deploy user
		// is unprivileged; the window is one round trip).
		if fi, err := c.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return errSymlink("chmod", path)
		}
		return c.Chmod(path, mode)
	})
}

// Chown sets the owner (and the group, unless empty) of path by name, with
// chown on the server (SFTP knows only numeric ids).
func (s *SSH) Chown(ctx context.Context, path, owner, group string) error {
	if owner == "" && group == "" {
		return nil
	}
	spec := owner
	if group != "" {
		spec += ":" + group
	}
	// -h: a symbolic link itself, never where it points (see Local.Chmod).
	// A deploy user gives files only to groups it is in; never through
	// sudo (what it may not do goes to the privileged helper, package
	// priv).
	_, err := s.Run(ctx, Command{Name: "chown", Args: []string{"-h", "--", spec, path}})
	return err
}

// newSession opens a session, asking again for a moment when the server
// refuses the channel while the connection lives: sshd counts a session
// until its own side has closed it, so right after many sessions end it
// can still be at its MaxSessions and answer "open failed".
func (s *SSH) newSession(ctx context.Context) (*ssh.Session, error) {
	for attempt := 1; ; attempt++ {
		sess, err := s.client.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || attempt >= 40 {
			return sess, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		}
	}
}
