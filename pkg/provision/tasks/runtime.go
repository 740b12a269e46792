package tasks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
	"github.com/aegir-project/aegir/pkg/provision/priv"
)

// isolated reports whether the site runs in a php-fpm pool of its own, as
// its own Unix user.
func (s *site) isolated() bool { return s.c.Site.Isolation == entities.IsolationSite }

// runtime is the web server's php-fpm, for the pools of isolated sites.
func (s *site) runtime() (*fpm.Runtime, error) {
	if s.rt != nil {
		return s.rt, nil
	}
	rt, err := fpm.New(s.ex, fpm.Config{FPMSpec: s.c.System.FPM, WebUser: s.c.System.WebUser, WebGroup: s.c.System.WebGroup,
		Helper: s.helper()}, s.env)
	if err != nil {
		return nil, err
	}
	s.rt = rt
	return rt, nil
}

// deployUser is the web server's SSH user when the server is remote and
// that user is not root: it has no root rights of its own there. Shared
// sites' files are then its own with the web server's group (setgid,
// group-writable: PHP writes them, the deploy user removes what PHP
// wrote), and what it may not do goes through the helper
// (docs/remote-servers.md).
func (s *site) deployUser() string { return s.c.DeployUser() }

// helper is the privileged helper of a deploy user's server, else nil.
func (s *site) helper() *priv.Client {
	if s.deployUser() == "" {
		return nil
	}
	return &priv.Client{Ex: s.ex, Path: s.c.System.FPM.Helper}
}

// files is the executor for the site's settings and files: on a deploy
// user's server, a chown or removal the user may not do itself (an
// isolated site's group and files) goes to the helper.
func (s *site) files() exec.Executor {
	if h := s.helper(); h != nil {
		return priv.Executor{Executor: s.ex, Helper: *h}
	}
	return s.ex
}

// fpmSite is the site's runtime at PHP version v.
func (s *site) fpmSite(v string) fpm.Site {
	return fpm.Site{Domain: s.c.Site.Domain, User: entities.SiteUnixUser(s.c.Site.Domain), Version: v, Root: s.c.Site.Platform.Root, Also: s.alsoRoots}
}

// phpVersions are the php-fpm versions on the web server.
func (s *site) phpVersions(ctx context.Context) ([]string, error) { return fpm.Versions(ctx, s.ex) }

// chooseVersion is the PHP version the site runs (fpm.ChooseVersion), and
// the versions found.
func (s *site) chooseVersion(ctx context.Context) (string, []string, error) {
	found, err := s.phpVersions(ctx)
	if err != nil {
		return "", nil, err
	}
	v, err := fpm.ChooseVersion(s.c.Site.PHP, found)
	return v, found, err
}

// prepareRuntime readies where the site's PHP runs, before its settings
// and virtual host are written. An isolated site gets its user, its
// runtime directories and its pool (tested, php-fpm reloaded, its socket
// answering), each step pushed on u for a rollback; a shared site of a
// chosen PHP version gets that version's shared pool. It reports whether
// the site's user was made now (its files are to be handed to it).
func (s *site) prepareRuntime(ctx context.Context, u *undo) (bool, error) {
	created, pool, err := s.beginRuntime(ctx, u)
	if err != nil || pool == nil {
		return created, err
	}
	s.pool = pool
	pool.run(ctx)
	return created, s.joinPool(ctx, u)
}

// prepareRuntimeAside is prepareRuntime whose pool (written, tested,
// php-fpm reloaded, its socket waited for) is readied in the background
// while the task goes on with what does not need it: its settings and
// the platform's installer, which runs as the site's user in php-cli.
// joinPool waits for it, before the virtual host that sends PHP to the
// pool is written (and before a rollback). The pool's test and php-fpm's
// reload are most of what an isolated install costs more than a shared
// one (docs/benchmarks.md, Isolation).
func (s *site) prepareRuntimeAside(ctx context.Context, u *undo) (bool, error) {
	created, pool, err := s.beginRuntime(ctx, u)
	if err != nil || pool == nil {
		return created, err
	}
	s.pool = pool
	go pool.run(ctx)
	return created, nil
}

// pendingPool is an isolated site's pool being readied (beginRuntime),
// until joinPool.
type pendingPool struct {
	s       *site
	rt      *fpm.Runtime
	fs      fpm.Site
	found   []string
	done    chan struct{}
	changed bool
	err     error
	// refresh: settings were written while the pool did not answer
	// yet; php-fpm is told to forget them once it does.
	refresh bool
}

