package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision/backup"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	siteCommands = append(siteCommands,
		func(a *App) *cobra.Command { return newSiteBackupCmd(a, nil) }, func(a *App) *cobra.Command { return newSiteRestoreCmd(a, nil) },
		func(a *App) *cobra.Command { return newSiteMigrateCmd(a, nil) }, func(a *App) *cobra.Command { return newSiteCloneCmd(a, nil) })
	extraCommands = append(extraCommands, (*App).backupCmd)
}

func parseBackupID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, invalid("backup ID", s, "must be a positive whole number (aegir backup list shows them)")
	}
	return id, nil
}

// installedSite opens the state and finds a live site that a backup,
// restore, migrate or clone can work on: installed (or disabled), not
// waiting for its install.
func (a *App) installedSite(domain string) (*store.Store, *entities.Site, error) {
	st, v, err := a.liveSite(domain)
	if err != nil {
		return nil, nil, err
	}
	if err := notInstalled(v); err != nil {
		return nil, nil, err
	}
	return st, v, nil
}

// notInstalled is the error for a site still waiting for its install
// (exit 4: its install task holds it), nil for any other.
func notInstalled(v *entities.Site) error {
	if v.Status != entities.SiteQueued {
		return nil
	}
	return &Error{Code: ExitBusy, Err: fmt.Errorf("site %s is not installed yet", v.Domain),
		Hint: "wait for its install task, or retry it: aegir task list --site " + v.Domain}
}

func newSiteBackupCmd(a *App, runF func(*TaskVerbOptions) error) *cobra.Command {
	cmd := newTaskVerbCmd(a, "backup DOMAIN", "Back up a site: its database, files and settings in one archive in AEGIR_HOME/backups",
		entities.TaskSiteBackup, runSiteBackup, runF)
	cmd.Long = `Write one .tar.gz archive of the site into AEGIR_HOME/backups on this
machine (the master), named after the domain and the time: database.sql, the
site's files and settings, and manifest.json with a SHA-256 of every member.
The database dump and the files stream from their servers into the archive;
plain tar xzf reads it. Prints the backup's record (aegir backup list).`
	cmd.Flags().Lookup("queue").Usage = "only queue the backup task; print its id"
	return cmd
}

func runSiteBackup(o *TaskVerbOptions) error {
	st, v, err := o.installedSite(o.Target)
	if err != nil {
		return err
	}
	return o.queueSiteTask(st, v, o.Type, nil, o.Queue, func() (any, error) { return st.LatestBackup(o.ctx, v.ID) })
}

// siteTask records the task of a site verb (backup, restore, verify,
// cron ...) on live site v as the command of that verb records it: a
// backup or restore only of an installed site, a restore of backup id
// (0: the newest). For the API; the commands record theirs on the way.
func (a *App) siteTask(st *store.Store, v *entities.Site, typ string, backup int64) (*entities.Task, error) {
	var opts map[string]string
	switch typ {
	case entities.TaskSiteBackup, entities.TaskSiteRestore:
		if err := notInstalled(v); err != nil {
			return nil, err
		}
	}
	master := ""
	if typ == entities.TaskSiteRestore {
		b, err := a.restoreFrom(st, v, backup)
		if err != nil {
			return nil, err
		}
		opts = map[string]string{"backup": strconv.FormatInt(b.ID, 10)}
		master = a.tiedTo(b, false) // as site restore: the archive's master runs it
	}
	return a.queueOnFor(st, master, v, typ, opts)
}

// restoreFrom is the backup a restore of site v takes: id, or the newest.
func (a *App) restoreFrom(st *store.Store, v *entities.Site, id int64) (*entities.Backup, error) {
	if id != 0 {
		b, err := st.GetSiteBackup(a.ctx, v.ID, id)
		if err != nil {
			return nil, &Error{Code: ExitNotFound, Err: fmt.Errorf("site %s has no backup %d", v.Domain, id), Hint: "see its backups: aegir backup list --site " + v.Domain}
		}
		return b, nil
	}
	b, err := st.LatestBackup(a.ctx, v.ID)
	if err != nil {
		return nil, &Error{Code: ExitNotFound, Err: fmt.Errorf("site %s has no backup", v.Domain), Hint: "take one first: aegir site backup " + v.Domain}
	}
	return b, nil
}

