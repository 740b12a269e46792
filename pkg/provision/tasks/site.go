package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
	"github.com/aegir-project/aegir/pkg/provision/priv"
	"github.com/aegir-project/aegir/pkg/provision/web"
)

func init() {
	engine.Register("site.install", siteInstall)
	engine.Register("site.verify", siteVerify)
	engine.Register("site.disable", func(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
		return siteSetDisabled(ctx, env, c, true)
	})
	engine.Register("site.enable", func(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
		return siteSetDisabled(ctx, env, c, false)
	})
	engine.Register("site.delete", withBackupFirst(siteDelete))
	engine.Register("site.login-reset", siteLoginReset)
}

// undo is the rollback of a task: what it created, undone in reverse order
// when a later step fails, so that a failed task leaves nothing behind.
type undo struct {
	env   *engine.Env
	steps []undoStep
}

type undoStep struct {
	what string
	f    func(context.Context) error
}

func (u *undo) push(what string, f func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what, f})
}

// rollback undoes every step, even when the task's context was
// cancelled, and reports whether every step was undone.
func (u *undo) rollback(ctx context.Context) bool {
	if len(u.steps) == 0 {
		return true
	}
	ok := true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	u.env.Logf(provision.LevelWarning, "rolling back what this task created")
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if err := s.f(ctx); err != nil {
			u.env.Logf(provision.LevelError, "rollback: could not %s: %v; remove it by hand", s.what, err)
			ok = false
			continue
		}
		u.env.Logf(provision.LevelInfo, "rollback: %s: done", s.what)
	}
	return ok
}

// site is what a site task works with: the context checked, the platform
// found and the servers connected.
type site struct {
	c   *provision.Job
	env *engine.Env
	ex  exec.Executor // the web server
	p   app.Platform
	ws  *web.Server
	// phpAddr is where the site's PHP goes when not to the server's
	// default pool (prepareRuntime): its own pool's socket, or the shared
	// pool of its PHP version.
	phpAddr string
	// logDir holds the site's own logs (prepareRuntime); empty: it logs
	// into the web server's.
	logDir string
	// located: phpAddr and logDir are set (prepareRuntime,
	// locateRuntime).
	located bool
	// alsoRoots are more directories the site's pool may open
	// (open_basedir) beside its platform's root: the platform it leaves,
	// while a move to another platform under the same user runs.
	alsoRoots []string
	rt        *fpm.Runtime // the web server's php-fpm, once needed
	// pool is the site's pool while it is readied beside the task's
	// other steps (prepareRuntimeAside), until joinPool.
	pool *pendingPool
	// front is the front page as the last health check's answer on the
	// scheme of the site's address brought it (checkAnswer), for the
	// health gate's content probe.
	front *pageProbe
	// checkOnly: the task changes nothing on the servers (site.health),
	// so the health check repairs nothing.
	checkOnly bool
	// checked are the packages the site has enabled as its move's check
	// read them (app.PackageChecker), which sitePackages takes instead of
	// loading the application again; nil: none read.
	checked map[string]string
}

func openSite(ctx context.Context, env *engine.Env, c *provision.Job) (*site, error) {
	domain, err := entities.NormalizeDomain("site.domain", c.Site.Domain)
	if err != nil || domain != c.Site.Domain {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give a valid, lower-case site.domain", "invalid site.domain %q", c.Site.Domain)
	}
	for _, a := range c.Site.Aliases {
		if d, err := entities.NormalizeDomain("site.aliases", a); err != nil || d != a {
			return nil, provision.Errorf(provision.ErrInvalidContext, "give valid, lower-case site.aliases", "invalid alias %q", a)
		}
	}
	if c.Site.Platform.Root == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give site.platform.root in the job", "no platform root given")
	}
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return nil, err
	}
	p, err := app.Detect(ctx, ex, c.Site.Platform.Root)
	if err != nil {
		return nil, err
	}
	ws, err := web.Open(ctx, env, c)
	if err != nil {
		return nil, err
	}
	// A reload an earlier task on the server failed to do comes first.
	ws.Settle(ctx)
	st := &site{c: c, env: env, ex: ex, p: p, ws: ws}
	if h := st.helper(); h != nil && st.isolated() {
		// Its PHP steps run as its user through the helper (run-as),
		// its group and files change hands through it.
		st.ex = priv.Executor{Executor: ex, Helper: *h}
	}
	return st, nil
}

// vhost is the site's virtual host as its record says.
func (s *site) vhost(disabled bool) web.Site {
	return web.Site{Domain: s.c.Site.Domain, Aliases: s.c.Site.Aliases, Redirect: s.c.Site.Redirect, Root: s.p.Docroot,
		Disabled: disabled, AppType: s.p.Type, HTTPS: s.c.Site.HTTPS.Mode, CertFile: s.certFile(), KeyFile: s.keyFile(), PHPFPM: s.phpAddr,
		AccessLog: s.logFile(fpm.LogAccess), ErrorLog: s.logFile(fpm.LogError)}
}

