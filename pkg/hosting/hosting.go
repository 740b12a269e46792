// Package hosting is the front end's side of running a task: it flattens a
// task's target and all its relations from the state store into one
// provision.Job, runs the back end, and saves what the back end
// reports (service versions, platform core versions, packages, site
// status) back into the store.
package hosting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// Settings are the front end's defaults that reach the back end.
type Settings struct {
	WebUser   string
	WebGroup  string
	BackupDir string
	ACME      ACMESettings
	// FPM is how the web servers' php-fpm takes isolated sites' pools.
	FPM provision.FPMSpec
	// Master names this master among those sharing the state: the
	// backups it takes are recorded as in its backups directory.
	Master string
}

// Runner runs tasks: context in, back end, changes out.
type Runner struct {
	Store    *store.Store
	Home     string
	Pool     *engine.Pool
	Settings Settings
	// KeepLoginLinks makes Handle keep the one-time login link a task
	// made, in memory only, for TakeLoginLink: set by a command that
	// runs a login-reset in the foreground and shows the link once.
	KeepLoginLinks bool
	links          sync.Map // task id -> login link
	// RunChild claims the queued task id and runs it to its end in the
	// calling goroutine (the queue's Dispatcher.RunTask): a platform
	// migrate runs its site moves so.
	RunChild func(ctx context.Context, id int64) (*entities.Task, error)
	// OnMigrate, if set, is told of a running platform migrate's progress
	// at each change (a copy; the command line draws it).
	OnMigrate func(p *MigrateProgress)
}

// TakeLoginLink returns the one-time login link task id made, once, and
// forgets it ("" when there is none; see KeepLoginLinks).
func (r *Runner) TakeLoginLink(id int64) string {
	if v, ok := r.links.LoadAndDelete(id); ok {
		return v.(string)
	}
	return ""
}

// Outcome is how a task ended.
type Outcome struct {
	Status string // success, warning or error
	Error  string
	Hint   string
	Fix    []entities.Action
	Code   string
	Result *provision.Result
	// LoginLink is a one-time login link a login-reset made: shown once to
	// whoever ran the task, never kept in the task's stored result or log.
	LoginLink string
}

// Run carries out one task. log receives every line as it happens.
func (r *Runner) Run(ctx context.Context, t *entities.Task, log provision.Logger) Outcome {
	c, err := r.BuildContext(ctx, t)
	if err != nil {
		res := &provision.Result{Status: provision.StatusError, ErrorCode: provision.ErrInvalidContext, Error: err.Error(),
			Hint: "the task's target changed or vanished since it was queued; check it", Fix: showTarget(t)}
		// An error that says its own fix (a password file others may
		// read) keeps it.
		if pe := (*provision.Error)(nil); errors.As(err, &pe) && (pe.Hint != "" || len(pe.Fix) > 0) {
			res.ErrorCode, res.Hint, res.Fix = pe.Code, pe.Hint, pe.Fix
		}
		log.Log(provision.LevelError, res.Error)
		return outcome(res)
	}
	if err := r.before(ctx, t, c); err != nil {
		res := &provision.Result{Status: provision.StatusError, ErrorCode: provision.ErrInternal, Error: err.Error()}
		log.Log(provision.LevelError, res.Error)
		return outcome(res)
	}
	res := engine.Run(ctx, r.Home, c, log, r.Pool)
	// What the back end did is saved even when the task was cancelled
	// meanwhile (an interrupt, a lost lease): it happened on the servers.
	if err := r.apply(context.WithoutCancel(ctx), t, res, log); err != nil {
		log.Log(provision.LevelError, "saving the task's results in the state database failed: "+err.Error())
		res.Status = provision.StatusError
		res.Error = "saving results: " + err.Error()
		res.Hint = "the work on the server is done; run the task again so the state records it"
		res.Fix = []entities.Action{entities.Do("task.retry", strconv.FormatInt(t.ID, 10))}
	}
	o := outcome(res)
	if res.Changes != nil && res.Changes.LoginLink != "" {
		o.LoginLink = res.Changes.LoginLink
		res.Changes.LoginLink = ""
	}
	return o
}

