package hosting

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// backupChange is an archive a task wrote (site.backup, and the backups
// that site.delete, site.migrate and site.clone take first).
// siteTaskContext completes the context of a site task that installs,
// restores, migrates or clones the site.
func (r *Runner) siteTaskContext(ctx context.Context, t *entities.Task, c *provision.Job) (*provision.Job, error) {
	switch t.Type {
	case entities.TaskSiteInstall:
		fillInstall(t, c)
	case entities.TaskSiteRestore:
		return c, r.fillRestore(ctx, t, c)
	case entities.TaskSiteMigrate:
		return c, r.fillMigrate(ctx, t, c)
	case entities.TaskSiteClone:
		return r.fromSource(ctx, t, c, true)
	case entities.TaskSiteSync:
		return r.fromSource(ctx, t, c, false)
	}
	return c, nil
}

// fillRestore names the backup to restore: the option backup (an id of
// one of the site's backups), else the site's newest.
func (r *Runner) fillRestore(ctx context.Context, t *entities.Task, c *provision.Job) error {
	var b *entities.Backup
	var err error
	if v := t.Options["backup"]; v != "" {
		id, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			return fmt.Errorf("task %d: option backup %q is not a backup id", t.ID, v)
		}
		b, err = r.Store.GetSiteBackup(ctx, t.TargetID, id)
	} else {
		b, err = r.Store.LatestBackup(ctx, t.TargetID)
	}
	if err != nil {
		return err
	}
	if err := r.archiveHere(b, ""); err != nil {
		return err
	}
	c.Backup.Path, c.Backup.SHA256 = b.Path, b.SHA256
	return nil
}

// archiveHere refuses a backup whose archive is not on this master but in
// the backups directory of another (not shared with this one), naming
// the master that has it; for a delete (dir: this master's backups
// directory) also one outside dir. An archive that is here, or one of
// this master's, goes on to the back end, which checks it.
func (r *Runner) archiveHere(b *entities.Backup, dir string) error {
	if queue.TiedElsewhere(b, r.Settings.Master, dir) == "" {
		return nil
	}
	id := strconv.FormatInt(b.ID, 10)
	hint := "run the task on master " + b.Master + ", or copy the archive to the same path here and run it again (docs/masters.md)"
	if dir != "" {
		hint = "delete it on master " + b.Master + ", which holds it: a delete queued on this master is tied to that master and runs there (docs/masters.md)"
	}
	return &provision.Error{Code: provision.ErrInvalidContext,
		Msg:  fmt.Sprintf("backup %s of %s is on master %s (%s), whose backups directory this master (%s) does not share", id, b.Site, b.Master, b.Path, r.Settings.Master),
		Hint: hint,
		Fix:  []entities.Action{entities.Do("backup.list", "", "site="+b.Site)}}
}

// fillMigrate sets where a migrate takes the site (options platform,
// db_server and domain; each defaults to the site's own) as the job's
// target. The target's database name is left to the
// back end, which picks one that is free on the target server.
func (r *Runner) fillMigrate(ctx context.Context, t *entities.Task, c *provision.Job) error {
	tc := *c
	tc.Site.Aliases = append([]string(nil), c.Site.Aliases...)
	if name := t.Options["platform"]; name != "" && name != c.Site.Platform.Name {
		p, err := r.Store.GetPlatform(ctx, name)
		if err != nil {
			return err
		}
		if err := store.OpenForSites(p); err != nil {
			return err // locked since the migrate was queued
		}
		if _, err := r.fillPlatform(ctx, &tc, p); err != nil {
			return err
		}
	}
	dbName := c.Site.DBServer.Machine.Name
	if name := t.Options["db_server"]; name != "" {
		dbName = name
	}
	dbs, err := r.Store.GetServer(ctx, dbName)
	if err != nil {
		return err
	}
	tc.Site.DBServer.Type = ""
	if err := r.fillDB(&tc, dbs); err != nil {
		return err
	}
	if tc.Site.DBServer.Type == "" {
		return provision.Errorf(provision.ErrInvalidContext, "add one, or pick another database server", "server %s has no database service", dbs.Name).
			With(entities.Do("server.edit", dbs.Name, "db=mariadb"))
	}
	web, err := r.Store.GetServer(ctx, tc.Site.Web.Name)
	if err != nil {
		return err
	}
	tc.Site.DB.GrantHost = grantHost(web, dbs, tc.Site.DBServer.Host)
	if d := t.Options["domain"]; d != "" {
		tc.Site.Domain = d
	}
	tc.Site.DB.Name, tc.Site.DB.User = "", ""
	c.Target = &tc.Site
	return nil
}

