package cli

import (
	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	siteCommands = append(siteCommands, func(a *App) *cobra.Command { return newSiteSyncCmd(a, nil) })
}

// SiteSyncOptions are site sync's: the source and the site synced onto,
// what is copied, and whether a disabled target is taken anyway.
type SiteSyncOptions struct {
	*App
	Source, Target                    string
	DB, Files, UpdateDB, Force, Queue bool
	DryRun                            bool
}

func newSiteSyncCmd(a *App, runF func(*SiteSyncOptions) error) *cobra.Command {
	o := &SiteSyncOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "sync SRC DST [--db] [--files] [--updatedb] [--force]",
		Short: "Copy a site's database and files over another site (staging to live), after a backup of it",
		Long: `Copy the database (--db) and/or the files (--files; default: both) of site
SRC over site DST, for example a staging clone's new content onto the live
site. DST is backed up first (kept with its backups: aegir site restore DST
brings it back). Then a fresh snapshot of SRC goes into DST's place as a
restore does: into a new database (the old one is dropped once DST works),
the files swapped in; DST keeps its own domain, aliases, settings and
credentials, certificate and virtual host, and SRC's address is rewritten
to DST's where the application keeps it (WordPress), as a clone does. The
platform's update step runs with --updatedb, or when the core versions
differ. DST must then pass the health check of a verify; any failure puts
it back as it was. SRC is not changed.

A disabled DST is refused unless --force (it stays disabled). Both sites
must be of the same kind (WordPress, Drupal) and database (MariaDB/MySQL,
PostgreSQL).`,
	}, o, runF, runSiteSync, &o.Source, &o.Target)
	f := cmd.Flags()
	f.BoolVar(&o.DB, "db", false, "copy the database (with --files: both, the default)")
	f.BoolVar(&o.Files, "files", false, "copy the files: uploads, Drupal's files directories (with --db: both, the default)")
	f.BoolVar(&o.UpdateDB, "updatedb", false, "run the platform's update step on DST afterwards (Drupal: drush updatedb; WordPress: its database upgrade)")
	f.BoolVar(&o.Force, "force", false, "sync onto a disabled DST too")
	f.BoolVar(&o.Queue, "queue", false, "only queue the sync task; print its id")
	dryRunFlag(f, &o.DryRun)
	return cmd
}

func runSiteSync(o *SiteSyncOptions) error {
	src, err := entities.NormalizeDomain("SRC", o.Source)
	if err != nil {
		return err
	}
	dstName, err := entities.NormalizeDomain("DST", o.Target)
	if err != nil {
		return err
	}
	if src == dstName {
		return invalid("DST", dstName, "is SRC itself: give the site to copy onto")
	}
	st, dst, err := o.installedSite(dstName)
	if err != nil {
		return err
	}
	source, err := st.GetSite(o.ctx, src)
	if err != nil {
		return err
	}
	opts, err := o.syncOptions(st, source, dst, o.DB, o.Files, o.UpdateDB, o.Force)
	if err != nil {
		return err
	}
	if o.DryRun {
		return o.planSiteTask(dst, entities.TaskSiteSync, opts)
	}
	return o.queueSiteTask(st, dst, entities.TaskSiteSync, opts, o.Queue, func() (any, error) { return st.GetSiteByID(o.ctx, dst.ID) })
}

// syncOptions checks a sync of site source onto site dst (copying the
// database, the files, or both when db and files are alike; the update
// step with updatedb; onto a disabled dst only with force) and gives the
// site.sync task's options. The command and the API (POST
// /api/sites/{domain}/sync) both queue through it.
func (a *App) syncOptions(st *store.Store, source, dst *entities.Site, db, files, updatedb, force bool) (map[string]string, error) {
	if source.ID == dst.ID {
		return nil, invalid("DST", dst.Domain, "is SRC itself: give the site to copy onto")
	}
	if err := notInstalled(dst); err != nil {
		return nil, err
	}
	if err := notInstalled(source); err != nil {
		return nil, err
	}
	if dst.Status == entities.SiteDisabled && !force {
		return nil, &store.ConflictError{Field: "dst", Msg: "site " + dst.Domain + " is disabled",
			Hint: "give --force to sync onto it anyway (it stays disabled), or enable it first",
			Fix:  []entities.Action{entities.Do("site.enable", dst.Domain)}}
	}
	sp, err := st.GetPlatformByID(a.ctx, source.PlatformID)
	if err != nil {
		return nil, err
	}
	dp, err := st.GetPlatformByID(a.ctx, dst.PlatformID)
	if err != nil {
		return nil, err
	}
	if sp.Type != "" && dp.Type != "" && sp.Type != dp.Type {
		return nil, invalid("DST", dst.Domain, "is a "+dp.Type+" site; "+source.Domain+" is a "+sp.Type+" site")
	}
	opts := map[string]string{"source": source.Domain}
	if db != files { // one of them alone
		opts["db"], opts["files"] = boolOpt(db), boolOpt(files)
	}
	if updatedb {
		opts["updatedb"] = "1"
	}
	return opts, nil
}

func boolOpt(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