// SiteRestoreOptions are site restore's: the site (live, or deleted and
// brought back) and the backup's ID as typed (empty: the newest).
type SiteRestoreOptions struct {
	*App
	Domain, Backup string
	Queue, DryRun  bool
}

func newSiteRestoreCmd(a *App, runF func(*SiteRestoreOptions) error) *cobra.Command {
	o := &SiteRestoreOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "restore DOMAIN [--backup ID]",
		Short: "Put a site's database, files and settings back as a backup holds them (the newest by default)",
		Long: `Restore a site from one of its backups (aegir backup list --site DOMAIN;
the newest by default). The archive is checked first, and every member again
as it is unpacked: a damaged or changed backup is refused and the site is not
touched. The backup goes into a new database and staging directories, which
then take the place of the live ones; if any step fails, the site is put back
as it was. What the site gained after the backup is gone afterwards.

A deleted site is brought back the same way from one of its backups (those
site delete takes first): the site is recorded again on its platform and
database server, with the aliases the backup lists (those another site has
taken since are left out, with a warning), and the restore fills it.

With several masters on one state, the restore of an archive another master
holds, in a backups directory this master does not share, is queued for that
master, which runs it at its next queue run; a deleted site is brought back on
that master itself (docs/masters.md).`,
	}, o, runF, runSiteRestore, &o.Domain)
	cmd.Flags().StringVar(&o.Backup, "backup", "", "the backup's ID (default: the site's newest)")
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "only queue the restore task; print its id")
	dryRunFlag(cmd.Flags(), &o.DryRun)
	return cmd
}

func runSiteRestore(o *SiteRestoreOptions) error {
	var id int64
	if o.Backup != "" {
		var err error
		if id, err = parseBackupID(o.Backup); err != nil {
			return err
		}
	}
	st, v, err := o.installedSite(o.Domain)
	if errors.Is(err, store.ErrNotFound) {
		return o.recreateSite(o.Domain, id, o.Queue, o.DryRun, err)
	}
	if err != nil {
		return err
	}
	b, err := o.restoreFrom(st, v, id)
	if err != nil {
		return err
	}
	if o.DryRun {
		return o.planSiteTask(v, entities.TaskSiteRestore, map[string]string{"backup": strconv.FormatInt(b.ID, 10)})
	}
	if err := o.confirm(fmt.Sprintf("Replace the database and files of %s with backup %d of %s? What the site gained since then is lost.",
		v.Domain, b.ID, b.Created.Local().Format(time.DateTime))); err != nil {
		return err
	}
	t, err := o.queueOnFor(st, o.tiedTo(b, false), v, entities.TaskSiteRestore, map[string]string{"backup": strconv.FormatInt(b.ID, 10)})
	if err != nil {
		return err
	}
	o.infof("restoring %s from backup %d of %s (%s)", v.Domain, b.ID, b.Created.Local().Format(time.DateTime), b.Path)
	return o.runOrQueue(t, o.Queue, func() (any, error) { return st.GetSiteByID(o.ctx, v.ID) })
}

