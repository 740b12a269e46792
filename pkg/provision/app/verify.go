package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Logf logs one line of a task's log at a level (provision.Level*);
// (*engine.Env).Logf is one.
type Logf func(level, format string, args ...any)

func (l Logf) Printf(level, format string, args ...any) {
	if l != nil {
		l(level, format, args...)
	}
}

// VerifyOptions says what Verify checks.
type VerifyOptions struct {
	// Type is the platform type the front end recorded; empty: accept what
	// Detect finds.
	Type string
	// WebUser is the web server's system user (www-data). The docroot must
	// be readable by it. Empty: not checked.
	WebUser string
	// ByMode judges whether WebUser may read the docroot by its modes
	// alone, without running a check as that user: for a deploy user
	// without sudo.
	ByMode bool
	// Keep is where a platform's own configuration that aegir replaces is
	// kept, outside every docroot: KeptDir of the server's aegir home.
	Keep string
	Log  Logf
}

// CheckTimeout bounds the small commands of a verify.
const CheckTimeout = 30 * time.Second

// Verify checks that sites can be published on the platform at root: it
// exists, its type and core version are known, the web server user can
// read its docroot, and the directory of the sites' configuration is
// writable. For WordPress it also puts aegir's dispatcher in place as
// wp-config.php (see wordpress.EnsurePlatform); copies of settings that an
// older aegir kept in the docroot (*.aegir-orig) are moved out to o.Keep.
// Problems the administrator must fix are *provision.Error values with a
// hint; doubts (a check that could not be made) are logged as warnings.
func Verify(ctx context.Context, ex exec.Executor, root string, o VerifyOptions) (Platform, error) {
	p, err := Detect(ctx, ex, root)
	if err != nil {
		return Platform{}, err
	}
	if o.Type != "" && o.Type != p.Type {
		return Platform{}, PlatformError("check the platform's root, or add it again with the right type",
			"platform root %s on %s holds %s, but the platform was added as %s", root, ex.Host(), p.Type, o.Type)
	}
	o.Log.Printf(provision.LevelInfo, "platform %s: %s %s, docroot %s", root, p.Type, p.Version, p.Docroot)
	if p.Drush != "" {
		o.Log.Printf(provision.LevelInfo, "platform %s has its own drush: %s", root, p.Drush)
	}
	if err := checkReadable(ctx, ex, p, o); err != nil {
		return Platform{}, err
	}
	if err := p.Driver.PreparePlatform(ctx, ex, p, o.Keep, o.Log); err != nil {
		return Platform{}, err
	}
	if err := checkSitesDir(ctx, ex, p); err != nil {
		return Platform{}, err
	}
	checkPHP(ctx, ex, o.Log)
	return p, nil
}

// checkReadable checks, as the web server user, that the docroot can be
// listed and entered and its index.php read.
func checkReadable(ctx context.Context, ex exec.Executor, p Platform, o VerifyOptions) error {
	if o.WebUser == "" {
		return nil
	}
	index := path.Join(p.Docroot, "index.php")
	err := errors.New("not run: no sudo")
	if !o.ByMode {
		_, err = ex.Run(ctx, exec.Command{
			Name: "test", Args: []string{"-r", p.Docroot, "-a", "-x", p.Docroot, "-a", "-r", index},
			User: o.WebUser, Timeout: CheckTimeout,
		})
	}
	var xe *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &xe) && xe.ExitCode == 1 && strings.TrimSpace(xe.Stderr) == "":
		return PlatformError(
			fmt.Sprintf("let %s read the platform: chmod o+rX %s and each directory above it (or chgrp -R %s %s && chmod -R g+rX %s)",
				o.WebUser, p.Root, o.WebUser, p.Root, p.Root),
			"the web server user %s cannot read %s or %s on %s", o.WebUser, p.Docroot, index, ex.Host())
	case ctx.Err() != nil:
		return ctx.Err()
	}
	// The check could not run as that user (no such user, no sudo rule):
	// judge by the modes instead.
	fi, serr := ex.Stat(ctx, p.Docroot)
	if serr == nil && fi.Mode().Perm()&0o005 == 0o005 {
		level := provision.LevelWarning
		if o.ByMode {
			level = provision.LevelInfo // as expected, and fine
		}
		o.Log.Printf(level, "could not check as %s that %s is readable (%v); its mode %s lets every user read it",
			o.WebUser, p.Docroot, err, fi.Mode().Perm())
		return nil
	}
	o.Log.Printf(provision.LevelWarning, "could not check as %s that %s is readable (%v); make sure the web server can read it",
		o.WebUser, p.Docroot, err)
	return nil
}

// checkSitesDir checks that the sites directory exists and that aegir's
// user can write to it.
func checkSitesDir(ctx context.Context, ex exec.Executor, p Platform) error {
	dir := p.SitesDir()
	fi, err := ex.Stat(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return PlatformError("restore the platform's sites directory (Drupal ships sites/default)",
			"the platform's sites directory %s is missing on %s", dir, ex.Host())
	}
	if err != nil {
		return PlatformError("check the directory's permissions", "sites directory %s on %s: %v", dir, ex.Host(), err)
	}
	if !fi.IsDir() {
		return PlatformError("move the file away and verify again", "sites directory %s on %s is not a directory", dir, ex.Host())
	}
	_, err = ex.Run(ctx, exec.Command{Name: "test", Args: []string{"-w", dir}, Timeout: CheckTimeout})
	if err != nil {
		var xe *exec.ExitError
		if errors.As(err, &xe) && xe.ExitCode == 1 {
			return PlatformError("give aegir's user on "+ex.Host()+" write access: chown or chmod u+w "+dir,
				"aegir cannot write to the sites directory %s on %s", dir, ex.Host())
		}
		return fmt.Errorf("check that %s is writable on %s: %w", dir, ex.Host(), err)
	}
	return nil
}

// checkPHP logs the server's php-cli version, or warns that there is none:
// installs and site status need it.
func checkPHP(ctx context.Context, ex exec.Executor, log Logf) {
	res, err := ex.Run(ctx, exec.Command{Name: "php", Args: []string{"-r", "echo PHP_VERSION;"}, Timeout: CheckTimeout})
	if err != nil {
		log.Printf(provision.LevelWarning, "php-cli does not run on %s (%v): site installs need it; install it (Debian: apt-get install php-cli)", ex.Host(), err)
		return
	}
	log.Printf(provision.LevelInfo, "php-cli %s on %s", string(bytes.TrimSpace(res.Stdout)), ex.Host())
}
