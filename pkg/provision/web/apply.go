package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// dirLocks serializes write-test-rollback on one config dir within this
// process, so that a task never tests (and rolls back for) another task's
// half-applied file. Reloads happen outside the lock.
var dirLocks sync.Map // key string -> *sync.Mutex

func (s *Server) lock() func() {
	m, _ := dirLocks.LoadOrStore(s.ex.Host()+"\x00"+s.cfg.ConfigDir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// WriteSite writes the site's virtual host (and the include file, if it is
// missing or out of date), tests the configuration and reloads the server;
// it returns once the server serves the change (see Reload). It reports
// whether any file changed; when nothing changed it neither tests nor
// reloads, unless a reload is pending (Config.ReloadPending). A failed test
// puts the previous files back and returns a *provision.Error (code
// config_test) with the test's output.
func (s *Server) WriteSite(ctx context.Context, site Site) (changed bool, err error) {
	changed, err = s.writeSite(ctx, site)
	if err != nil || !changed && !s.pending {
		return changed, err
	}
	return changed, s.Reload(ctx)
}

// PutBackSite writes the site's virtual host and tests the configuration
// as WriteSite does, but does not reload: after a change whose reload
// failed, it puts back the virtual host that the site's record still
// describes, so that the pending reload (the next task's on the server)
// serves what aegir reports, not the change that failed.
func (s *Server) PutBackSite(ctx context.Context, site Site) error {
	_, err := s.writeSite(ctx, site)
	return err
}

// writeSite is WriteSite without the reload.
func (s *Server) writeSite(ctx context.Context, site Site) (changed bool, err error) {
	end := s.env.Reloads.Begin(s.reloadK)
	defer end()
	site, err = s.normalize(site)
	if err != nil {
		return false, err
	}
	body, origin, err := s.renderSite(ctx, site)
	if err != nil {
		return false, err
	}
	if site.HTTPS != HTTPSOff && (site.CertFile == "" || site.KeyFile == "") {
		s.logf(provision.LevelInfo, "%s: HTTPS %s waits for a certificate; until then the site answers on HTTP only", site.Domain, site.HTTPS)
	}
	if err := s.makeDirs(ctx); err != nil {
		return false, err
	}
	unlock := s.lock()
	changed, err = s.apply(ctx, append(s.includeChanges(), fileChange{path: s.SiteFile(site.Domain), data: body, origin: origin}))
	unlock()
	return changed, err
}

// RemoveSite removes the site's virtual host, tests the configuration and
// reloads the server. It reports whether the file was there.
func (s *Server) RemoveSite(ctx context.Context, domain string) (changed bool, err error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := checkDomain("site domain", domain, false); err != nil {
		return false, err
	}
	end := s.env.Reloads.Begin(s.reloadK)
	unlock := s.lock()
	changed, err = s.apply(ctx, []fileChange{{path: s.SiteFile(domain), remove: true}})
	unlock()
	end()
	if err != nil || !changed && !s.pending {
		return changed, err
	}
	return changed, s.Reload(ctx)
}

// Sites lists the domains that have a virtual host file on the server.
func (s *Server) Sites(ctx context.Context) ([]string, error) {
	entries, err := s.ex.ReadDir(ctx, path.Join(s.cfg.ConfigDir, "vhost.d"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if d, ok := strings.CutSuffix(e.Name(), ".conf"); ok && !e.IsDir() {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

// makeDirs makes the config dir, its vhost.d and the default ACME
// challenge dir (readable by the web server's workers).
func (s *Server) makeDirs(ctx context.Context) error {
	for _, d := range []string{path.Join(s.cfg.ConfigDir, "vhost.d"), s.ACMEChallengeDir()} {
		if err := s.ex.MkdirAll(ctx, d, 0o755); err != nil {
			return s.errf(provision.ErrCommand, "check that aegir may write in "+path.Dir(s.cfg.ConfigDir)+" on "+s.ex.Host(), err, "making %s on %s", d, s.ex.Host())
		}
	}
	return nil
}

// Status is what Verify found.
type Status struct {
	Type        string `json:"type"`
	Binary      string `json:"binary"`
	Version     string `json:"version"`
	ConfigDir   string `json:"config_dir"`
	IncludeFile string `json:"include_file"`
	IncludeLine string `json:"include_line"`
	PHPFPM      string `json:"php_fpm"`
	Changed     bool   `json:"changed"` // the include file was (re)written
}

// Verify checks the web service: the server program is installed (and its
// version), the config dir and the include file are written, PHP-FPM is
// known, and the configuration test passes. It reloads the server when it
// (re)wrote the include file.
func (s *Server) Verify(ctx context.Context) (*Status, error) {
	st := &Status{Type: s.cfg.Type, ConfigDir: s.cfg.ConfigDir, IncludeFile: s.IncludeFile(), IncludeLine: s.IncludeLine()}
	bin, version, err := s.version(ctx)
	if err != nil {
		return st, err
	}
	st.Binary, st.Version = bin, version
	s.logf(provision.LevelInfo, "%s %s found at %s on %s", s.cfg.Type, version, bin, s.ex.Host())
	if st.PHPFPM, err = s.phpFPM(ctx); err != nil {
		return st, err
	}
	if err := s.makeDirs(ctx); err != nil {
		return st, err
	}
	end := s.env.Reloads.Begin(s.reloadK)
	unlock := s.lock()
	st.Changed, err = s.apply(ctx, s.includeChanges())
	if err == nil && !st.Changed {
		err = s.test(ctx, nil)
	}
	unlock()
	end()
	if err != nil {
		return st, err
	}
	if st.Changed || s.pending {
		if err := s.Reload(ctx); err != nil {
			return st, err
		}
	}
	s.logf(provision.LevelInfo, "%s on %s must include %s: %s %s", s.cfg.Type, s.ex.Host(), st.IncludeFile, st.IncludeLine, s.fl.includeHelp)
	s.checkReadable(ctx, s.ACMEChallengeDir())
	return st, nil
}

// checkReadable warns when the web server's user cannot enter dir, whose
// files the server's workers must read (ACME challenges). A check that
// cannot run (no right to switch users) is only a debug line.
func (s *Server) checkReadable(ctx context.Context, dir string) {
	if s.cfg.WebUser == "" || s.cfg.PHPUser != "" && s.cfg.PHPUser != s.cfg.WebUser {
		return // no way to be the web server's user (a deploy user without sudo)
	}
	_, err := s.ex.Run(ctx, exec.Command{Name: "test", Args: []string{"-x", dir}, User: s.cfg.WebUser, Timeout: timeout})
	var xe *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &xe) && xe.ExitCode == 1:
		s.logf(provision.LevelWarning, "%s cannot enter %s on %s, so ACME challenges (HTTPS certificates) will fail: let it through every parent directory (chmod o+x), or put the aegir home elsewhere",
			s.cfg.WebUser, dir, s.ex.Host())
	default:
		s.logf(provision.LevelDebug, "could not check as %s that %s is readable: %v", s.cfg.WebUser, dir, err)
	}
}

// version finds the server program and asks its version.
func (s *Server) version(ctx context.Context) (bin, version string, err error) {
	name, err := exec.FindProgram(ctx, s.ex, s.fl.binaries...)
	if errors.Is(err, exec.ErrNotFound) {
		return "", "", s.errf(provision.ErrMissingBinary,
			fmt.Sprintf("install it on %s (Debian: apt-get install %s), or change the server's web service type", s.ex.Host(), s.fl.packageName),
			err, "%s is not installed on %s", s.cfg.Type, s.ex.Host())
	}
	if err != nil {
		return "", "", s.errf(provision.ErrCommand, "check that the server runs sh", err, "looking for %s", s.cfg.Type)
	}
	res, err := s.ex.Run(ctx, exec.Command{Name: name, Args: s.fl.versionArgs, Timeout: timeout})
	out := string(res.Stdout) + string(res.Stderr)
	if err != nil {
		return name, "", s.errf(provision.ErrCommand, "check that "+s.cfg.Type+" runs on the server", err, "asking %s its version", name)
	}
	m := s.fl.versionRe.FindStringSubmatch(out)
	if m == nil {
		return name, "", s.errf(provision.ErrCommand, "check that "+name+" on the server is "+s.cfg.Type, nil,
			"cannot read a version in the output of %s %s: %q", name, strings.Join(s.fl.versionArgs, " "), strings.TrimSpace(out))
	}
	return name, m[1], nil
}

// timeout bounds a config test or a reload.
const timeout = 2 * time.Minute

// command returns how to run an admin's command line, or else the default
// control program (the first of its names found on the server) with args.
func (s *Server) command(ctx context.Context, line string, args []string) (exec.Command, error) {
	if line != "" {
		return exec.Command{Name: "sh", Args: []string{"-c", line}, Timeout: timeout}, nil
	}
	names := s.ctlNames()
	prog, err := exec.FindProgram(ctx, s.ex, names...)
	if err != nil {
		return exec.Command{}, s.errf(provision.ErrMissingBinary,
			fmt.Sprintf("install %s on %s, or set the server's web test/restart commands", s.fl.packageName, s.ex.Host()),
			err, "none of %s found on %s", strings.Join(names, ", "), s.ex.Host())
	}
	return s.ctlCommand(prog, args), nil
}

// ctlCommand runs the control program found with args: through `sudo -n`
// when the configuration says so, as `sudo -n PROGRAM ARGS` so that a
// sudo rule can allow exactly that command.
func (s *Server) ctlCommand(prog string, args []string) exec.Command {
	if s.cfg.Sudo {
		return exec.Command{Name: "sudo", Args: append([]string{"-n", prog}, args...), Timeout: timeout}
	}
	return exec.Command{Name: prog, Args: args, Timeout: timeout}
}

// sudoHint is the hint for a command that sudo refused (its output says
// "sudo: ..."), or "".
func (s *Server) sudoHint(c exec.Command, out string) string {
	if !strings.Contains(out, "sudo:") {
		return ""
	}
	return fmt.Sprintf("sudo refused `%s` on %s: give the SSH user a sudo rule that lets it run that command as root without a password (docs/remote-servers.md), then run the task again",
		c.String(), s.ex.Host())
}

func (s *Server) ctlNames() []string {
	if s.fl.ctl != nil {
		return s.fl.ctl
	}
	return s.fl.binaries
}

// shown is how to tell the administrator to run a command: their own
// command line as they wrote it, else the default command.
func shown(line string, c exec.Command) string {
	if line != "" {
		return line
	}
	return c.String()
}

// run runs a command, logging it and its output.
func (s *Server) run(ctx context.Context, c exec.Command) (string, error) {
	s.logf(provision.LevelCommand, "%s: %s", s.ex.Host(), c.String())
	res, err := s.ex.Run(ctx, c)
	out := strings.TrimSpace(string(res.Stdout) + string(res.Stderr))
	if out != "" {
		s.logf(provision.LevelOutput, "%s", out)
	}
	return out, err
}

// test runs the configuration test. origins name the templates whose output
// is being tested, for the hint.
func (s *Server) test(ctx context.Context, origins []string) error {
	c, err := s.command(ctx, s.cfg.TestCmd, s.fl.testArgs)
	if err != nil {
		return err
	}
	out, err := s.run(ctx, c)
	if err == nil {
		return nil
	}
	var xe *exec.ExitError
	if errors.Is(err, exec.ErrNotFound) || errors.As(err, &xe) && xe.ExitCode == 127 && c.Name == "sh" {
		return s.errf(provision.ErrMissingBinary, "install "+s.fl.packageName+" on "+s.ex.Host()+", or fix the server's web test command (http-test-cmd)",
			err, "cannot run the %s config test on %s", s.cfg.Type, s.ex.Host())
	}
	hint := fmt.Sprintf("read the test's output above; run `%s` on %s to see it again", shown(s.cfg.TestCmd, c), s.ex.Host())
	if h := s.sudoHint(c, out); h != "" {
		hint = h
	}
	for _, o := range origins {
		if strings.HasPrefix(o, "template override ") {
			hint = fmt.Sprintf("the %s renders an invalid configuration: fix it or remove it, then run the task again; %s", o, hint)
		}
	}
	return &provision.Error{Code: provision.ErrConfigTest, Hint: hint,
		Msg: fmt.Sprintf("%s config test failed on %s:\n%s", s.cfg.Type, s.ex.Host(), out)}
}

// fileChange is one file to write (or remove) under the config dir.
type fileChange struct {
	path   string
	data   []byte
	remove bool
	origin string // the template it came from
	err    error  // rendering failed
	keep   bool   // written only when missing
}

// includeChanges are the include file and, if it is missing, the
// generation file it includes (which only a reload rewrites).
func (s *Server) includeChanges() []fileChange {
	b, origin, err := s.renderInclude()
	return []fileChange{{path: s.generationFile(), data: s.fl.generation(s.probeHost(), newToken()), keep: true, origin: "reload probe"},
		{path: s.IncludeFile(), data: b, origin: origin, err: err}}
}

// saved is a file's state before apply touched it.
type saved struct {
	path   string
	data   []byte
	exists bool
}

// apply writes the changes whose bytes differ, tests the configuration,
// and on failure puts every file back as it was. It reports whether
// anything changed. The caller holds the lock.
func (s *Server) apply(ctx context.Context, changes []fileChange) (bool, error) {
	var done []saved
	var origins []string
	for _, ch := range changes {
		if ch.err != nil {
			return false, ch.err
		}
		old, err := s.ex.ReadFile(ctx, ch.path)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, s.rollback(ctx, done, s.errf(provision.ErrCommand, "check the permissions of "+s.cfg.ConfigDir, err, "reading %s on %s", ch.path, s.ex.Host()))
		}
		if ch.remove && !exists || !ch.remove && exists && (ch.keep || bytes.Equal(old, ch.data)) {
			continue
		}
		done = append(done, saved{path: ch.path, data: old, exists: exists})
		if ch.remove {
			err = s.ex.Remove(ctx, ch.path)
			s.logf(provision.LevelInfo, "removed %s", ch.path)
		} else {
			origins = append(origins, ch.origin)
			err = s.ex.WriteFile(ctx, ch.path, ch.data, 0o644)
			s.logf(provision.LevelInfo, "wrote %s (from the %s)", ch.path, ch.origin)
		}
		if err != nil {
			return false, s.rollback(ctx, done, s.errf(provision.ErrCommand, "check the permissions and free space of "+s.cfg.ConfigDir, err, "writing %s on %s", ch.path, s.ex.Host()))
		}
	}
	if len(done) == 0 {
		return false, nil
	}
	if err := s.test(ctx, origins); err != nil {
		return false, s.rollback(ctx, done, err)
	}
	return true, nil
}

// rollback puts files back as they were and returns cause, amended with
// what the rollback did.
func (s *Server) rollback(ctx context.Context, done []saved, cause error) error {
	if len(done) == 0 {
		return cause
	}
	// Put the files back even when the task was cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var failed []string
	for i := len(done) - 1; i >= 0; i-- {
		f := done[i]
		var err error
		if f.exists {
			err = s.ex.WriteFile(ctx, f.path, f.data, 0o644)
		} else {
			err = s.ex.RemoveAll(ctx, f.path)
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", f.path, err))
		}
	}
	var pe *provision.Error
	if !errors.As(cause, &pe) {
		pe = &provision.Error{Code: provision.ErrInternal, Msg: "applying the web server configuration", Err: cause}
	}
	if len(failed) > 0 {
		s.logf(provision.LevelError, "could not put back: %s", strings.Join(failed, "; "))
		pe.Hint = "aegir could not put the previous files back (" + strings.Join(failed, "; ") + "); fix them by hand before reloading " + s.cfg.Type + "; " + pe.Hint
		return pe
	}
	s.logf(provision.LevelWarning, "put back the previous configuration; %s keeps running its last good config", s.cfg.Type)
	if note := fmt.Sprintf("aegir put the previous files back: %s keeps its last good configuration", s.cfg.Type); pe.Err == nil {
		pe.Msg += "\n(" + note + ")"
	} else {
		pe.Hint = note + "; " + pe.Hint
	}
	// Was the configuration broken before this change? Then say so: the
	// fault is elsewhere.
	if pe.Code == provision.ErrConfigTest {
		if err := s.test(ctx, nil); err != nil {
			pe.Hint = fmt.Sprintf("the %s configuration on %s fails its test even without this change; fix it first (see the output above), then run the task again", s.cfg.Type, s.ex.Host())
		}
	}
	return pe
}