// recreateSite brings a deleted site back from one of its backups (id,
// or the newest): the archive is checked, the site recorded again with
// the aliases the backup lists that are still free, and restored.
// notFound is the error to give when the domain has no deleted site with
// a backup either.
func (a *App) recreateSite(arg string, id int64, queue, dryRun bool, notFound error) error {
	domain, err := entities.NormalizeDomain("DOMAIN", arg)
	if err != nil {
		return err
	}
	st, err := a.Store()
	if err != nil {
		return err
	}
	b, deletedID, err := st.DeletedSiteBackup(a.ctx, domain, id)
	if errors.Is(err, store.ErrNotFound) {
		if id != 0 {
			return &Error{Code: ExitNotFound, Err: fmt.Errorf("no site %s, and backup %d is not of a deleted site %s", domain, id, domain),
				Hint: "see the backups of " + domain + ": aegir backup list --site " + domain}
		}
		return notFound
	}
	if err != nil {
		return err
	}
	if m := a.tiedTo(b, false); m != "" {
		// The archive is read here, before anything is recorded.
		return &Error{Code: ExitFailed, Err: fmt.Errorf("backup %d of %s is on master %s (%s), whose backups directory this master (%s) does not share; nothing was recorded", b.ID, domain, m, b.Path, a.master()),
			Hint: "bring the site back on master " + m + ": aegir site restore " + domain + " --backup " + strconv.FormatInt(b.ID, 10) + " there (docs/masters.md)"}
	}
	a.infof("site %s was deleted; checking backup %d of %s (%s) to bring it back", domain, b.ID, b.Created.Local().Format(time.DateTime), b.Path)
	if err := backup.CheckSum(b.Path, b.SHA256); err != nil {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("backup %d: %w; nothing was recorded", b.ID, err), Hint: "pick another: aegir backup list --site " + domain}
	}
	m, err := backup.Verify(a.ctx, b.Path)
	if err != nil {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("backup %d: %w; nothing was recorded", b.ID, err), Hint: "pick another: aegir backup list --site " + domain}
	}
	var aliases []string
	for _, al := range m.Aliases {
		owner, err := st.NameOwner(a.ctx, al)
		if err != nil {
			return err
		}
		if owner != "" {
			a.warnf("alias %s is now a name of site %s: %s comes back without it (add it later: aegir site edit %s --add-alias %s)", al, owner, domain, domain, al)
			continue
		}
		aliases = append(aliases, al)
	}
	if dryRun {
		return a.showPlan(&hosting.Plan{Task: entities.TaskSiteRestore, Target: domain, Changes: []hosting.PlanChange{
			{Kind: "record", Action: hosting.PlanUpdate, What: "status", Detail: entities.SiteDeleted + " → " + entities.SiteInstalled + ", aliases " + strings.Join(aliases, ",")},
			{Kind: "database", Action: hosting.PlanCreate, What: "named for " + domain, Server: m.DBServer, Detail: "loaded from " + b.Path},
			{Kind: "db_user", Action: hosting.PlanCreate, What: "named for " + domain, Server: m.DBServer, Detail: "a new password"},
			{Kind: "files", Action: hosting.PlanCreate, What: "the site's files and settings on platform " + m.Platform, Server: m.WebServer, Detail: "from " + b.Path},
			{Kind: "vhost", Action: hosting.PlanCreate, What: domain, Server: m.WebServer},
		}})
	}
	v, t, err := st.RecreateSite(a.ctx, deletedID, aliases, b.ID)
	if err != nil {
		return err
	}
	a.infof("recorded %s again (platform %s, database server %s); restoring it from backup %d", v.Domain, v.Platform, v.DBServer, b.ID)
	return a.runOrQueue(t, queue, func() (any, error) { return st.GetSiteByID(a.ctx, v.ID) })
}

// Placement is where a migrate or a clone puts a site: the platform and
// the database server (empty: the site's own).
type Placement struct {
	Platform, DBServer string
}

