// Package simexec is a simulated fleet of servers for tests and
// benchmarks: a recording executor behind exec.Executor that answers the
// commands aegir's back end sends as a server would, keeps each server's
// files in memory, and records every connection and every command.
//
// It is selected only by code that sets an engine.Pool's Dial to
// Fleet.Dial: tests and benchmarks (pkg/hosting's fleet test and
// benchmark). It is an internal package, so nothing outside this module
// can import it, and no production code does: TestNotInTheBinary checks
// that the aegir binary's dependencies do not include it, so no
// configuration can reach it.
package simexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Fleet is the simulated servers, each named by its executor's Host
// (user@host:port), made on first connection.
type Fleet struct {
	// Files every server starts with: absolute path to content. A path
	// under a file's directory is a directory.
	Files map[string][]byte
	// Answer, when set, answers a command before the built-in answers
	// (ok false: not answered).
	Answer func(host string, c exec.Command) (res exec.Result, err error, ok bool)
	// KeepCommands records every command's text (Commands); otherwise only
	// the counts are kept (Counts), which is what a benchmark of 100,000
	// sites can afford.
	KeepCommands bool

	mu      sync.Mutex
	servers map[string]*Server
	conns   []Conn

	dirsOnce sync.Once
	dirs     map[string]bool // the directories of Files
}

// filesDirs returns the directories that hold Files' files.
func (f *Fleet) filesDirs() map[string]bool {
	f.dirsOnce.Do(func() {
		f.dirs = map[string]bool{}
		for p := range f.Files {
			for d := path.Dir(p); !f.dirs[d]; d = path.Dir(d) {
				f.dirs[d] = true
				if d == "/" || d == "." {
					break
				}
			}
		}
	})
	return f.dirs
}

// Conn is one connection opened to a server.
type Conn struct {
	Host string
	At   time.Time
}

// Record is one operation run on a server: a command's text (as
// exec.Command.String gives it), or a file operation ("write PATH").
type Record struct {
	Host string
	Op   string
}

// Dial opens a connection to the server cfg names, as exec.DialSSH would:
// engine.Pool.Dial's signature.
func (f *Fleet) Dial(_ context.Context, cfg exec.SSHConfig) (exec.Executor, error) {
	host := fmt.Sprintf("%s@%s", cfg.User, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.servers == nil {
		f.servers = map[string]*Server{}
	}
	s, ok := f.servers[host]
	if !ok {
		s = &Server{fleet: f, host: host, files: map[string]file{}, removed: map[string]bool{}}
		f.servers[host] = s
	}
	f.conns = append(f.conns, Conn{Host: host, At: time.Now()})
	return &conn{s: s}, nil
}

// Connections returns how many connections each server was dialled.
func (f *Fleet) Connections() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, c := range f.conns {
		out[c.Host]++
	}
	return out
}

// ConnLog returns every connection in the order they were opened.
func (f *Fleet) ConnLog() []Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Conn(nil), f.conns...)
}

// Reset forgets the connections and commands recorded (the servers keep
// their files): the start of the next dispatch.
func (f *Fleet) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = nil
	for _, s := range f.servers {
		s.mu.Lock()
		s.ops, s.count = nil, 0
		s.mu.Unlock()
	}
}

// Server returns the simulated server named host (user@host:port), nil
// before its first connection.
func (f *Fleet) Server(host string) *Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.servers[host]
}

// Commands returns every operation recorded, server by server (sorted by
// host), in the order each server saw them. Only with KeepCommands.
func (f *Fleet) Commands() []Record {
	f.mu.Lock()
	hosts := make([]string, 0, len(f.servers))
	for h := range f.servers {
		hosts = append(hosts, h)
	}
	f.mu.Unlock()
	sort.Strings(hosts)
	var out []Record
	for _, h := range hosts {
		s := f.Server(h)
		s.mu.Lock()
		for _, op := range s.ops {
			out = append(out, Record{Host: h, Op: op})
		}
		s.mu.Unlock()
	}
	return out
}

// Counts returns how many operations each server ran.
func (f *Fleet) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for h, s := range f.servers {
		s.mu.Lock()
		out[h] = s.count
		s.mu.Unlock()
	}
	return out
}

// Server is one simulated server: its files (over the fleet's Files) and
// what it ran.
type Server struct {
	fleet *Fleet
	host  string

	mu      sync.Mutex
	files   map[string]file // written here (dirs too)
	removed map[string]bool // removed here, from the fleet's Files
	ops     []string
	count   int
	n       int
}

