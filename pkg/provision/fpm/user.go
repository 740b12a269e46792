package fpm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/priv"
)

// comment is the GECOS field of a site's user: how aegir tells its own
// users from others of the same name.
func comment(domain string) string { return "aegir site " + domain }

// lookupUser reads the passwd entry of name: found, and its GECOS field.
func (r *Runtime) lookupUser(ctx context.Context, name string) (bool, string, error) {
	res, err := r.ex.Run(ctx, exec.Command{Name: "getent", Args: []string{"passwd", name}})
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode == 2 {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("look up user %s on %s: %w", name, r.ex.Host(), err)
	}
	f := strings.Split(strings.TrimSpace(string(res.Stdout)), ":")
	if len(f) < 5 {
		return true, "", nil
	}
	return true, f[4], nil
}

// EnsureUser creates the site's Unix user (and its group of the same
// name) unless aegir made it already; it reports whether it created it. A
// user of that name that is not aegir's for this site is refused: aegir
// never takes over another account.
func (r *Runtime) EnsureUser(ctx context.Context, s Site) (bool, error) {
	if err := r.checkUser(s); err != nil {
		return false, err
	}
	if out, ok, err := r.helped(ctx, priv.OpUserAdd, s.Domain); ok {
		if out == "created" {
			r.env.Logf(provision.LevelInfo, "created the Unix user %s for %s on %s", s.User, s.Domain, r.ex.Host())
		}
		return out == "created", err
	}
	found, gecos, err := r.lookupUser(ctx, s.User)
	if err != nil {
		return false, err
	}
	if found {
		if gecos != comment(s.Domain) {
			return false, provision.Errorf(provision.ErrInvalidContext, "remove or rename that user, or keep the site shared (isolation shared)",
				"a user %s already exists on %s and is not aegir's for %s (its comment is %q)", s.User, r.ex.Host(), s.Domain, gecos)
		}
		return false, nil
	}
	if _, err := r.run(ctx, "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", r.SiteDir(s.Domain),
		"--shell", "/usr/sbin/nologin", "--comment", comment(s.Domain), s.User); err != nil {
		return false, fmt.Errorf("create the user %s on %s: %w", s.User, r.ex.Host(), err)
	}
	r.env.Logf(provision.LevelInfo, "created the Unix user %s for %s on %s", s.User, s.Domain, r.ex.Host())
	return true, nil
}

// HasUser reports whether aegir's user of the site exists.
func (r *Runtime) HasUser(ctx context.Context, s Site) (bool, error) {
	if err := r.checkUser(s); err != nil {
		return false, err
	}
	found, gecos, err := r.lookupUser(ctx, s.User)
	return found && gecos == comment(s.Domain), err
}