// logFile is one of the site's own logs, or "" when it has none.
func (s *site) logFile(kind string) string {
	if s.logDir == "" || s.rt == nil {
		return ""
	}
	return fpm.LogFile(s.rt.Config().RuntimeDir, s.c.Site.Domain, kind)
}

func (s *site) db(ctx context.Context) (db.Service, error) { return dbService(ctx, s.env, s.c) }

func siteInstall(ctx context.Context, env *engine.Env, c *provision.Job) (ch *provision.Changes, err error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	if c.Site.DB.Password == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "the front end generates it; give site.db.password in the job", "no site database password given")
	}
	svc, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	u := &undo{env: env}
	defer func() {
		if err != nil {
			// The pool readied aside is part of what is undone.
			_ = s.joinPool(ctx, u)
			u.rollback(ctx)
		}
	}()
	if c.Site.DB.Name == "" {
		name, err := db.UniqueName(ctx, svc, c.Site.Domain)
		if err != nil {
			return nil, err
		}
		c.Site.DB.Name, c.Site.DB.User = name, name
	}
	if c.Site.DB.User == "" {
		c.Site.DB.User = c.Site.DB.Name
	}
	ch = &provision.Changes{Site: &provision.SiteChanges{DB: dbRecord(c.Site)}}
	env.Logf(provision.LevelInfo, "creating database %s and user %s on %s (%s), for connections from %s", c.Site.DB.Name, c.Site.DB.User, c.Site.DBServer.Machine.Name, c.Site.DBServer.Type, c.Site.DB.GrantHost)
	if err := svc.CreateDatabase(ctx, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.Password, c.Site.DB.GrantHost); err != nil {
		return ch, err
	}
	u.push(fmt.Sprintf("drop database %s and user %s", c.Site.DB.Name, c.Site.DB.User), func(ctx context.Context) error {
		return svc.DropDatabase(ctx, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.GrantHost)
	})
	if _, err := s.prepareRuntimeAside(ctx, u); err != nil {
		return ch, err
	}
	if err := appInstall(ctx, s, u); err != nil {
		return ch, err
	}
	if err := s.handFiles(ctx, false); err != nil {
		return ch, err
	}
	if err := s.joinPool(ctx, u); err != nil {
		return ch, err
	}
	changed, err := s.ws.WriteSite(ctx, s.vhost(false))
	if err != nil {
		return ch, err
	}
	if changed {
		u.push("remove the virtual host of "+c.Site.Domain, func(ctx context.Context) error {
			_, err := s.ws.RemoveSite(ctx, c.Site.Domain)
			return err
		})
	}
	env.Logf(provision.LevelInfo, "site %s installed on %s: http://%s%s/", c.Site.Domain, c.Site.Platform.Name, c.Site.Domain, portSuffix(c.Site.Web.Port))
	ch.Site.Status = entities.SiteInstalled
	recordPackages(ctx, s, ch.Site)
	// HTTPS once the site answers on HTTP, where the CA checks it. Its
	// failure fails the task but keeps the installed site.
	u.steps = nil
	ch, err = withCert(ctx, s, ch, "site "+c.Site.Domain+" is installed")
	if err == nil {
		// Its health from the start, as a verify would record it: an
		// installed site that does not answer as it should is a warning
		// (the install did what it was asked), and shows in site list.
		h, herr := s.checkHealth(ctx, svc, nil, nil)
		ch.Site.Health = h
		if herr != nil {
			env.Logf(provision.LevelWarning, "%s is installed but does not answer as it should: %s", c.Site.Domain, errorLine(herr))
		}
	}
	admin := c.Site.Install.AdminUser
	if admin == "" {
		admin = "admin"
	}
	env.LogFixf(provision.LevelInfo, []entities.Action{entities.Do("site.login-reset", c.Site.Domain)}, "to log in as %s", admin)
	return ch, err
}

func portSuffix(port int) string {
	if port == 0 || port == 80 {
		return ""
	}
	return fmt.Sprintf(":%d", port)
}