// resolve checks the target platform (same kind as the site's) and
// database server; empty ones are the site's own.
func (pl Placement) resolve(a *App, st *store.Store, v *entities.Site) (*entities.Platform, string, error) {
	platform, dbServer := pl.Platform, pl.DBServer
	if platform == "" {
		platform = v.Platform
	}
	if err := entities.ValidateName("--platform", platform); err != nil {
		return nil, "", err
	}
	p, err := st.GetPlatform(a.ctx, platform)
	if err != nil {
		return nil, "", err
	}
	cur, err := st.GetPlatformByID(a.ctx, v.PlatformID)
	if err != nil {
		return nil, "", err
	}
	if p.Type != "" && cur.Type != "" && p.Type != cur.Type {
		return nil, "", invalid("--platform", platform, "is a "+p.Type+" platform; "+v.Domain+" is a "+cur.Type+" site")
	}
	if dbServer == "" {
		dbServer = v.DBServer
	}
	if err := entities.ValidateName("--db-server", dbServer); err != nil {
		return nil, "", err
	}
	s, err := st.GetServer(a.ctx, dbServer)
	if err != nil {
		return nil, "", err
	}
	if service(s, entities.KindDB) == nil {
		return nil, "", &Error{Code: ExitUsage, Err: entities.Invalid("--db-server", dbServer, "has no database service"),
			Hint: "add one: aegir server edit " + dbServer + " --db mariadb, or pick another: aegir service list"}
	}
	if err := checkDBReach(a, st, p.Server, s.Name); err != nil {
		return nil, "", err
	}
	return p, s.Name, nil
}

// freeDomain checks that no other live site answers to domain.
func (a *App) freeDomain(st *store.Store, field, domain, self string) error {
	owner, err := st.NameOwner(a.ctx, domain)
	if err != nil {
		return err
	}
	if owner != "" && owner != self {
		return &Error{Code: ExitUsage, Err: entities.Invalid(field, domain, "is already a name of site "+owner), Hint: "pick another domain, or see: aegir site show " + owner}
	}
	return nil
}

// SiteMoveOptions are site migrate's and site clone's: the site, where
// it (or its clone) goes, and the new domain (migrate's --domain, the
// clone's NEWDOMAIN).
type SiteMoveOptions struct {
	*App
	Domain, NewDomain string
	To                Placement
	Queue, DryRun     bool
}

func newSiteMigrateCmd(a *App, runF func(*SiteMoveOptions) error) *cobra.Command {
	o := &SiteMoveOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "migrate DOMAIN --platform P [--db-server S] [--domain NEW]",
		Short: "Move a site to another platform, database server or domain, keeping its content",
		Long: `Move a site: back it up, put it on the platform P (and the database server S,
in a new database with its own user), run the platform's update step
(WordPress: its database upgrade; Drupal: drush updatedb), write its virtual
host there, check that it runs, and only then remove it from its old place.
A failure at any step leaves the site working where it was. With --domain the
site takes a new domain (its aliases stay).`,
	}, o, runF, runSiteMigrate, &o.Domain)
	cmd.Flags().StringVar(&o.To.Platform, "platform", "", "the platform to move the site to")
	cmd.Flags().StringVar(&o.To.DBServer, "db-server", "", "the database server to move its database to (default: where it is)")
	cmd.Flags().StringVar(&o.NewDomain, "domain", "", "a new domain for the site")
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "only queue the migrate task; print its id")
	dryRunFlag(cmd.Flags(), &o.DryRun)
	return cmd
}

func runSiteMigrate(o *SiteMoveOptions) error {
	if o.To.Platform == "" {
		return invalid("--platform", "", "is required: the platform to move to (it may be the site's own, with --db-server or --domain)")
	}
	st, v, err := o.installedSite(o.Domain)
	if err != nil {
		return err
	}
	p, dbServer, err := o.To.resolve(o.App, st, v)
	if err != nil {
		return err
	}
	if p.ID != v.PlatformID {
		if err := store.OpenForSites(p); err != nil {
			return err
		}
	}
	opts := map[string]string{"platform": p.Name, "db_server": dbServer}
	if o.NewDomain != "" {
		d, err := entities.NormalizeDomain("--domain", o.NewDomain)
		if err != nil {
			return err
		}
		if err := o.freeDomain(st, "--domain", d, v.Domain); err != nil {
			return err
		}
		for _, al := range v.Aliases {
			if al == d {
				return invalid("--domain", d, "is an alias of the site; remove it first: aegir site edit "+v.Domain+" --remove-alias "+d)
			}
		}
		opts["domain"] = d
	}
	if p.Name == v.Platform && dbServer == v.DBServer && (opts["domain"] == "" || opts["domain"] == v.Domain) {
		return invalid("--platform", p.Name, "is where "+v.Domain+" is already; give another platform, --db-server or --domain")
	}
	if o.DryRun {
		return o.planSiteTask(v, entities.TaskSiteMigrate, opts)
	}
	return o.queueSiteTask(st, v, entities.TaskSiteMigrate, opts, o.Queue, func() (any, error) { return st.GetSiteByID(o.ctx, v.ID) })
}

