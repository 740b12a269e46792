package hosting

import (
	"context"
	"errors"
	"fmt"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/store"
)

// before prepares the record for a task: a new site gets its database
// password here, saved in the (0600) state before the back end runs, so
// that a retried or rolled-back install knows it.
func (r *Runner) before(ctx context.Context, t *entities.Task, c *provision.Job) error {
	if t.Type == entities.TaskSiteClone {
		return r.beforeClone(ctx, t, c)
	}
	if t.Type == entities.TaskSiteRestore && c.Site.DB.Password == "" {
		// The restore makes a new database user, with a password of its
		// own: a deleted site recorded again (saved now, as an install's),
		// or a live site recorded without one (an imported site whose
		// settings had none: saved once the restore worked, see applySite).
		c.Site.DB.Password = db.GeneratePassword()
		if c.Site.Status == entities.SiteQueued {
			return r.Store.SaveSiteDB(ctx, t.TargetID, "", "", c.Site.DB.Password)
		}
		return nil
	}
	if t.Type != entities.TaskSiteInstall || (c.Site.DB.Password != "" && c.Site.DB.Name != "") {
		return nil
	}
	if c.Site.DB.Name == "" {
		// Named now, so that a clean-up after a dead dispatcher knows what
		// to drop; unique among this database server's sites.
		site, err := r.Store.GetSiteByID(ctx, t.TargetID)
		if err != nil {
			return err
		}
		c.Site.DB.Name = db.NameFor(c.Site.Domain, func(n string) bool {
			taken, e := r.Store.DBNameTaken(ctx, site.DBServerID, n)
			if e != nil {
				err = e
			}
			return taken || e != nil
		})
		if err != nil {
			return err
		}
		c.Site.DB.User = c.Site.DB.Name
	}
	if c.Site.DB.Password == "" {
		c.Site.DB.Password = db.GeneratePassword()
	}
	return r.Store.SaveSiteDB(ctx, t.TargetID, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.Password)
}

// Cleanup puts things right after a dispatcher died while it ran t.
// First, whatever the task: the process groups it left running are
// killed, so that nothing writes on while its work is undone, and its
// temporary files are removed (task.rescue: its directories on the
// master and its servers, the backup archive it was writing, stale
// locks). Then a site install that never finished is undone on its
// servers (virtual host, settings and files, database and user; each step
// idempotent; no backup is taken of what never worked) and the site stays
// queued, ready for aegir task retry. A restore, migrate or clone is
// undone from its journal (site.rescue), so that the site works where it
// was; one that was done but for its clean-up has that finished and its
// result saved (finished).
func (r *Runner) Cleanup(ctx context.Context, t *entities.Task, log provision.Logger) (finished bool, err error) {
	res, err := r.undo(ctx, t, provision.TaskRescue, nil, log)
	if err != nil {
		return false, err
	}
	if res.Changes != nil && res.Changes.StillRunning {
		// Its own rollback undoes what it leaves unfinished.
		return false, fmt.Errorf("task %d still runs in another process on this machine; nothing was undone", t.ID)
	}
	switch t.Type {
	case entities.TaskSiteRestore, entities.TaskSiteMigrate, entities.TaskSiteClone, entities.TaskSiteSync:
		return r.rescueMove(ctx, t, log)
	case entities.TaskPlatformMigrate:
		// Its moves that ran were rescued on their own; those it had
		// queued and not started yet go.
		n, err := r.Store.CancelChildren(ctx, t.ID, "cancelled: the platform migrate's dispatcher died before it ran")
		if n > 0 {
			log.Log(provision.LevelInfo, fmt.Sprintf("cancelled %d site move(s) it had queued", n))
		}
		return false, err
	case entities.TaskSiteInstall:
	default:
		return false, nil
	}
	site, err := r.Store.GetSiteByID(ctx, t.TargetID)
	if err != nil || site.Status != entities.SiteQueued {
		return false, err
	}
	_, err = r.undo(ctx, t, "site.delete", map[string]string{"no_backup": "1", "no_backup_why": "the install never finished"}, log)
	return false, err
}

// rescueMove runs site.rescue with the dead task's context, and saves
// what it reports: the backup the move took first, and the result of a
// move that was done.
func (r *Runner) rescueMove(ctx context.Context, t *entities.Task, log provision.Logger) (bool, error) {
	res, err := r.undo(ctx, t, "site.rescue", nil, log)
	if err != nil || res.Changes == nil {
		return false, err
	}
	return res.Changes.MoveDone, r.apply(ctx, t, res, log)
}

// undo runs the back end's task undo with the context of the dead task t,
// and the options opts on top of its own.
func (r *Runner) undo(ctx context.Context, t *entities.Task, undo string, opts map[string]string, log provision.Logger) (*provision.Result, error) {
	c, err := r.BuildContext(ctx, t)
	if err != nil {
		return nil, err
	}
	c.Task = undo
	for k, v := range opts {
		if c.Options == nil {
			c.Options = map[string]string{}
		}
		c.Options[k] = v
	}
	res := engine.Run(ctx, r.Home, c, log, r.Pool)
	if res.Status == provision.StatusError {
		return nil, fmt.Errorf("undoing the unfinished %s of %s: %s", t.Type, t.Target, res.Error)
	}
	return res, nil
}