// siteVerify re-applies everything from the record (settings, files
// directories, the virtual host; a second verify changes nothing), then
// checks the site's health (checkHealth): it ends in error when the site
// does not answer as its status says, with the health reported either
// way. The packages the site has enabled are read when it is healthy.
func siteVerify(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	made, err := s.prepareRuntime(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := appVerify(ctx, s); err != nil {
		return nil, err
	}
	if err := s.handFiles(ctx, made); err != nil {
		return nil, err
	}
	disabled := c.Site.Status == entities.SiteDisabled
	changed, err := s.ws.WriteSite(ctx, s.vhost(disabled))
	if err != nil {
		return nil, err
	}
	if !changed {
		env.Logf(provision.LevelInfo, "virtual host of %s already up to date", c.Site.Domain)
	}
	if !s.isolated() {
		// A site that was isolated: its pool and user go once its
		// virtual host sends PHP to the shared pool, and its files go
		// back to the web server's user (the deploy user's, on its
		// server): before the user goes, while its files still belong to
		// a user the helper knows as a site's.
		handed := false
		if rt, err := s.runtime(); err == nil {
			if had, _ := rt.HasUser(ctx, s.fpmSite("")); had {
				if err := s.handFiles(ctx, true); err != nil {
					return nil, err
				}
				handed = true
			}
		}
		dropped, err := s.dropRuntime(ctx, false)
		if err != nil {
			return nil, err
		}
		if dropped && !handed {
			if err := s.handFiles(ctx, true); err != nil {
				return nil, err
			}
		}
	}
	svc, svcErr := s.db(ctx)
	if svcErr == nil {
		defer svc.Close()
	}
	// The packages are read while the site is asked for its front page.
	var pkgs []entities.Package
	var perr error
	h, herr := s.checkHealth(ctx, svc, svcErr, func() { pkgs, perr = sitePackages(ctx, s) })
	ch := &provision.Changes{Site: &provision.SiteChanges{Health: h}}
	if herr != nil {
		return ch, herr
	}
	putPackages(s, ch.Site, pkgs, perr)
	return withCert(ctx, s, ch, "site "+c.Site.Domain+" is verified")
}

// recordPackages reads which of the platform's packages the site has
// enabled (sitePackages) into the changes, for every task that changes
// a site's code or database.
func recordPackages(ctx context.Context, s *site, ch *provision.SiteChanges) {
	pkgs, err := sitePackages(ctx, s)
	putPackages(s, ch, pkgs, err)
}

// putPackages puts the packages read into the changes. A failure to read
// them is a warning: the site serves as before; only what it has enabled
// is unknown until its next verify.
func putPackages(s *site, ch *provision.SiteChanges, pkgs []entities.Package, err error) {
	if err != nil {
		s.env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("site.verify", s.c.Site.Domain)}, "could not read the packages %s has enabled: %v; a verify of the site reads them again", s.c.Site.Domain, errorLine(err))
		return
	}
	ch.Packages = pkgs
}

func siteSetDisabled(ctx context.Context, env *engine.Env, c *provision.Job, disabled bool) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	if _, err := s.prepareRuntime(ctx, nil); err != nil {
		return nil, err
	}
	changed, err := s.ws.WriteSite(ctx, s.vhost(disabled))
	if err != nil {
		if changed {
			// Written but not served (the reload failed): the site's
			// record keeps its status, and so must the virtual host
			// that the pending reload will serve.
			was := c.Site.Status
			if perr := s.ws.PutBackSite(ctx, s.vhost(was == entities.SiteDisabled)); perr != nil {
				env.Logf(provision.LevelWarning, "could not put back the virtual host of %s as it was (%s): %s; the next reload of the server serves this task's change: run the task again once the server reloads", c.Site.Domain, was, errorLine(perr))
			} else {
				env.Logf(provision.LevelInfo, "put back the virtual host of %s as it was (%s): the next reload of the server serves it so until this task succeeds", c.Site.Domain, was)
			}
		}
		return nil, err
	}
	status := entities.SiteInstalled
	if disabled {
		status = entities.SiteDisabled
		env.LogFixf(provision.LevelInfo, []entities.Action{entities.Do("site.enable", c.Site.Domain)}, "site %s now answers with the \"site disabled\" page; enabling it serves it again", c.Site.Domain)
	} else {
		env.Logf(provision.LevelInfo, "site %s is served again", c.Site.Domain)
	}
	// Its health in its new status: the task did what it was asked
	// even when the site does not answer as it should, which is a
	// warning then.
	c.Site.Status = status
	svc, svcErr := s.db(ctx)
	if svcErr == nil {
		defer svc.Close()
	}
	h, herr := s.checkHealth(ctx, svc, svcErr, nil)
	if herr != nil {
		env.Logf(provision.LevelWarning, "%s is %s but does not answer as it should: %s", c.Site.Domain, status, errorLine(herr))
	}
	return &provision.Changes{Site: &provision.SiteChanges{Status: status, Health: h}}, nil
}