// showTarget is the action that shows task t's target.
func showTarget(t *entities.Task) []entities.Action {
	switch t.TargetKind {
	case entities.TargetSite:
		return []entities.Action{entities.Do("site.show", t.Target)}
	case entities.TargetPlatform:
		return []entities.Action{entities.Do("platform.show", t.Target)}
	case entities.TargetServer:
		return []entities.Action{entities.Do("server.show", t.Target)}
	}
	return nil
}

// Handle is the queue's Handler: it runs t, and a task that waits for a
// reload it shares with others lends its worker to the next task
// meanwhile.
func (r *Runner) Handle(ctx context.Context, t *entities.Task, log func(level, msg string, fix ...entities.Action)) queue.Outcome {
	if t.Type == entities.TaskPlatformMigrate {
		return r.migratePlatform(ctx, t, log)
	}
	wctx := engine.WithSharedWait(ctx, func() func() { return queue.ReleaseWorker(ctx) })
	o := r.Run(wctx, t, provision.FixLoggerFunc(log))
	if r.KeepLoginLinks && o.LoginLink != "" {
		r.links.Store(t.ID, o.LoginLink)
	}
	return o.Queue()
}

// Rescue is the queue's Cleanup: Cleanup with its log lines kept in the
// dead task's log, marked as the clean-up's.
func (r *Runner) Rescue(ctx context.Context, t *entities.Task) (bool, error) {
	return r.Cleanup(ctx, t, provision.FixLoggerFunc(func(level, msg string, fix ...entities.Action) {
		_ = r.Store.AppendLog(ctx, t.ID, entities.LogLine{Level: level, Message: "clean-up: " + msg, Fix: fix})
	}))
}

// Queue is the outcome as the queue records it.
func (o Outcome) Queue() queue.Outcome {
	return queue.Outcome{Status: o.Status, Error: o.Error, Hint: o.Hint, Fix: o.Fix, Code: o.Code, Result: o.Result}
}

func outcome(res *provision.Result) Outcome {
	return Outcome{Status: res.Status, Error: res.Error, Hint: res.Hint, Fix: res.Fix, Code: res.ErrorCode, Result: res}
}

// BuildContext turns a task's target and relations into a Job.
func (r *Runner) BuildContext(ctx context.Context, t *entities.Task) (*provision.Job, error) {
	c := &provision.Job{Version: provision.JobVersion, Task: t.Type, TaskID: t.ID,
		System: provision.SystemSpec{WebUser: r.Settings.WebUser, WebGroup: r.Settings.WebGroup, FPM: r.Settings.FPM}, Backup: provision.BackupSpec{Dir: r.Settings.BackupDir}}
	if len(t.Options) > 0 {
		c.Options = map[string]string{}
		for k, v := range t.Options {
			c.Options[k] = v
		}
	}
	switch t.TargetKind {
	case entities.TargetServer:
		s, err := r.Store.GetServerByID(ctx, t.TargetID)
		if err != nil {
			return nil, err
		}
		c.Server = s.Name
		r.fillWeb(c, s)
		if err := r.fillDB(c, s); err != nil {
			return nil, err
		}
		if t.Type == entities.TaskServerVerify {
			// The platforms' roots, which the server's privileged
			// helper must hold below its roots (checkDeployUser).
			ps, err := r.Store.ListPlatforms(ctx, s.Name)
			if err != nil {
				return nil, err
			}
			var roots []string
			for _, p := range ps {
				roots = append(roots, p.Root)
			}
			if c.Options == nil {
				c.Options = map[string]string{}
			}
			if len(roots) > 0 {
				c.Options["platform_roots"] = strings.Join(roots, "\n")
			}
			// Whether the server hosts isolated sites: what php-fpm's
			// opcache must then keep apart (checkValidatePermission).
			sites, err := r.Store.ListSites(ctx, store.SiteFilter{Server: s.Name})
			if err != nil {
				return nil, err
			}
			n := 0
			for _, site := range sites {
				if site.Isolation == entities.IsolationSite {
					n++
				}
			}
			c.Options["isolated_sites"] = strconv.Itoa(n)
		}
	case entities.TargetPlatform:
		p, err := r.Store.GetPlatformByID(ctx, t.TargetID)
		if err != nil {
			return nil, err
		}
		if _, err := r.fillPlatform(ctx, c, p); err != nil {
			return nil, err
		}
	case entities.TargetSite:
		site, err := r.Store.GetSiteByID(ctx, t.TargetID)
		if err != nil {
			return nil, err
		}
		if err := r.fillSite(ctx, c, site); err != nil {
			return nil, err
		}
		return r.siteTaskContext(ctx, t, c)
	case entities.TargetBackup:
		if err := r.fillBackup(ctx, t, c); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("task %d: unknown target kind %q", t.ID, t.TargetKind)
	}
	return c, nil
}