func newSiteCloneCmd(a *App, runF func(*SiteMoveOptions) error) *cobra.Command {
	o := &SiteMoveOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "clone DOMAIN NEWDOMAIN [--platform P] [--db-server S]",
		Short: "Copy a site to a new domain, with its own database, user and credentials",
		Long: `Make NEWDOMAIN a full copy of DOMAIN: a fresh backup of DOMAIN (kept with its
backups) unpacked on the platform P (default: DOMAIN's) into a new database
on the server S (default: DOMAIN's) with its own user and password, new
settings and secrets, its own virtual host, and the site's addresses
rewritten to the new domain (WordPress). DOMAIN is not changed. The clone
is a new site: aegir site show NEWDOMAIN.`,
	}, o, runF, runSiteClone, &o.Domain, &o.NewDomain)
	cmd.Flags().StringVar(&o.To.Platform, "platform", "", "the platform of the clone (default: the site's)")
	cmd.Flags().StringVar(&o.To.DBServer, "db-server", "", "the database server of the clone (default: the site's)")
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "only queue the clone task; print its id")
	return cmd
}

func runSiteClone(o *SiteMoveOptions) error {
	nd, err := entities.NormalizeDomain("NEWDOMAIN", o.NewDomain)
	if err != nil {
		return err
	}
	st, v, err := o.installedSite(o.Domain)
	if err != nil {
		return err
	}
	if err := o.freeDomain(st, "NEWDOMAIN", nd, ""); err != nil {
		return err
	}
	p, dbServer, err := o.To.resolve(o.App, st, v)
	if err != nil {
		return err
	}
	t, err := st.CloneSite(o.ctx, &entities.Site{Domain: nd, Platform: p.Name, DBServer: dbServer}, v)
	if err != nil {
		return err
	}
	return o.runOrQueue(t, o.Queue, func() (any, error) { return st.GetSite(o.ctx, nd) })
}

func (a *App) backupCmd() *cobra.Command {
	c := &cobra.Command{Use: "backup", Short: "Backups: list, check and delete the archives of your sites"}
	c.AddCommand(newBackupListCmd(a, nil), newArgCmd(a, &cobra.Command{
		Use:   "verify ID",
		Short: "Check a backup: its file against the state's checksum, every member against its manifest",
		Long: `Read a backup whole and check it: the file's SHA-256 against the one recorded
when it was written, and every member (database.sql, each file, each
directory and link) against manifest.json. Exits 1 and names what is wrong
when anything does not match.`,
	}, runBackupVerify, nil), newBackupDeleteCmd(a, nil))
	return c
}

// BackupListOptions are backup list's: the site filter.
type BackupListOptions struct {
	*App
	Site string
}

func newBackupListCmd(a *App, runF func(*BackupListOptions) error) *cobra.Command {
	o := &BackupListOptions{App: a}
	cmd := bind(&cobra.Command{Use: "list [--site DOMAIN]", Short: "List backups, newest first"}, o, runF, runBackupList)
	cmd.Flags().StringVar(&o.Site, "site", "", "only this site's backups (deleted sites' too)")
	return cmd
}

func runBackupList(o *BackupListOptions) error {
	st, err := o.Store()
	if err != nil {
		return err
	}
	domain, err := o.siteFilter(st, o.Site)
	if err != nil {
		return err
	}
	v, err := st.ListBackups(o.ctx, domain)
	if err != nil {
		return err
	}
	return o.print(v)
}

// BackupDeleteOptions are backup delete's: the backup's ID as typed.
type BackupDeleteOptions struct {
	*App
	ID    string
	Queue bool
}