// siteDelete removes the virtual host, the site's files and settings, its
// database and user. It runs after a backup of the site (withBackupFirst,
// unless the option no_backup is 1). With the option force 1, a step that
// fails is logged with what to do by hand and the others go on: the site
// is deleted all the same, and the result's site leftovers list the work
// left (a database server that cannot be reached, say).
func siteDelete(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	force := c.Opt("force", "") == "1"
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	// Without force, a database server that cannot be reached stops the
	// delete before anything is removed.
	var svc db.Service
	if c.Site.DB.Name != "" && !force {
		if svc, err = s.db(ctx); err == nil {
			defer svc.Close()
			_, err = svc.DatabaseExists(ctx, c.Site.DB.Name)
		}
		if err != nil {
			var pe *provision.Error
			if errors.As(err, &pe) {
				pe.Also("nothing was removed. To delete what can be reached and get the commands that finish the rest by hand, delete the site by force",
					entities.Do("site.delete", c.Site.Domain, "force"))
			}
			return nil, err
		}
	}
	var leftovers []string
	// step runs one part of the delete; under force its failure becomes
	// a leftover, with what to do by hand.
	step := func(what string, byHand []string, f func() error) error {
		err := f()
		if err == nil || !force {
			return err
		}
		env.Logf(provision.LevelWarning, "forced: could not %s: %v", what, err)
		for _, h := range byHand {
			env.Logf(provision.LevelWarning, "to finish by hand: %s", h)
		}
		leftovers = append(leftovers, byHand...)
		return nil
	}
	onWeb := func(cmd string) string { return fmt.Sprintf("on %s: %s", s.ex.Host(), cmd) }
	if err := step("remove the virtual host", []string{onWeb("rm -f " + exec.Quote(s.ws.SiteFile(c.Site.Domain)) + " and reload the web server")}, func() error {
		if _, err := s.ws.RemoveSite(ctx, c.Site.Domain); err != nil {
			return err
		}
		env.Logf(provision.LevelInfo, "removed the virtual host of %s", c.Site.Domain)
		return nil
	}); err != nil {
		return nil, err
	}
	ch := &provision.Changes{Site: &provision.SiteChanges{}}
	if err := step("remove the certificates", []string{onWeb("rm -rf " + exec.Quote(s.certDir()))}, func() error {
		cch, err := removeCert(ctx, s)
		ch.Merge(cch)
		return err
	}); err != nil {
		return nil, err
	}
	if err := step("remove the settings and files", []string{onWeb("remove the site's directory under " + exec.Quote(s.p.Root))}, func() error {
		return appRemove(ctx, s)
	}); err != nil {
		return nil, err
	}
	if err := step("remove the site's php-fpm pool, Unix user and runtime directory", []string{onWeb("userdel " + exec.Quote(entities.SiteUnixUser(c.Site.Domain)) + ", and remove its pool file aegir-" + entities.SiteUnixUser(c.Site.Domain) + ".conf")}, func() error {
		_, err := s.dropRuntime(ctx, true)
		return err
	}); err != nil {
		return nil, err
	}
	if c.Site.DB.Name != "" {
		var sql []string
		if t, err := db.ParseType(c.Site.DBServer.Type); err == nil {
			for _, q := range db.DropStatements(t, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.GrantHost) {
				sql = append(sql, fmt.Sprintf("on the database server %s (%s): %s", c.Site.DBServer.Machine.Name, c.Site.DBServer.Type, q))
			}
		}
		if err := step("drop database "+c.Site.DB.Name+" and user "+c.Site.DB.User+" on "+c.Site.DBServer.Machine.Name, sql, func() error {
			if svc == nil {
				if svc, err = s.db(ctx); err != nil {
					return err
				}
				defer svc.Close()
			}
			if err := svc.DropDatabase(ctx, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.GrantHost); err != nil {
				return err
			}
			env.Logf(provision.LevelInfo, "dropped database %s and user %s on %s", c.Site.DB.Name, c.Site.DB.User, c.Site.DBServer.Machine.Name)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if len(leftovers) > 0 {
		ch.Site.Leftovers = leftovers
		env.Logf(provision.LevelWarning, "site %s is deleted; %d thing(s) are left to do by hand (listed above)", c.Site.Domain, len(leftovers))
	}
	ch.Site.Status = entities.SiteDeleted
	return ch, nil
}

func siteLoginReset(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	link, err := appLoginLink(ctx, s)
	if err != nil {
		return nil, err
	}
	// The link is a one-time secret: it goes in the result for the command
	// that asked, never in the task log.
	return &provision.Changes{LoginLink: link}, nil
}

// dbRecord is the database and user of site, for the front end to save.
func dbRecord(site provision.SiteSpec) *provision.DBRecord {
	return &provision.DBRecord{Name: site.DB.Name, User: site.DB.User, GrantHost: site.DB.GrantHost}
}