// RemoveUser removes the site's user and group once no process runs as
// it any more (a removed pool's workers end with php-fpm's reload). A
// user that is not aegir's for the site is left alone.
func (r *Runtime) RemoveUser(ctx context.Context, s Site) error {
	if err := r.checkUser(s); err != nil {
		return err
	}
	if _, ok, err := r.helped(ctx, priv.OpUserDel, s.Domain); ok {
		if err == nil {
			r.env.Logf(provision.LevelInfo, "removed the Unix user %s of %s on %s", s.User, s.Domain, r.ex.Host())
		}
		return err
	}
	found, gecos, err := r.lookupUser(ctx, s.User)
	if err != nil || !found {
		return err
	}
	if gecos != comment(s.Domain) {
		r.env.Logf(provision.LevelWarning, "the user %s on %s is not aegir's for %s: left as it is", s.User, r.ex.Host(), s.Domain)
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := r.ex.Run(ctx, exec.Command{Name: "pgrep", Args: []string{"-u", s.User}})
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode == 1 {
			break // none
		}
		if err != nil && !errors.As(err, &ee) {
			return fmt.Errorf("list the processes of %s on %s: %w", s.User, r.ex.Host(), err)
		}
		if time.Now().After(deadline) {
			return provision.Errorf(provision.ErrCommand, "stop them (pkill -u "+exec.Quote(s.User)+") and run the task again",
				"processes of %s still run on %s", s.User, r.ex.Host())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := r.run(ctx, "userdel", s.User); err != nil {
		return fmt.Errorf("remove the user %s on %s: %w", s.User, r.ex.Host(), err)
	}
	// userdel removes the user's own group; one left behind goes too.
	if res, err := r.ex.Run(ctx, exec.Command{Name: "getent", Args: []string{"group", s.User}}); err == nil && len(res.Stdout) > 0 {
		if _, err := r.run(ctx, "groupdel", s.User); err != nil {
			return fmt.Errorf("remove the group %s on %s: %w", s.User, r.ex.Host(), err)
		}
	}
	r.env.Logf(provision.LevelInfo, "removed the Unix user %s of %s on %s", s.User, s.Domain, r.ex.Host())
	return nil
}

// dir is one directory of a site's runtime.
type dir struct {
	path         string
	owner, group string
	mode         fs.FileMode
}

// Chown sets the owner and group of p (never through a link).
func (r *Runtime) Chown(ctx context.Context, p, owner, group string) error {
	if err := r.chown(ctx, p, owner, group); err != nil {
		return fmt.Errorf("give %s to %s on %s: %w", p, owner, r.ex.Host(), err)
	}
	return nil
}

// ChownTree sets the owner and group of p and of everything under it;
// links are changed themselves, never followed (chown -R -h).
func (r *Runtime) ChownTree(ctx context.Context, p, owner, group string) error {
	if err := entities.ValidateAbsPath("path", p); err != nil {
		return err
	}
	spec := priv.Spec(owner, group)
	if _, ok, err := r.helped(ctx, priv.OpChown, "-R", spec, p); ok {
		if err != nil {
			return fmt.Errorf("give %s and what it holds to %s on %s: %w", p, owner, r.ex.Host(), err)
		}
		return nil
	}
	if _, err := r.run(ctx, "chown", "-R", "-h", "--", spec, p); err != nil {
		return fmt.Errorf("give %s and what it holds to %s on %s: %w", p, owner, r.ex.Host(), err)
	}
	return nil
}

// OwnerOf is the owner and group of p (never through a link), as
// OWNER:GROUP.
func (r *Runtime) OwnerOf(ctx context.Context, p string) (string, error) {
	res, err := r.ex.Run(ctx, exec.Command{Name: "stat", Args: []string{"-c", "%U:%G", "--", p}})
	if err != nil {
		return "", fmt.Errorf("read the owner of %s on %s: %w", p, r.ex.Host(), err)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// chown sets owner and group of p: Executor.Chown, else the helper's.
func (r *Runtime) chown(ctx context.Context, p, owner, group string) error {
	if err := r.ex.Chown(ctx, p, owner, group); err == nil || r.cfg.Helper == nil {
		return err
	}
	_, err := r.cfg.Helper.Run(ctx, priv.OpChown, priv.Spec(owner, group), p)
	return err
}

// EnsureDirs makes the site's runtime directories (the package comment's
// layout): for an isolated site (user set) its temporary, session and log
// directories and its PHP error log; for a shared one (user empty) its
// log directory (what it had of its own when it was isolated stays until
// DropOwnDirs, once its pool is gone). Modes and owners are set each time
// (a second call changes nothing).
func (r *Runtime) EnsureDirs(ctx context.Context, domain, user string) error {
	if err := entities.ValidateDomain("site domain", domain, false); err != nil {
		return err
	}
	kind := "shared"
	if user != "" {
		kind = "site"
	}
	if _, ok, err := r.helped(ctx, priv.OpRuntime, domain, kind); ok {
		return err
	}
	root := "root"
	site := r.SiteDir(domain)
	dirs := []dir{{r.cfg.RuntimeDir, root, "", 0o711}, {path.Join(r.cfg.RuntimeDir, "sites"), root, "", 0o711}}
	if user != "" {
		dirs = append(dirs, dir{path.Join(r.cfg.RuntimeDir, "fpm"), root, "", 0o711},
			dir{site, root, user, 0o750}, dir{path.Join(site, "tmp"), user, user, 0o700}, dir{path.Join(site, "sessions"), user, user, 0o700},
			dir{path.Join(site, "logs"), root, user, 0o750})
	} else {
		dirs = append(dirs, dir{site, root, root, 0o755}, dir{path.Join(site, "logs"), root, root, 0o755})
	}
	for _, d := range dirs {
		if fi, err := r.ex.Lstat(ctx, d.path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return provision.Errorf(provision.ErrInvalidContext, "remove the link; aegir makes the directory", "%s on %s is a symbolic link", d.path, r.ex.Host())
		}
		if err := r.ex.MkdirAll(ctx, d.path, d.mode); err != nil {
			return fmt.Errorf("create %s on %s: %w", d.path, r.ex.Host(), err)
		}
		if r.ex.IsLocal() || d.owner != root {
			if err := r.chown(ctx, d.path, d.owner, d.group); err != nil {
				return fmt.Errorf("give %s to %s on %s: %w", d.path, d.owner, r.ex.Host(), err)
			}
		}
		if err := r.ex.Chmod(ctx, d.path, d.mode); err != nil {
			return fmt.Errorf("chmod %s on %s: %w", d.path, r.ex.Host(), err)
		}
	}
	if user != "" {
		log := path.Join(site, "logs", "php.log")
		if _, err := r.ex.Lstat(ctx, log); errors.Is(err, fs.ErrNotExist) {
			if err := r.ex.WriteFile(ctx, log, nil, 0o640); err != nil {
				return fmt.Errorf("create %s on %s: %w", log, r.ex.Host(), err)
			}
		}
		if err := r.chown(ctx, log, user, user); err != nil {
			return fmt.Errorf("give %s to %s on %s: %w", log, user, r.ex.Host(), err)
		}
	}
	return nil
}

// Logrotate is the logrotate configuration of the sites' logs: rotated
// daily, 14 kept, compressed; copied and truncated, so that the web
// server and php-fpm keep writing to the files they hold open.
func (r *Runtime) Logrotate() []byte {
	return []byte("# The logs of aegir's sites (docs/isolation.md), written by aegir.\n" +
		path.Join(r.cfg.RuntimeDir, "sites") + "/*/logs/*.log {\n" +
		"    daily\n    rotate 14\n    missingok\n    notifempty\n    compress\n    delaycompress\n    copytruncate\n}\n")
}

// WriteLogrotate writes the logrotate configuration (Logrotate) unless it
// is there already; a system without logrotate's directory gets a
// warning and nothing.
func (r *Runtime) WriteLogrotate(ctx context.Context) error {
	if r.cfg.Helper != nil {
		return nil // the helper's runtime operation writes it
	}
	file := r.cfg.LogrotateFile
	want := r.Logrotate()
	if old, err := r.ex.ReadFile(ctx, file); err == nil && string(old) == string(want) {
		return nil
	}
	if _, err := r.ex.Stat(ctx, path.Dir(file)); err != nil {
		r.env.Logf(provision.LevelWarning, "%s is not on %s (is logrotate installed?): the sites' logs are not rotated", path.Dir(file), r.ex.Host())
		return nil
	}
	if err := r.ex.WriteFile(ctx, file, want, 0o644); err != nil {
		return fmt.Errorf("write %s on %s: %w", file, r.ex.Host(), err)
	}
	r.env.Logf(provision.LevelInfo, "wrote %s: logrotate rotates the sites' logs", file)
	return nil
}

// DropOwnDirs removes what an isolated site had of its own in its runtime
// directory once it became shared and its pool is gone: its temporary
// files and sessions; its PHP log stays, root's.
func (r *Runtime) DropOwnDirs(ctx context.Context, domain string) error {
	if err := entities.ValidateDomain("site domain", domain, false); err != nil {
		return err
	}
	site := r.SiteDir(domain)
	if r.cfg.Helper != nil {
		// Made by the helper as the site's, in its runtime directory
		// (which need not lie below its roots): removed by it.
		if _, err := r.cfg.Helper.Run(ctx, priv.OpRuntime, domain, "drop"); err != nil {
			r.env.Logf(provision.LevelWarning, "could not remove %s and %s on %s: %v", path.Join(site, "tmp"), path.Join(site, "sessions"), r.ex.Host(), err)
		}
		return nil
	}
	for _, d := range []string{"tmp", "sessions"} {
		if err := r.ex.RemoveAll(ctx, path.Join(site, d)); err != nil {
			return fmt.Errorf("remove %s on %s: %w", path.Join(site, d), r.ex.Host(), err)
		}
	}
	if _, err := r.ex.Lstat(ctx, path.Join(site, "logs", "php.log")); err == nil {
		return r.Chown(ctx, path.Join(site, "logs", "php.log"), "root", "root")
	}
	return nil
}

// RemoveDirs removes the site's runtime directory (its temporary files,
// sessions and logs).
func (r *Runtime) RemoveDirs(ctx context.Context, domain string) error {
	// An empty or odd domain would name the directory of every site.
	if err := entities.ValidateDomain("site domain", domain, false); err != nil {
		return err
	}
	if _, ok, err := r.helped(ctx, priv.OpRuntimeRemove, domain); ok {
		return err
	}
	if err := r.ex.RemoveAll(ctx, r.SiteDir(domain)); err != nil {
		return fmt.Errorf("remove %s on %s: %w", r.SiteDir(domain), r.ex.Host(), err)
	}
	return nil
}