type file struct {
	data []byte
	mode fs.FileMode // fs.ModeDir for a directory
	link string      // a symlink's target
}

func (s *Server) record(op string) {
	s.mu.Lock()
	s.count++
	if s.fleet.KeepCommands {
		s.ops = append(s.ops, op)
	}
	s.mu.Unlock()
}

// lookup finds name: a file written here, one of the fleet's, or a
// directory that holds one. Call with s.mu held.
func (s *Server) lookup(name string) (file, bool) {
	name = path.Clean(name)
	if f, ok := s.files[name]; ok {
		if f.link != "" {
			return s.lookup(path.Join(path.Dir(name), f.link))
		}
		return f, true
	}
	if s.removedLocked(name) {
		return file{}, false
	}
	if b, ok := s.fleet.Files[name]; ok {
		return file{data: b, mode: 0o644}, true
	}
	if name == "/" {
		return file{mode: fs.ModeDir | 0o755}, true
	}
	prefix := name + "/"
	for p := range s.files {
		if strings.HasPrefix(p, prefix) {
			return file{mode: fs.ModeDir | 0o755}, true
		}
	}
	if s.fleet.filesDirs()[name] {
		return file{mode: fs.ModeDir | 0o755}, true
	}
	return file{}, false
}

// removedLocked says whether name or a directory above it was removed
// here (and not written again).
func (s *Server) removedLocked(name string) bool {
	for p := name; ; p = path.Dir(p) {
		if s.removed[p] {
			return true
		}
		if p == "/" || p == "." {
			return false
		}
	}
}

// ReadFile returns a file of the server as it is now.
func (s *Server) ReadFile(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.lookup(name)
	if !ok || f.mode.IsDir() {
		return nil, false
	}
	return f.data, true
}

func (s *Server) write(name string, data []byte, mode fs.FileMode) {
	name = path.Clean(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.removed, name)
	s.files[name] = file{data: data, mode: mode}
}

// seq numbers the server's temporary names.
func (s *Server) seq() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.n
}

func (s *Server) mkdir(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := path.Clean(name); p != "/" && p != "."; p = path.Dir(p) {
		if f, ok := s.lookup(p); ok && f.mode.IsDir() {
			break
		}
		delete(s.removed, p)
		s.files[p] = file{mode: fs.ModeDir | 0o700}
	}
}