// fillPlatform puts platform p and its web server into c, and returns
// the server (read once for the job).
func (r *Runner) fillPlatform(ctx context.Context, c *provision.Job, p *entities.Platform) (*entities.Server, error) {
	s, err := r.Store.GetServer(ctx, p.Server)
	if err != nil {
		return nil, err
	}
	r.fillWeb(c, s)
	c.Site.Platform = provision.PlatformSpec{Name: p.Name, Root: p.Root, Type: p.Type, CoreVersion: p.CoreVersion, Drush: p.Drush}
	return s, nil
}

func (r *Runner) fillSite(ctx context.Context, c *provision.Job, site *entities.Site) error {
	p, err := r.Store.GetPlatformByID(ctx, site.PlatformID)
	if err != nil {
		return err
	}
	web, err := r.fillPlatform(ctx, c, p)
	if err != nil {
		return err
	}
	dbs, err := r.Store.GetServerByID(ctx, site.DBServerID)
	if err != nil {
		return err
	}
	if err := r.fillDB(c, dbs); err != nil {
		return err
	}
	c.Site.DB.GrantHost = grantHost(web, dbs, c.Site.DBServer.Host)
	if site.DBGrantHost != "" {
		// The account the task that made the database user chose.
		c.Site.DB.GrantHost = site.DBGrantHost
	}
	c.Site.Domain, c.Site.Aliases, c.Site.Redirect = site.Domain, site.Aliases, site.Redirect
	c.Site.Profile, c.Site.Language, c.Site.Client.Name, c.Site.Status = site.Profile, site.Language, site.Client, site.Status
	c.Site.DB.Name, c.Site.DB.User, c.Site.DB.Password, c.Site.HTTPS.Mode = site.DBName, site.DBUser, site.DBPassword, site.HTTPS
	c.Site.PHP, c.Site.Isolation = site.PHP, site.Isolation
	if err := r.fillCert(ctx, c, site); err != nil {
		return err
	}
	if site.Client != "" {
		if cl, err := r.Store.GetClient(ctx, site.Client); err == nil {
			c.Site.Client.Email = cl.Email
		}
	}
	return nil
}

// Options of a site.install task: what the command line's --title,
// --admin-user and --admin-email gave.
const (
	OptTitle      = "title"
	OptAdminUser  = "admin_user"
	OptAdminEmail = "admin_email"
)

// fillInstall moves the install task's options into the job's install spec.
func fillInstall(t *entities.Task, c *provision.Job) {
	c.Site.Install.Title, c.Site.Install.AdminUser, c.Site.Install.AdminEmail = t.Options[OptTitle], t.Options[OptAdminUser], t.Options[OptAdminEmail]
	for _, k := range []string{OptTitle, OptAdminUser, OptAdminEmail} {
		delete(c.Options, k)
	}
}