func newBackupDeleteCmd(a *App, runF func(*BackupDeleteOptions) error) *cobra.Command {
	o := &BackupDeleteOptions{App: a}
	cmd := bind(&cobra.Command{Use: "delete ID", Short: "Delete a backup: its archive and its record",
		Long: `Delete a backup: its archive and its record.

An archive is deleted by the master whose backups directory holds it. With
several masters on one state, the delete of another master's archive that is
not in this master's backups directory is queued for that master (task show
ID names it), which runs it at its next queue run; this master runs none of
it. If that master is gone for good, forget it (its tied tasks cancelled, its
backup records deleted): aegir master forget NAME (docs/masters.md).`}, o, runF, runBackupDelete, &o.ID)
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "only queue the delete task; print its id")
	return cmd
}

func runBackupDelete(o *BackupDeleteOptions) error {
	st, b, err := o.backupByID(o.ID)
	if err != nil {
		return err
	}
	if err := o.confirm(fmt.Sprintf("Delete backup %d of %s (%s, %s)? It cannot be brought back.",
		b.ID, b.Site, b.Created.Local().Format(time.DateTime), b.Path)); err != nil {
		return err
	}
	// An archive only another master holds is deleted by that master.
	t, err := st.QueueBackupTask(o.ctx, b, entities.TaskBackupDelete, o.tiedTo(b, true))
	if err != nil {
		return err
	}
	return o.runOrQueue(t, o.Queue, nil)
}

// backupCheck is what backup verify found.
type backupCheck struct {
	ID       int64     `json:"id" yaml:"id"`
	Site     string    `json:"site" yaml:"site"`
	Path     string    `json:"path" yaml:"path"`
	Size     int64     `json:"size" yaml:"size" table:"bytes"`
	Created  time.Time `json:"created" yaml:"created"`
	OK       bool      `json:"ok" yaml:"ok"`
	Members  int       `json:"members" yaml:"members"`
	Files    int       `json:"files" yaml:"files"`
	Problems []string  `json:"problems" yaml:"problems"`
}

// backupByID opens the state and finds a backup by the ID argument.
func (a *App) backupByID(arg string) (*store.Store, *entities.Backup, error) {
	id, err := parseBackupID(arg)
	if err != nil {
		return nil, nil, err
	}
	st, err := a.Store()
	if err != nil {
		return nil, nil, err
	}
	b, err := st.GetBackup(a.ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return st, b, nil
}

func runBackupVerify(o *ArgOptions) error {
	a, arg := o.App, o.Arg
	_, b, err := a.backupByID(arg)
	if err != nil {
		return err
	}
	id := b.ID
	r := backupCheck{ID: b.ID, Site: b.Site, Path: b.Path, Size: b.Size, Created: b.Created, Problems: []string{}}
	var ve *backup.VerifyError
	if err := backup.CheckSum(b.Path, b.SHA256); errors.As(err, &ve) {
		r.Problems = append(r.Problems, ve.Problems...)
	} else if err != nil {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("backup %d: %w", id, err), Hint: "the archive is gone or unreadable; forget it with: aegir backup delete " + arg}
	}
	m, err := backup.Verify(a.ctx, b.Path)
	if errors.As(err, &ve) {
		r.Problems = append(r.Problems, ve.Problems...)
	} else if err != nil {
		return err
	}
	if m != nil {
		r.Members = len(m.Members)
		r.Files, _ = m.Files()
		if m.Site != b.Site {
			r.Problems = append(r.Problems, fmt.Sprintf("the manifest says the backup is of %s, the state says %s", m.Site, b.Site))
		}
	}
	r.OK = len(r.Problems) == 0
	if err := a.print(r); err != nil {
		return err
	}
	if !r.OK {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("backup %d of %s fails verification: %s", id, b.Site, r.Problems[0]),
			Hint: "do not restore it; take a new backup (aegir site backup " + b.Site + ") and delete this one (aegir backup delete " + arg + ")"}
	}
	return nil
}