// fromSource makes the job of a clone or a sync: the task's site is the
// one the data goes to, so it becomes the target, and the source (option
// source) the job's site. A clone's database is named by the back end; a
// sync's target keeps its own until the sync makes it a new one.
func (r *Runner) fromSource(ctx context.Context, t *entities.Task, c *provision.Job, clone bool) (*provision.Job, error) {
	source, err := r.Store.GetSite(ctx, t.Options["source"])
	if err != nil {
		return nil, err
	}
	sc := &provision.Job{Version: c.Version, Task: c.Task, TaskID: c.TaskID, System: c.System, Backup: provision.BackupSpec{Dir: c.Backup.Dir}, Options: c.Options}
	if err := r.fillSite(ctx, sc, source); err != nil {
		return nil, err
	}
	if clone {
		c.Site.DB.Name, c.Site.DB.User = "", ""
	} else if c.Site.DB.Password == "" {
		// A sync makes the target a new database user: an imported site
		// recorded without a password gets one (saved once it worked).
		c.Site.DB.Password = db.GeneratePassword()
	}
	target := c.Site
	sc.Target = &target
	return sc, nil
}

// fillBackup is the context of a task on a backup (backup.delete).
func (r *Runner) fillBackup(ctx context.Context, t *entities.Task, c *provision.Job) error {
	b, err := r.Store.GetBackup(ctx, t.TargetID)
	if err != nil {
		return err
	}
	if err := r.archiveHere(b, r.Settings.BackupDir); err != nil {
		return err
	}
	c.Backup.Path, c.Backup.SHA256 = b.Path, b.SHA256
	return nil
}

// beforeClone gives a clone its own database password, saved in the
// (0600) state before the back end runs, as an install's is.
func (r *Runner) beforeClone(ctx context.Context, t *entities.Task, c *provision.Job) error {
	if t.Type != entities.TaskSiteClone || c.Target.DB.Password != "" {
		return nil
	}
	c.Target.DB.Password = db.GeneratePassword()
	return r.Store.SaveSiteDB(ctx, t.TargetID, "", "", c.Target.DB.Password)
}

// applyBackup records the archive a task wrote, whatever the task's end:
// the file is there (a migrate that failed after its backup keeps it).
func (r *Runner) applyBackup(ctx context.Context, t *entities.Task, ch *provision.Changes) error {
	b := ch.Backup
	if b == nil || b.Path == "" {
		return nil
	}
	siteID := t.TargetID
	if b.Site != "" {
		s, err := r.Store.GetSite(ctx, b.Site)
		if err != nil {
			return err
		}
		siteID = s.ID
	} else if t.TargetKind != entities.TargetSite {
		return nil
	}
	_, err := r.Store.AddBackupOn(ctx, r.Settings.Master, siteID, b.Path, b.Size, b.SHA256, b.Created)
	return err
}

// applyBackupTask saves the end of a task on a backup.
func (r *Runner) applyBackupTask(ctx context.Context, t *entities.Task, ch *provision.Changes, ok bool) error {
	if ok && ch.BackupDeleted {
		return r.Store.DeleteBackup(ctx, t.TargetID)
	}
	return nil
}

// applyMove records where a migrated site now is.
func (r *Runner) applyMove(ctx context.Context, site *entities.Site, ch *provision.SiteChanges) error {
	if !ch.Moved() {
		return nil
	}
	platform, dbServer, domain, dbName, dbUser := site.Platform, site.DBServer, site.Domain, site.DBName, site.DBUser
	src := []string{ch.Platform, ch.DBServer, ch.Domain, "", ""}
	if ch.DB != nil {
		src[3], src[4] = ch.DB.Name, ch.DB.User
	}
	for i, dst := range []*string{&platform, &dbServer, &domain, &dbName, &dbUser} {
		if src[i] != "" {
			*dst = src[i]
		}
	}
	if err := r.Store.MoveSite(ctx, site.ID, platform, dbServer, domain, dbName, dbUser); err != nil {
		return err
	}
	site.DBName, site.DBUser = dbName, dbUser
	return nil
}