// run writes the pool, removes the pools of other versions and waits for
// its socket; its undo is pushed by joinPool.
func (p *pendingPool) run(ctx context.Context) {
	defer close(p.done)
	s, rt, fsite := p.s, p.rt, p.fs
	// A new pool reloads php-fpm, which empties its opcache: what it had
	// compiled of the platform is compiled again by the new pool once it
	// answers (web.Server.HotScripts), not by the site's first requests.
	var hot []string
	if _, err := s.ex.Lstat(ctx, rt.PoolFile(fsite.Version, fsite.User)); errors.Is(err, fs.ErrNotExist) {
		var herr error
		if hot, herr = s.ws.HotScripts(ctx, "", fsite.Root); herr != nil {
			s.env.Logf(provision.LevelDebug, "could not read what php-fpm compiled of %s: %v", fsite.Root, herr)
		} else {
			s.env.Logf(provision.LevelDebug, "php-fpm has %d scripts of %s compiled before its reload", len(hot), fsite.Root)
		}
	}
	p.changed, p.err = rt.WritePool(ctx, fsite, false)
	if p.err != nil {
		return
	}
	if p.changed {
		s.env.Logf(provision.LevelInfo, "php-fpm %s runs %s as %s at %s", fsite.Version, fsite.Domain, fsite.User, rt.Socket(fsite.User))
	}
	// A pool of another version (the site's PHP changed) goes.
	for _, o := range p.found {
		if o != fsite.Version {
			gone, err := rt.RemovePool(ctx, s.fpmSite(o))
			if err != nil {
				p.err = err
				return
			} else if gone {
				s.env.Logf(provision.LevelInfo, "removed the php-fpm %s pool of %s", o, fsite.Domain)
			}
		}
	}
	if p.changed {
		if p.err = s.waitPool(ctx, rt.Socket(fsite.User)); p.err == nil {
			s.ws.CompileScripts(ctx, rt.Socket(fsite.User), fsite.Root, hot)
		}
	}
}

// joinPool waits for the pool being readied, if any, pushes its undo on
// u and points the site's PHP at its socket; settings written meanwhile
// are refreshed in php-fpm now. It reports the pool's failure.
func (s *site) joinPool(ctx context.Context, u *undo) error {
	p := s.pool
	if p == nil {
		return nil
	}
	<-p.done
	s.pool = nil
	// A pool written whose reload failed is there all the same: the
	// rollback removes it (and the next write reloads, fpm.Runtime.Reload).
	if p.changed && u != nil {
		rt, fs := p.rt, p.fs
		u.push("remove the php-fpm pool of "+fs.Domain, func(ctx context.Context) error {
			_, err := rt.RemovePool(ctx, fs)
			return err
		})
	}
	if p.err != nil {
		return p.err
	}
	s.phpAddr = p.rt.Socket(p.fs.User)
	if p.refresh {
		s.refreshPHP(ctx)
	}
	return nil
}

// beginRuntime is prepareRuntime up to the pool: a shared site's logs and
// pool address, an isolated site's user and directories; the pool is
// left to the caller (nil for a shared site).
func (s *site) beginRuntime(ctx context.Context, u *undo) (bool, *pendingPool, error) {
	s.located = true
	if !s.isolated() {
		s.prepareLogs(ctx, u)
		return false, nil, s.sharedAddr(ctx)
	}
	rt, err := s.runtime()
	if err != nil {
		return false, nil, err
	}
	v, found, err := s.chooseVersion(ctx)
	if err != nil {
		return false, nil, err
	}
	fs := s.fpmSite(v)
	created, err := rt.EnsureUser(ctx, fs)
	if err != nil {
		return false, nil, err
	}
	if created && u != nil {
		u.push("remove the Unix user "+fs.User, func(ctx context.Context) error { return rt.RemoveUser(ctx, fs) })
	}
	if err := rt.EnsureDirs(ctx, fs.Domain, fs.User); err != nil {
		return created, nil, err
	}
	if created && u != nil {
		u.push("remove "+rt.SiteDir(fs.Domain), func(ctx context.Context) error { return rt.RemoveDirs(ctx, fs.Domain) })
	}
	s.logDir = rt.LogDir(fs.Domain)
	if err := rt.WriteLogrotate(ctx); err != nil {
		s.env.Logf(provision.LevelWarning, "%v: the sites' logs are not rotated", err)
	}
	// Until the pool answers, the site's PHP address is its socket all
	// the same (the virtual host is written after joinPool).
	s.phpAddr = rt.Socket(fs.User)
	return created, &pendingPool{s: s, rt: rt, fs: fs, found: found, done: make(chan struct{})}, nil
}

