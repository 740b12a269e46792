package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// A reload is done when the web server serves the new configuration. The
// web server's reload command only signals it: nginx starts new workers
// and tells the old ones to stop accepting a moment later; apache tells
// its children to stop, reads the configuration and starts new ones. So
// before each reload aegir writes a new token in the generation file, and
// afterwards asks the reload probe (a server block of the include file, on
// the sites' address) for it until the new configuration answers with it.
// For nginx it also waits until the old workers no longer accept
// connections: they call themselves "worker process is shutting down"
// from then on.
const (
	probePath = "/.aegir-generation"
	// DefaultReloadTimeout bounds the wait for the new configuration.
	DefaultReloadTimeout = time.Minute
	// foreignAfter: a server that answers but never with the probe for
	// this long does not include aegir's file.
	foreignAfter = 10 * time.Second
	probeEvery   = 10 * time.Millisecond
	// noWorkersAfter: without the probe (a server without sites), a
	// reload after which no new nginx worker shows for this long is not
	// waited for.
	noWorkersAfter = 2 * time.Second
	noProbe        = "it answers, but without aegir's reload probe"
)

func (s *Server) generationFile() string { return path.Join(s.cfg.ConfigDir, "generation.conf") }

// probeFile holds the reload probe's server block (virtual host) while the
// server has sites: the include file includes it after them, so that it
// is never the first of the sites' address, which answers the names no
// server block (virtual host) has. Without sites there is none: the
// probe would be the first, and answer instead of the system's own
// default (nginx without a default_server, apache's 000-default included
// after aegir's file), and the reload has no site to wait for.
func (s *Server) probeFile() string { return path.Join(s.cfg.ConfigDir, "probe.conf") }

// writeProbe writes the probe file, or removes it when the server has no
// site, and reports whether the probe is there.
func (s *Server) writeProbe(ctx context.Context) (bool, error) {
	sites, err := s.Sites(ctx)
	if err != nil {
		return false, s.errf(provision.ErrCommand, "check the permissions of "+s.cfg.ConfigDir, err, "listing the sites of %s on %s", s.cfg.ConfigDir, s.ex.Host())
	}
	if len(sites) == 0 {
		err = s.ex.RemoveAll(ctx, s.probeFile())
	} else {
		err = s.ex.WriteFile(ctx, s.probeFile(), s.fl.probe(s.fl.listen(s.cfg.ListenIP, s.cfg.HTTPPort), s.probeHost(), s.generationFile()), 0o644)
	}
	if err != nil {
		return false, s.errf(provision.ErrCommand, "check the permissions and free space of "+s.cfg.ConfigDir, err, "writing %s on %s", s.probeFile(), s.ex.Host())
	}
	return len(sites) > 0, nil
}

// probeHost is the name the reload probe answers on: one per config dir,
// so that two aegir servers on one web server do not answer for each other.
func (s *Server) probeHost() string {
	h := sha256.Sum256([]byte(s.cfg.ConfigDir))
	return "g-" + hex.EncodeToString(h[:8]) + ".aegir-generation.invalid"
}

// name is the server's aegir name, the last element of its config dir.
func (s *Server) name() string { return path.Base(s.cfg.ConfigDir) }

func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Reload reloads the web server and returns once it serves the new
// configuration, once for all the tasks of this run that ask for it at
// about the same time.
// Its outcome is reported to the front end (Env.ReportReload), which
// remembers a reload that failed for the next task on the server.
func (s *Server) Reload(ctx context.Context) error {
	started, err := s.env.Reloads.ReloadAt(ctx, s.reloadK, s.reload)
	if started.IsZero() {
		started = time.Now() // cancelled while it waited: assume it failed
	}
	s.env.ReportReload(s.name(), started, err)
	if err == nil {
		s.pending = false
	}
	return err
}

// Settle does the reload that a task left pending when its reload failed
// (Config.ReloadPending). A reload that fails again is a warning and stays
// pending; the writes (WriteSite, RemoveSite, Verify) try again, and fail.
func (s *Server) Settle(ctx context.Context) {
	if !s.pending {
		return
	}
	s.logf(provision.LevelInfo, "a reload of %s on %s failed after a change; reloading now", s.cfg.Type, s.ex.Host())
	if err := s.Reload(ctx); err != nil {
		s.logf(provision.LevelWarning, "%s on %s still does not reload: %v; the next task on server %s tries again", s.cfg.Type, s.ex.Host(), err, s.name())
	}
}