// apply saves what the back end reported.
func (r *Runner) apply(ctx context.Context, t *entities.Task, res *provision.Result, log provision.Logger) error {
	ch := res.Changes
	if ch == nil {
		ch = &provision.Changes{}
	}
	ok := res.Status != provision.StatusError
	if err := r.applyReloads(ctx, ch.WebReloads); err != nil {
		return err
	}
	if err := r.applyBackup(ctx, t, ch); err != nil {
		return err
	}
	switch t.TargetKind {
	case entities.TargetBackup:
		return r.applyBackupTask(ctx, t, ch, ok)
	case entities.TargetServer:
		s, err := r.Store.GetServerByID(ctx, t.TargetID)
		if err != nil {
			return err
		}
		for _, st := range ch.Services {
			for _, sv := range s.Services {
				if sv.Kind == st.Kind {
					if err := r.Store.SaveServiceStatus(ctx, sv.ID, st.Status, st.Version, st.Message); err != nil {
						return err
					}
					if st.Kind == entities.KindHTTP && st.PHPVersions != nil {
						if err := r.Store.SavePHPVersions(ctx, sv.ID, st.PHPVersions); err != nil {
							return err
						}
					}
				}
			}
		}
		if ok && s.Status != entities.StatusDeleted {
			return r.Store.SetServerStatus(ctx, s.ID, entities.StatusEnabled)
		}
	case entities.TargetPlatform:
		if t.Type == entities.TaskPlatformImport && ok {
			return r.importSites(ctx, t, ch.FoundSites, res.Secrets, log)
		}
		return r.applyPlatform(ctx, t, ch, ok)
	case entities.TargetSite:
		sc := ch.Site
		if sc == nil {
			sc = &provision.SiteChanges{}
		}
		return r.applySite(ctx, t, sc, ch.Committed, ok, res.Secrets["site_db_password"])
	}
	return nil
}

// applyReloads remembers the web server reloads that failed, for the next
// task on the server to do, and forgets those a later reload made up for.
func (r *Runner) applyReloads(ctx context.Context, reloads map[string]provision.ReloadReport) error {
	for name, rep := range reloads {
		s, err := r.Store.GetServer(ctx, name)
		var nf *store.NotFoundError
		if errors.As(err, &nf) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if rep.Failed > 0 {
			if err := r.Store.MarkReloadPending(ctx, s.ID, rep.Failed); err != nil {
				return err
			}
		}
		if rep.Done > 0 {
			if err := r.Store.ClearReloadPending(ctx, s.ID, rep.Done); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Runner) applyPlatform(ctx context.Context, t *entities.Task, ch *provision.Changes, ok bool) error {
	p, err := r.Store.GetPlatformByID(ctx, t.TargetID)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	switch t.Type {
	case entities.TaskPlatformDelete:
		return r.Store.SetPlatformStatus(ctx, p.ID, entities.StatusDeleted)
	case entities.TaskPlatformVerify:
		pc := ch.Platform
		if pc == nil {
			return nil
		}
		if err := r.Store.SavePlatformVerify(ctx, p.ID, pc.Type, pc.CoreVersion, pc.Docroot); err != nil {
			return err
		}
		if err := r.Store.SavePlatformCommit(ctx, p.ID, pc.Commit); err != nil {
			return err
		}
		if pc.Packages != nil {
			return r.Store.ReplacePackages(ctx, p.ID, 0, pc.Packages)
		}
	}
	return nil
}

func (r *Runner) applySite(ctx context.Context, t *entities.Task, ch *provision.SiteChanges, committed, ok bool, dbPassword string) error {
	site, err := r.Store.GetSiteByID(ctx, t.TargetID)
	if err != nil {
		return err
	}
	// Certificates are saved whatever the task's end: a failed renewal
	// still counts, and a certificate installed stays installed.
	if err := r.applyCert(ctx, site, ch); err != nil {
		return err
	}
	if h := ch.Health; h != nil {
		if err := r.Store.SaveSiteHealth(ctx, site.ID, *h); err != nil {
			return err
		}
	}
	if !ok && !committed {
		return nil
	}
	if err := r.certMoved(ctx, site, ch); err != nil {
		return err
	}
	if err := r.applyMove(ctx, site, ch); err != nil {
		return err
	}
	if ch.DB != nil && ch.DB.GrantHost != site.DBGrantHost {
		if err := r.Store.SaveSiteGrantHost(ctx, site.ID, ch.DB.GrantHost); err != nil {
			return err
		}
	}
	pw := site.DBPassword
	if dbPassword != "" {
		pw = dbPassword // the password of the database user the task made
	}
	if d := ch.DB; d != nil && (d.Name != site.DBName || d.User != site.DBUser || pw != site.DBPassword) {
		// The back end chose the database names (they were free on the server).
		if err := r.Store.SaveSiteDB(ctx, site.ID, d.Name, d.User, pw); err != nil {
			return err
		}
	}
	status := ""
	switch t.Type {
	case entities.TaskSiteInstall, entities.TaskSiteEnable:
		status = entities.SiteInstalled
	case entities.TaskSiteDisable:
		status = entities.SiteDisabled
	case entities.TaskSiteDelete:
		status = entities.SiteDeleted
	}
	if ch.Status != "" {
		status = ch.Status
	}
	if status != "" && status != site.Status {
		if err := r.Store.SetSiteStatus(ctx, site.ID, status); err != nil {
			return err
		}
	}
	if st := ch.Stats; st != nil {
		if err := r.Store.SaveSiteStats(ctx, site.ID, entities.SiteStats{Users: st.Users, ActiveUsers: st.ActiveUsers, Posts: st.Posts, Comments: st.Comments,
			DBBytes: st.DBBytes, FilesBytes: st.FilesBytes}); err != nil {
			return err
		}
	}
	if ch.Packages != nil {
		return r.Store.ReplacePackages(ctx, 0, site.ID, ch.Packages)
	}
	return nil
}