// sharedAddr sets where a shared site of a chosen PHP version sends its
// PHP: that version's shared pool (the server's own address serves its
// default, newest, version).
func (s *site) sharedAddr(ctx context.Context) error {
	if s.c.Site.PHP == "" {
		return nil
	}
	v, found, err := s.chooseVersion(ctx)
	if err != nil {
		return err
	}
	if v != found[len(found)-1] || s.c.Site.Web.PHPFPM == "" {
		s.phpAddr = "/run/php/php" + v + "-fpm.sock"
	}
	return nil
}

// locateRuntime tells where the site's PHP and logs are, as its last
// install or verify made them, changing nothing: for a task that writes
// its virtual host without preparing its runtime (a certificate's, a
// move's undo of the old place).
func (s *site) locateRuntime(ctx context.Context) error {
	if s.located {
		return nil
	}
	s.located = true
	rt, err := s.runtime()
	if err != nil {
		return err
	}
	if s.isolated() {
		s.phpAddr, s.logDir = rt.Socket(entities.SiteUnixUser(s.c.Site.Domain)), rt.LogDir(s.c.Site.Domain)
		return nil
	}
	if _, err := s.ex.Lstat(ctx, rt.LogDir(s.c.Site.Domain)); err == nil {
		s.logDir = rt.LogDir(s.c.Site.Domain)
	}
	return s.sharedAddr(ctx)
}

// prepareLogs makes a shared site's log directory, for its virtual host's
// own logs. Where aegir may not make it (a remote deploy user without
// root), the site logs into the web server's logs, with a warning.
func (s *site) prepareLogs(ctx context.Context, u *undo) {
	rt, err := s.runtime()
	if err == nil {
		_, serr := s.ex.Lstat(ctx, rt.SiteDir(s.c.Site.Domain))
		if err = rt.EnsureDirs(ctx, s.c.Site.Domain, ""); err == nil {
			if serr != nil && u != nil {
				u.push("remove "+rt.SiteDir(s.c.Site.Domain), func(ctx context.Context) error { return rt.RemoveDirs(ctx, s.c.Site.Domain) })
			}
			s.logDir = rt.LogDir(s.c.Site.Domain)
			err = rt.WriteLogrotate(ctx)
		}
	}
	if err != nil {
		s.env.Logf(provision.LevelWarning, "%s gets no logs of its own: %v", s.c.Site.Domain, errorLine(err))
	}
}

// waitPool waits until the pool at addr answers (php-fpm's reload makes
// its socket a moment after the signal).
func (s *site) waitPool(ctx context.Context, addr string) error {
	var err error
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		if err = s.ws.CheckPHPAt(ctx, addr); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the site's php-fpm pool does not answer after php-fpm's reload: %w", err)
}