func (s *Server) reload(ctx context.Context) error {
	c, err := s.command(ctx, s.cfg.RestartCmd, s.fl.reloadArgs)
	if err != nil {
		return err
	}
	var old map[int]bool
	if s.fl.workerTitle != "" {
		old = s.workers(ctx)
	}
	probe, err := s.writeProbe(ctx)
	if err != nil {
		return err
	}
	token := newToken()
	if err := s.ex.WriteFile(ctx, s.generationFile(), s.fl.generation(s.probeHost(), token), 0o644); err != nil {
		return s.errf(provision.ErrCommand, "check the permissions and free space of "+s.cfg.ConfigDir, err, "writing %s on %s", s.generationFile(), s.ex.Host())
	}
	start := time.Now()
	if out, err := s.run(ctx, c); err != nil {
		hint := fmt.Sprintf("the configuration passed its test; check that %s runs on %s and read its error log, then run `%s` there", s.cfg.Type, s.ex.Host(), shown(s.cfg.RestartCmd, c))
		if h := s.sudoHint(c, out); h != "" {
			hint = h
		}
		return s.errf(provision.ErrCommand, hint, err, "reloading %s on %s", s.cfg.Type, s.ex.Host())
	}
	if !probe {
		return s.awaitOldWorkers(ctx, old, start, shown(s.cfg.RestartCmd, c))
	}
	if err := s.awaitGeneration(ctx, token, old, start, shown(s.cfg.RestartCmd, c)); err != nil {
		return err
	}
	s.logf(provision.LevelInfo, "%s on %s serves the new configuration (%s after the reload)", s.cfg.Type, s.ex.Host(), time.Since(start).Round(time.Millisecond))
	return nil
}

// awaitGeneration asks the reload probe until it answers token (and, for
// nginx, none of the workers in old still accepts), or fails once the
// reload timeout has passed since start, saying what it saw last (restart
// is the reload command, for the hint).
func (s *Server) awaitGeneration(ctx context.Context, token string, old map[int]bool, start time.Time, restart string) error {
	timeout := s.cfg.ReloadTimeout
	if timeout <= 0 {
		timeout = DefaultReloadTimeout
	}
	ctx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()
	addr := s.ListenAddr("http")
	what := fmt.Sprintf("%s of server %s (%s)", s.cfg.Type, s.name(), s.ex.Host())
	var last string // what the server answered last
	ours := false   // the probe answered at least once
	for {
		got, pid, err := s.probe(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			last = err.Error()
		case got == token:
			stale, err := s.oldWorkers(ctx, pid, old)
			if err != nil {
				s.logf(provision.LevelDebug, "%s: cannot tell its old workers from the new ones (%v); the new configuration answers", what, err)
			}
			if len(stale) == 0 {
				return nil
			}
			ours, last = true, fmt.Sprintf("the new configuration answers, but old worker processes (%s) still accept connections", stale)
		case got != "":
			ours, last = true, "it still answers with the previous configuration"
		default:
			last = noProbe
		}
		foreign := !ours && last == noProbe
		if foreign && time.Since(start) > foreignAfter {
			return s.waitError(what, addr, last, restart, foreign, time.Since(start))
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return s.waitError(what, addr, last, restart, foreign, timeout)
			}
			return ctx.Err()
		case <-time.After(probeEvery):
		}
	}
}

// awaitOldWorkers is the wait of a reload without the probe (the server
// has no site): for nginx, until none of the workers in old still accepts
// connections (its new workers start before the old ones stop); apache's
// old children stop accepting before the new ones start.
func (s *Server) awaitOldWorkers(ctx context.Context, old map[int]bool, start time.Time, restart string) error {
	timeout := s.cfg.ReloadTimeout
	if timeout <= 0 {
		timeout = DefaultReloadTimeout
	}
	ctx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()
	what := fmt.Sprintf("%s of server %s (%s)", s.cfg.Type, s.name(), s.ex.Host())
	for len(old) > 0 {
		ps, err := s.procs(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.logf(provision.LevelDebug, "%s: cannot list its workers (%v) after the reload", what, err)
			return nil
		}
		// The masters that reloaded: those with a worker that is new
		// (workers of other nginx instances on the machine are in old
		// too, and stay).
		masters := map[int]bool{}
		for _, p := range ps {
			if !old[p.pid] && p.args == s.fl.workerTitle {
				masters[p.ppid] = true
			}
		}
		stale, last := []int(nil), "no new worker process started"
		for _, p := range ps {
			if masters[p.ppid] && old[p.pid] && p.args == s.fl.workerTitle {
				stale = append(stale, p.pid)
			}
		}
		if len(masters) > 0 && len(stale) == 0 {
			break
		}
		if len(masters) == 0 && time.Since(start) > noWorkersAfter {
			// Not a master aegir can see (another machine's nginx,
			// a stand-in): nothing to tell the generations apart by.
			s.logf(provision.LevelDebug, "%s: no new worker process within %s of the reload; not waiting for its old ones", what, noWorkersAfter)
			break
		}
		if len(stale) > 0 {
			sort.Ints(stale)
			last = fmt.Sprintf("old worker processes (%s) still accept connections", strings.Trim(fmt.Sprint(stale), "[]"))
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return s.waitError(what, s.ListenAddr("http"), last, restart, false, timeout)
			}
			return ctx.Err()
		case <-time.After(probeEvery):
		}
	}
	// It answers at all (any answer: it has no site of aegir's).
	for {
		_, err := s.Request(ctx, "http", "aegir-verify.invalid", "/", "aegir-reload", 5*time.Second)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return s.waitError(what, s.ListenAddr("http"), err.Error(), restart, false, timeout)
			}
			return ctx.Err()
		case <-time.After(probeEvery):
		}
	}
	s.logf(provision.LevelInfo, "%s on %s reloaded (%s); it serves no site of aegir's, so it has no reload probe to ask", s.cfg.Type, s.ex.Host(), time.Since(start).Round(time.Millisecond))
	return nil
}