// grantHost is where the web server connects to the database from, as the
// database server sees it: on one machine, the loopback address the site
// connects to (MariaDB with skip_name_resolve does not map 127.0.0.1 to
// localhost), or localhost for a unix socket; otherwise the web server's
// address. For this machine as the web server of a remote database
// server, empty: only the back end can ask the database server what
// address it sees (see provision/tasks dbService).
func grantHost(web, dbs *entities.Server, dbHost string) string {
	if web.ID == dbs.ID || (web.IsLocal() && dbs.IsLocal()) {
		if dbHost == "" || dbHost == "localhost" || strings.HasPrefix(dbHost, "/") {
			return "localhost"
		}
		return dbHost
	}
	if web.IsLocal() {
		return ""
	}
	return web.Host
}

// ServerRef is how the back end reaches s's machine, for a command that
// reads from it itself (aegir site logs).
func ServerRef(s *entities.Server) provision.ServerRef { return ref(s) }

// ref is how the back end reaches s's machine.
func ref(s *entities.Server) provision.ServerRef {
	return provision.ServerRef{Name: s.Name, Host: s.Host, SSHUser: s.SSHUser, SSHPort: s.SSHPort, SSHKey: s.SSHKey, AcceptHostKey: s.AcceptHostKey}
}

// fillWeb sets the job's web server to s, replacing all of another
// server's (a job filled again for a migration's target).
func (r *Runner) fillWeb(c *provision.Job, s *entities.Server) {
	w := provision.WebSpec{ServerRef: ref(s), Home: s.RemoteHome}
	if s.IsLocal() {
		w.Home = r.Home
	}
	for _, sv := range s.Services {
		if sv.Kind == entities.KindHTTP {
			w.Type, w.Port, w.HTTPSPort, w.TestCmd, w.RestartCmd, w.PHPFPM = sv.Type, sv.Port, sv.HTTPSPort, sv.TestCmd, sv.RestartCmd, sv.PHPFPM
			w.ListenIP, w.ReloadPending = sv.ListenIP, sv.ReloadPending
		}
	}
	c.Site.Web = w
}

// fillDB sets the job's database server to s, replacing all of another
// server's (a job filled again for a migration's target).
func (r *Runner) fillDB(c *provision.Job, s *entities.Server) error {
	d := provision.DBSpec{Machine: ref(s)}
	for _, sv := range s.Services {
		if sv.Kind != entities.KindDB {
			continue
		}
		d.Type, d.Host, d.Port, d.AdminUser, d.AdminPasswordFile, d.Tunnel = sv.Type, sv.DBHost, sv.Port, sv.AdminUser, sv.AdminPasswordFile, sv.DBTunnel
		if sv.AdminPasswordFile != "" {
			// Refused at each use, as ssh refuses such a key: a mode
			// changed after server add or edit checked it.
			if st, err := os.Stat(sv.AdminPasswordFile); err == nil && st.Mode().Perm()&0o077 != 0 {
				return provision.Errorf(provision.ErrInvalidContext, "chmod 600 "+exec.Quote(sv.AdminPasswordFile),
					"the database admin password file of server %s, %s, may be read by its group or others (its mode is %04o): refused, as ssh refuses such a key",
					s.Name, sv.AdminPasswordFile, st.Mode().Perm())
			}
			b, err := os.ReadFile(sv.AdminPasswordFile)
			if err != nil {
				return &provision.Error{Code: provision.ErrInvalidContext, Msg: "reading the database admin password of server " + s.Name, Err: err,
					Hint: "give the server a password file aegir can read", Fix: []entities.Action{entities.Do("server.edit", s.Name, "db-admin-password-file=FILE")}}
			}
			d.AdminPassword = strings.TrimRight(string(b), "\r\n")
		}
	}
	c.Site.DBServer = d
	return nil
}