// handFiles gives the site's files directories (the directory parts of
// its backup: WordPress's uploads, Drupal's site directory) to whoever
// runs its PHP, recursively when all tells that the owner changed (a
// site that became isolated or shared) or when the top of one is not the
// owner's, then writes the settings again (all) so
// that the settings file keeps its group. An isolated site's directories
// are its user's with the web server's group (static files are served),
// mode 2750: no other site's user may enter them. A shared site's are the
// web server user's, mode 0775, as the application's driver makes them.
func (s *site) handFiles(ctx context.Context, all bool) error {
	deploy := s.deployUser()
	if !s.isolated() && !all && deploy == "" {
		return nil // the driver made them so
	}
	rt, err := s.runtime()
	if err != nil {
		return err
	}
	owner, group, mode := s.c.System.WebUser, s.c.System.WebGroup, fs.FileMode(0o775)
	if deploy != "" {
		owner, mode = deploy, fs.ModeSetgid|0o775
	}
	if s.isolated() {
		owner, mode = entities.SiteUnixUser(s.c.Site.Domain), fs.ModeSetgid|0o750
	}
	// A deploy user gives a directory away after its mode is set: it may
	// not chmod it once it is no longer its own.
	giveAway := deploy != "" && owner != deploy
	if owner == "" {
		return nil
	}
	if group == "" {
		group = owner
	}
	handed := false
	for _, p := range s.p.Driver.BackupParts(s.p, s.c.Site.Domain) {
		if !p.Dir {
			continue
		}
		fi, err := s.ex.Lstat(ctx, p.Path)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
			continue // absent, or a link aegir leaves as it is
		}
		setMode := func() error {
			if fi.Mode()&(fs.ModeSetgid|fs.ModePerm) == mode {
				return nil
			}
			if err := s.ex.Chmod(ctx, p.Path, mode); err != nil {
				return fmt.Errorf("chmod %s on %s: %w", p.Path, s.ex.Host(), err)
			}
			return nil
		}
		if giveAway {
			if err := setMode(); err != nil {
				// Given away already (by the driver, with the wrong mode):
				// taken back for the chmod.
				if cerr := rt.Chown(ctx, p.Path, deploy, group); cerr != nil {
					return errors.Join(err, cerr)
				}
				if err := setMode(); err != nil {
					return err
				}
			}
		}
		tree := all
		if !tree {
			// A directory whose top is not the owner's was not handed
			// over (a switch that failed midway): all of it is. The
			// files under a right top are left alone: no walk of every
			// upload at each verify.
			got, err := rt.OwnerOf(ctx, p.Path)
			if err != nil {
				return err
			}
			tree = got != owner+":"+group
		}
		if tree {
			if err := rt.ChownTree(ctx, p.Path, owner, group); err != nil {
				return err
			}
			handed = true
			if owner == deploy {
				// Back from a site's user, whose PHP made its directories
				// 2750: group-writable again, for PHP as the web server.
				for _, c := range [][]string{{"chmod", "-R", "g+rwX", "--", p.Path}, {"find", p.Path, "-type", "d", "-exec", "chmod", "g+s", "{}", "+"}} {
					if _, err := s.ex.Run(ctx, exec.Command{Name: c[0], Args: c[1:]}); err != nil {
						return fmt.Errorf("make %s group-writable on %s: %w", p.Path, s.ex.Host(), err)
					}
				}
			}
		}
		if !giveAway {
			if err := setMode(); err != nil {
				return err
			}
		}
	}
	// The settings again, for their owner and group: a tree handed over
	// holds them in Drupal's site directory (sites/DOMAIN/settings.php).
	if all || handed {
		_, err := s.writeSettings(ctx)
		return err
	}
	return nil
}

// dropRuntime removes what an isolated site had of its own: its pools
// (of every version), its socket, its user, and with all its runtime
// directory (its logs too: the site is deleted); without all, its logs
// stay, the web server's. A site that has no user (a shared site; its
// pools go before its user) costs one look-up and changes nothing but,
// with all, its runtime directory. It reports whether it removed a user
// or pool (the site's files then go back to the web server's user).
func (s *site) dropRuntime(ctx context.Context, all bool) (bool, error) {
	rt, err := s.runtime()
	if err != nil {
		return false, err
	}
	any := false
	if has, err := rt.HasUser(ctx, s.fpmSite("")); err != nil {
		return false, err
	} else if has {
		if any, err = s.dropPoolsAndUser(ctx, rt); err != nil {
			return any, err
		}
	}
	if !all {
		if any {
			// Its logs stay, its temporary files and sessions go.
			return any, rt.DropOwnDirs(ctx, s.c.Site.Domain)
		}
		return any, nil
	}
	if _, err := s.ex.Lstat(ctx, rt.SiteDir(s.c.Site.Domain)); err == nil {
		if err := rt.RemoveDirs(ctx, s.c.Site.Domain); err != nil && !any && s.helper() != nil {
			// A shared site's logs on a deploy user's server without the
			// helper (which alone makes them) are not the site: its delete
			// goes on.
			s.env.Logf(provision.LevelWarning, "%s is left on %s: %v; remove it as root", rt.SiteDir(s.c.Site.Domain), s.ex.Host(), errorLine(err))
			return any, nil
		} else if err != nil {
			return any, err
		}
		s.env.Logf(provision.LevelInfo, "removed %s", rt.SiteDir(s.c.Site.Domain))
	}
	return any, nil
}

// dropPoolsAndUser removes the site's pools of every version, then its
// user (aegir's for the site: the caller checked).
func (s *site) dropPoolsAndUser(ctx context.Context, rt *fpm.Runtime) (bool, error) {
	found, err := s.phpVersions(ctx)
	if err != nil {
		return false, err
	}
	any := false
	for _, v := range found {
		gone, err := rt.RemovePool(ctx, s.fpmSite(v))
		if err != nil {
			return any, err
		}
		if gone {
			any = true
			s.env.Logf(provision.LevelInfo, "removed the php-fpm %s pool of %s", v, s.c.Site.Domain)
		}
	}
	return true, rt.RemoveUser(ctx, s.fpmSite(""))
}