func (s *Server) remove(name string, all bool) error {
	name = path.Clean(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.lookup(name)
	if !ok {
		if all {
			return nil
		}
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	_ = f
	delete(s.files, name)
	if all {
		prefix := name + "/"
		for p := range s.files {
			if strings.HasPrefix(p, prefix) {
				delete(s.files, p)
			}
		}
	}
	s.removed[name] = true
	return nil
}

// conn is one connection's executor.
type conn struct {
	s      *Server
	closed bool
}

var _ exec.Executor = (*conn)(nil)
var _ exec.Dialer = (*conn)(nil)

func (c *conn) Host() string  { return c.s.host }
func (c *conn) IsLocal() bool { return false }
func (c *conn) Close() error  { c.closed = true; return nil }

// Run answers c: Fleet.Answer first, then the built-in answers (answer),
// else exit 0 with nothing printed.
func (c *conn) Run(ctx context.Context, cmd exec.Command) (exec.Result, error) {
	if err := ctx.Err(); err != nil {
		return exec.Result{}, err
	}
	c.s.record(cmd.String())
	if cmd.Stdin != nil {
		_, _ = io.Copy(io.Discard, cmd.Stdin)
	}
	if a := c.s.fleet.Answer; a != nil {
		if res, err, ok := a(c.s.host, cmd); ok {
			return res, err
		}
	}
	res, code := c.answer(cmd)
	if code != 0 {
		return res, &exec.ExitError{Command: cmd.String(), ExitCode: code, Stderr: string(res.Stderr)}
	}
	return res, nil
}

func (c *conn) ReadFile(_ context.Context, name string) ([]byte, error) {
	c.s.record("read " + name)
	b, ok := c.s.ReadFile(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), b...), nil
}

func (c *conn) WriteFile(_ context.Context, name string, data []byte, mode fs.FileMode) error {
	c.s.record("write " + name)
	c.s.write(name, append([]byte(nil), data...), mode)
	return nil
}

func (c *conn) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	b, err := c.ReadFile(ctx, name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// writer is a file being written by Create: in place on Close.
type writer struct {
	bytes.Buffer
	s    *Server
	name string
	mode fs.FileMode
}

func (w *writer) Close() error {
	w.s.write(w.name, w.Bytes(), w.mode)
	return nil
}

func (c *conn) Create(_ context.Context, name string, mode fs.FileMode) (io.WriteCloser, error) {
	c.s.record("create " + name)
	return &writer{s: c.s, name: name, mode: mode}, nil
}

func (c *conn) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	c.s.record("stat " + name)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	f, ok := c.s.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return info{name: path.Base(name), f: f}, nil
}

func (c *conn) Lstat(ctx context.Context, name string) (fs.FileInfo, error) {
	c.s.mu.Lock()
	f, ok := c.s.files[path.Clean(name)]
	c.s.mu.Unlock()
	if ok && f.link != "" {
		c.s.record("lstat " + name)
		return info{name: path.Base(name), f: file{mode: fs.ModeSymlink | 0o777, link: f.link}}, nil
	}
	return c.Stat(ctx, name)
}

func (c *conn) ReadDir(_ context.Context, name string) ([]fs.FileInfo, error) {
	c.s.record("readdir " + name)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	d, ok := c.s.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	if !d.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	prefix := path.Clean(name) + "/"
	seen := map[string]bool{}
	add := func(p string) {
		if !strings.HasPrefix(p, prefix) {
			return
		}
		child, _, _ := strings.Cut(strings.TrimPrefix(p, prefix), "/")
		if child != "" {
			seen[child] = true
		}
	}
	for p := range c.s.files {
		add(p)
	}
	for p := range c.s.fleet.Files {
		if !c.s.removedLocked(p) {
			add(p)
		}
	}
	out := make([]fs.FileInfo, 0, len(seen))
	for child := range seen {
		f, _ := c.s.lookup(prefix + child)
		out = append(out, info{name: child, f: f})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (c *conn) MkdirAll(_ context.Context, name string, mode fs.FileMode) error {
	c.s.record("mkdir " + name)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for p := path.Clean(name); p != "/" && p != "."; p = path.Dir(p) {
		if f, ok := c.s.lookup(p); ok && f.mode.IsDir() {
			break
		}
		delete(c.s.removed, p)
		c.s.files[p] = file{mode: fs.ModeDir | mode.Perm()}
	}
	return nil
}

func (c *conn) Remove(_ context.Context, name string) error {
	c.s.record("remove " + name)
	return c.s.remove(name, false)
}

func (c *conn) RemoveAll(_ context.Context, name string) error {
	c.s.record("remove -r " + name)
	return c.s.remove(name, true)
}

func (c *conn) Rename(_ context.Context, oldpath, newpath string) error {
	c.s.record("rename " + oldpath + " " + newpath)
	c.s.mu.Lock()
	f, ok := c.s.lookup(oldpath)
	c.s.mu.Unlock()
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	_ = c.s.remove(oldpath, true)
	c.s.write(newpath, f.data, f.mode)
	return nil
}

func (c *conn) Symlink(_ context.Context, target, link string) error {
	c.s.record("symlink " + target + " " + link)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	link = path.Clean(link)
	delete(c.s.removed, link)
	c.s.files[link] = file{mode: fs.ModeSymlink | 0o777, link: target}
	return nil
}

func (c *conn) Chmod(_ context.Context, name string, mode fs.FileMode) error {
	c.s.record(fmt.Sprintf("chmod %o %s", mode, name))
	return nil
}

func (c *conn) Chown(_ context.Context, name, owner, group string) error {
	c.s.record("chown " + owner + ":" + group + " " + name)
	return nil
}

// Dial opens a tunnel from the server: to its web server (port 80) it
// answers HTTP (serveHTTP), to its database server (3306) MariaDB's
// protocol (serveMySQL); anything else is refused.
func (c *conn) Dial(_ context.Context, network, addr string) (net.Conn, error) {
	c.s.record("tunnel " + network + " " + addr)
	_, port, _ := net.SplitHostPort(addr)
	switch port {
	case "80":
		client, server := net.Pipe()
		go serveHTTP(server)
		return client, nil
	case "3306":
		client, server := net.Pipe()
		go serveMySQL(server)
		return client, nil
	}
	return nil, fmt.Errorf("dial %s %s from %s: connection refused (simulated server)", network, addr, c.s.host)
}

// info is a simulated file's fs.FileInfo.
type info struct {
	name string
	f    file
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return int64(len(i.f.data)) }
func (i info) Mode() fs.FileMode  { return i.f.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.f.mode.IsDir() }
func (i info) Sys() any           { return nil }
