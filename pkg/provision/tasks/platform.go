package tasks

import (
	"context"
	"fmt"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/push"
)

func init() {
	engine.Register("platform.verify", platformVerify)
	engine.Register("platform.delete", platformDelete)
	engine.Register("platform.import", platformImport)
}

// platformImport finds the sites a platform already holds (Drupal
// sites/*/settings.php; WordPress configurations aegir wrote) for the
// front end to record as installed sites. Their database passwords go to
// the front end as secrets.
func platformImport(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return nil, err
	}
	p, err := app.Detect(ctx, ex, c.Site.Platform.Root)
	if err != nil {
		return nil, err
	}
	sites, err := app.FindSites(ctx, ex, p, c.PHPUser(), env.Logf)
	if err != nil {
		return nil, err
	}
	found := make([]provision.FoundSite, 0, len(sites))
	for _, s := range sites {
		env.Logf(provision.LevelInfo, "found site %s (database %s on %s)", s.Domain, s.DB.Name, s.DB.Host)
		found = append(found, provision.FoundSite{Domain: s.Domain, Aliases: s.Aliases, DBType: s.DB.Type, DBName: s.DB.Name, DBUser: s.DB.User,
			DBHost: s.DB.Host, DBPort: s.DB.Port, Aegir: s.Aegir})
		env.KeepSecret("db_password/"+s.Domain, s.DB.Password)
	}
	if len(found) == 0 {
		env.Logf(provision.LevelInfo, "no sites found on %s", p.Root)
	}
	return &provision.Changes{FoundSites: found}, nil
}

// platformVerify checks the platform's root on its web server, records its
// type and core version, and discovers its packages.
func platformVerify(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	if c.Site.Platform.Root == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give site.platform.root in the job", "no platform root given")
	}
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return nil, err
	}
	b, err := buildOf(c)
	if err != nil {
		return nil, err
	}
	if from := c.Opt("push_from", ""); from != "" {
		if b != nil {
			return nil, provision.Errorf(provision.ErrInvalidContext, "give one of them", "options.push_from and a build both make the platform's tree")
		}
		if err := pushPlatform(ctx, env, ex, c, from); err != nil {
			return nil, err
		}
	}
	root := c.Site.Platform.Root
	if b != nil {
		if _, err := buildPlatform(ctx, env, ex, c, b); err != nil {
			return nil, err
		}
	}
	ch, err := verifyTree(ctx, env, ex, c)
	if err != nil && b != nil {
		// The build is one with its verify: a tree that is no platform
		// is not left behind either.
		if rerr := ex.RemoveAll(context.WithoutCancel(ctx), root); rerr != nil {
			env.Logf(provision.LevelWarning, "could not remove the build at %s on %s: %v", root, ex.Host(), rerr)
		} else {
			env.Logf(provision.LevelInfo, "removed the build at %s on %s: it did not verify", root, ex.Host())
		}
		return nil, err
	}
	return ch, err
}

// verifyTree verifies the tree at the platform's root: its type, core
// version (composer.lock's, when it names the core package), commit (of
// a git checkout) and packages.
func verifyTree(ctx context.Context, env *engine.Env, ex exec.Executor, c *provision.Job) (*provision.Changes, error) {
	root := c.Site.Platform.Root
	p, err := app.Verify(ctx, ex, root, app.VerifyOptions{Type: c.Site.Platform.Type, WebUser: c.System.WebUser, ByMode: c.DeployUser() != "", Keep: keepDir(c), Log: env.Logf})
	if err != nil {
		return nil, err
	}
	commit, err := headCommit(ctx, ex, root)
	if err != nil {
		// A checkout git will not read (another user's, no git): the
		// platform works all the same.
		env.Logf(provision.LevelWarning, "%v; the platform's commit is not recorded", err)
	}
	pkg, locked, err := app.LockedCore(ctx, ex, root)
	if err != nil {
		return nil, err
	}
	if locked != "" {
		if locked != p.Version {
			env.Logf(provision.LevelWarning, "composer.lock gives %s %s, the core's files say %s: the platform is recorded as %s", pkg, locked, p.Version, locked)
		} else {
			env.Logf(provision.LevelInfo, "composer.lock: %s %s", pkg, locked)
		}
		p.Version = locked
	}
	ch := &provision.Changes{Platform: &provision.PlatformChanges{Type: p.Type, CoreVersion: p.Version, Docroot: p.Docroot, Drush: p.Drush, Commit: commit}}
	pkgs, err := discoverPackages(ctx, env, ex, p)
	if err != nil {
		return ch, err
	}
	ch.Platform.Packages = pkgs
	return ch, nil
}

// platformDelete forgets a platform; its code stays on the server.
func platformDelete(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	env.Logf(provision.LevelInfo, "platform %s removed from aegir; its code at %s on %s was left in place", c.Site.Platform.Name, c.Site.Platform.Root, c.Site.Web.Name)
	return nil, nil
}

// pushPlatform copies the platform's code from the directory from on the
// master to its root on the web server (task options push_from and
// push_method: rsync, sftp, or empty for the first that works).
func pushPlatform(ctx context.Context, env *engine.Env, ex exec.Executor, c *provision.Job, from string) error {
	var cfg exec.SSHConfig
	if h, ok := ex.(interface{ SSHConfig() exec.SSHConfig }); ok {
		cfg = h.SSHConfig()
	}
	_, err := push.Tree(ctx, ex, from, c.Site.Platform.Root, push.Options{SSH: cfg, Method: c.Opt("push_method", ""), Logf: env.Logf})
	if err != nil {
		return &provision.Error{Code: provision.ErrPlatform, Err: err, Msg: fmt.Sprintf("pushing platform %s to %s", c.Site.Platform.Name, c.Site.Web.Name),
			Hint: fmt.Sprintf("check that %s is a directory on this machine and that the SSH user of %s may write %s; then retry the task", from, c.Site.Web.Name, c.Site.Platform.Root),
			Fix:  []entities.Action{entities.Do("task.retry", c.TaskRef())}}
	}
	return nil
}