// waitError says why the wait for a reload failed after waited: the
// server answered without the probe (foreign), or as last says.
func (s *Server) waitError(what, addr, last, restart string, foreign bool, waited time.Duration) error {
	if foreign {
		return provision.Errorf(provision.ErrCommand,
			fmt.Sprintf("check that the system's %s includes %s (the line: %s, %s) and that a template override of %s keeps its reload probe; "+
				"read its error log too: a configuration it could not load (an address it cannot listen on) leaves it on the previous one; then run the task again",
				s.cfg.Type, s.IncludeFile(), s.IncludeLine(), s.fl.includeHelp, s.fl.includeTmpl),
			"%s does not serve aegir's configuration on %s: %s after the reload, %s", what, addr, waited.Round(time.Second), last)
	}
	return provision.Errorf(provision.ErrCommand,
		fmt.Sprintf("check that %s runs on %s and listens on %s, read its error log, and check that the restart command reloads this very server (`%s`); then run the task again",
			s.cfg.Type, s.ex.Host(), addr, restart),
		"%s did not serve the new configuration within %s of the reload: %s", what, waited.Round(time.Second), last)
}

// probe asks the reload probe for its token, and the worker's process id
// when the server says it (nginx). An answer that is not the probe's
// gives "".
func (s *Server) probe(ctx context.Context) (token string, pid int, err error) {
	host := s.probeHost()
	a, err := s.Request(ctx, "http", host, probePath, "aegir-reload", 5*time.Second)
	if err != nil {
		return "", 0, err
	}
	rest, ok := strings.CutPrefix(a.Location, "http://"+host+"/")
	if a.Code != http.StatusSeeOther || !ok || rest == "" {
		return "", 0, nil
	}
	token, p, _ := strings.Cut(rest, "/")
	pid, _ = strconv.Atoi(p)
	return token, pid, nil
}

// proc is one process of the web server's machine.
type proc struct {
	pid, ppid int
	args      string
}

// procs lists the processes of the server (ps works for any user).
func (s *Server) procs(ctx context.Context) ([]proc, error) {
	res, err := s.ex.Run(ctx, exec.Command{Name: "ps", Args: []string{"-e", "-o", "pid=,ppid=,args="}, Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			out = append(out, proc{pid: pid, ppid: ppid, args: strings.Join(f[2:], " ")})
		}
	}
	return out, nil
}

// workers are the processes that call themselves accepting workers, on
// the whole machine: before a reload, the old generation is among them.
// Nil when they cannot be listed.
func (s *Server) workers(ctx context.Context) map[int]bool {
	ps, err := s.procs(ctx)
	if err != nil {
		s.logf(provision.LevelDebug, "cannot list the processes of %s (%v): the reload's wait watches the configuration only", s.ex.Host(), err)
		return nil
	}
	m := map[int]bool{}
	for _, p := range ps {
		if p.args == s.fl.workerTitle {
			m[p.pid] = true
		}
	}
	return m
}

// oldWorkers are the workers of old that still accept connections beside
// the new worker pid: children of the same master that still call
// themselves accepting workers.
func (s *Server) oldWorkers(ctx context.Context, pid int, old map[int]bool) (string, error) {
	if len(old) == 0 || pid == 0 {
		return "", nil
	}
	ps, err := s.procs(ctx)
	if err != nil {
		return "", err
	}
	master := 0
	for _, p := range ps {
		if p.pid == pid {
			master = p.ppid
		}
	}
	if master == 0 {
		return "", errors.New("the worker that answered is not among the processes aegir can see")
	}
	var stale []int
	for _, p := range ps {
		if p.ppid == master && old[p.pid] && p.args == s.fl.workerTitle {
			stale = append(stale, p.pid)
		}
	}
	sort.Ints(stale)
	return strings.Trim(fmt.Sprint(stale), "[]"), nil
}
