package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/backup"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() {
	engine.Register("site.backup", siteBackup)
	engine.Register("site.restore", siteRestore)
	engine.Register("site.migrate", siteMigrate)
	engine.Register("site.clone", siteClone)
	engine.Register("site.sync", siteSync)
	engine.Register("backup.delete", backupDelete)
}

// siteLayout is what a backup holds of a site besides its database, as
// its platform's driver says (Driver.BackupParts):
//
//	WordPress: uploads/      ROOT/wp-content/uploads/DOMAIN
//	           settings.php  ROOT/wp-content/aegir-sites/DOMAIN.php
//	Drupal:    site/         DOCROOT/sites/DOMAIN (settings.php, files/, private/, ...)
//
// The files of aliases (WordPress) and the virtual host are made again
// from the site's record; the platform's code is not the site's.
func siteLayout(p app.Platform, domain string) []backup.Part {
	return p.Driver.BackupParts(p, domain)
}

// sslPart is the part of a backup that holds the site's certificate and
// key: CONFIGDIR/ssl/DOMAIN on its web server (0700, the key 0600), as
// the archive (0600 itself) keeps them.
const sslPart = "ssl"

// layout is what a backup holds of the site: its files and settings
// (siteLayout) and its certificate directory, if it has one.
func (s *site) layout() []backup.Part {
	return append(siteLayout(s.p, s.c.Site.Domain), backup.Part{Name: sslPart, Path: s.certDir(), Dir: true, Optional: true})
}

// underPart reports whether an archive member is part p or lies under it.
func underPart(name, p string) bool {
	return name == p || name == p+"/" || strings.HasPrefix(name, p+"/")
}

// memberOwner gives unpacked members their owners: what the web server
// writes (webWritable, Driver.BackupMembers: WordPress's uploads, Drupal's
// public and private files) goes to the web server's user and group; the
// rest to aegir's user, as an install leaves them.
func memberOwner(o app.Owner, webWritable []string) func(name string) (string, string) {
	return func(name string) (string, string) {
		for _, p := range webWritable {
			if underPart(name, p) {
				return o.WebUser, o.WebGroup
			}
		}
		return "", ""
	}
}

// giveToWebServer gives the unpacked files the web server writes to its
// user (an isolated site's own user: filesOwner), when tar could not (it
// sets owners only when it runs as root: a deploy user on a remote
// server: its own files, given to the web server's group). One chown -R
// a directory. A failure is a warning:
// the site works, only its uploads are not writable.
func (m *move) giveToWebServer(ctx context.Context, parts []backup.Part) {
	dst := m.dst
	o := dst.filesOwner()
	if o.WebUser == "" || (dst.ex.IsLocal() && os.Geteuid() == 0) {
		return
	}
	spec := o.WebUser
	if o.WebGroup != "" {
		spec += ":" + o.WebGroup
	}
	webWritable, _ := dst.p.Driver.BackupMembers()
	for _, w := range webWritable {
		part, rest, _ := strings.Cut(w, "/")
		for _, p := range parts {
			if p.Name != part {
				continue
			}
			dir := path.Join(p.Path, rest)
			if _, err := dst.ex.Lstat(ctx, dir); err != nil {
				continue
			}
			_, err := dst.ex.Run(ctx, exec.Command{Name: "chown", Args: []string{"-R", "--", spec, dir}})
			if err != nil {
				m.env.Logf(provision.LevelWarning, "could not give %s on %s to %s (%v); the web server cannot write there until: chown -R %s %s",
					dir, dst.ex.Host(), spec, err, spec, dir)
			}
		}
	}
}

// takeBackup writes a backup of the site into the master's backups
// directory: the dump from the database server and the files from the
// web server stream into the archive as they are read.
func takeBackup(ctx context.Context, s *site) (*backup.Info, error) {
	return writeBackup(ctx, s, false)
}

// takeSnapshot writes a backup of the site that is the task's own scratch
// (backup.Source.Scratch): the caller removes it, and if the task dies
// first its rescue does.
func takeSnapshot(ctx context.Context, s *site) (*backup.Info, error) {
	return writeBackup(ctx, s, true)
}

func writeBackup(ctx context.Context, s *site, scratch bool) (*backup.Info, error) {
	c := s.c
	if c.Backup.Dir == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give backup.dir (the master's AEGIR_HOME/backups) in the job", "no backup directory given")
	}
	if c.Site.DB.Name == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "install the site first (its tasks say how its install went)",
			"site %s has no database yet: it was never installed", c.Site.Domain).With(entities.Do("task.list", "", "site="+c.Site.Domain))
	}
	svc, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	dbEx, err := s.env.Connect(ctx, c.DB())
	if err != nil {
		return nil, err
	}
	name := c.Site.Domain + "-" + time.Now().UTC().Format("20060102-150405") + ".tar.gz"
	certSource, certFile := "", ""
	if c.Site.HTTPS.CertFile != "" {
		certFile = path.Base(c.Site.HTTPS.CertFile)
		certSource = c.Site.HTTPS.CertSource
		if certSource == "" {
			certSource = entities.CertACME
		}
	}
	s.env.Logf(provision.LevelInfo, "backing up %s: database %s from %s, files from %s, into %s", c.Site.Domain, c.Site.DB.Name, c.Site.DBServer.Machine.Name, c.Site.Web.Name, c.Backup.Dir)
	start := time.Now()
	info, err := backup.Write(ctx, c.Backup.Dir, name, backup.Source{
		Files: s.ex,
		Parts: s.layout(),
		Dump:  func(ctx context.Context, w io.Writer) error { return svc.Dump(ctx, dbEx, c.Site.DB.Name, w) },
		Manifest: backup.Manifest{Site: c.Site.Domain, URL: s.url(), Aliases: c.Site.Aliases, Platform: c.Site.Platform.Name, PlatformType: s.p.Type, CoreVersion: s.p.Version,
			WebServer: c.Site.Web.Name, DBServer: c.Site.DBServer.Machine.Name, DBType: c.Site.DBServer.Type, DBName: c.Site.DB.Name, CertSource: certSource, CertFile: certFile},
		Log:     s.env.Logf,
		Scratch: scratch,
	})
	if err != nil {
		var pe *provision.Error
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, &provision.Error{Code: provision.ErrCommand, Msg: "backup of " + c.Site.Domain + " failed; no archive was kept", Err: err,
			Hint: "read the log above; check the free space in " + c.Backup.Dir + " and that the site's files can be read"}
	}
	files, size := info.Manifest.Files()
	s.env.Logf(provision.LevelInfo, "backup of %s written: %s (%s; the database and %s of %s) in %s", c.Site.Domain, info.Path,
		backup.SizeString(info.Size), backup.Count(files, "file"), backup.SizeString(size), time.Since(start).Round(time.Millisecond))
	return info, nil
}

// backupChange is the "backup" change the front end records: of the site
// itself, or of site when it is not empty (a clone's source).
func backupChange(info *backup.Info, site string) *provision.BackupRecord {
	return &provision.BackupRecord{Site: site, Path: info.Path, Size: info.Size, SHA256: info.SHA256, Created: info.Created.Truncate(time.Second)}
}

func siteBackup(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	info, err := takeBackup(ctx, s)
	if err != nil {
		return nil, err
	}
	return &provision.Changes{Backup: backupChange(info, "")}, nil
}

// withBackupFirst makes a task take a backup of its site before it runs
// (site.delete), unless the option no_backup is 1 or the site never had
// a database. A failed backup stops the task before anything changed.
func withBackupFirst(f engine.TaskFunc) engine.TaskFunc {
	return func(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
		var bch *provision.BackupRecord
		switch {
		case c.Opt("no_backup", "") == "1" && c.Opt("no_backup_why", "") != "":
			// The rescue's undo of a task that never finished.
			env.Logf(provision.LevelInfo, "no backup taken first: %s", c.Opt("no_backup_why", ""))
		case c.Opt("no_backup", "") == "1":
			env.Logf(provision.LevelInfo, "no backup taken first, as asked")
		case c.Site.DB.Name == "":
			env.Logf(provision.LevelInfo, "no backup taken first: %s was never installed", c.Site.Domain)
		default:
			s, err := openSite(ctx, env, c)
			if err != nil {
				return nil, err
			}
			info, err := takeBackup(ctx, s)
			if err != nil {
				var pe *provision.Error
				if errors.As(err, &pe) {
					// A database server that cannot be reached would stop
					// the delete without a backup too: name the command
					// that goes on.
					del := entities.Do("site.delete", c.Site.Domain, "no-backup")
					if pe.Code == provision.ErrUnreachable {
						del = entities.Do("site.delete", c.Site.Domain, "no-backup", "force")
					}
					pe.Also("nothing was removed. To go on without a backup, delete the site without one", del)
				}
				return nil, err
			}
			env.LogFixf(provision.LevelInfo, []entities.Action{entities.Do("backup.list", "", "site="+c.Site.Domain)}, "the backup of %s taken before %s is %s; the site's backups", c.Site.Domain, c.Task, info.Path)
			bch = backupChange(info, "")
		}
		ch, err := f(ctx, env, c)
		if bch != nil {
			ch = ch.Merge(&provision.Changes{Backup: bch})
		}
		return ch, err
	}
}

// backupDelete removes a backup's archive from the master.
func backupDelete(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	p := filepath.Clean(c.Backup.Path)
	dir := filepath.Clean(c.Backup.Dir)
	if c.Backup.Dir == "" || !filepath.IsAbs(p) || filepath.Dir(p) != dir || !strings.HasSuffix(p, ".tar.gz") {
		return nil, provision.Errorf(provision.ErrInvalidContext, "only a .tar.gz archive directly in this master's backups directory is deleted: delete the backup on the master whose backups directory holds it",
			"refusing to delete %q: it is not a backup archive in this master's backups directory (%s)", c.Backup.Path, c.Backup.Dir)
	}
	err := os.Remove(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		env.Logf(provision.LevelWarning, "%s was already gone; forgetting the backup", p)
	case err != nil:
		return nil, provision.Errorf(provision.ErrCommand, "check the permissions of "+dir, "could not delete %s: %v", p, err)
	default:
		env.Logf(provision.LevelInfo, "deleted %s", p)
	}
	return &provision.Changes{BackupDeleted: true}, nil
}

func siteRestore(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	if c.Backup.Path == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give backup.path in the job (the site's backups are listed with their paths)", "no backup to restore given").
			With(entities.Do("backup.list", "", "site="+c.Site.Domain))
	}
	if c.Backup.SHA256 == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give backup.sha256 too (the site's backups are listed with it)",
			"no checksum of %s given: a restore checks the archive against it before it changes anything", c.Backup.Path).
			With(entities.Do("backup.list", "", "site="+c.Site.Domain, "format=json"))
	}
	src, dst, err := openInPlace(ctx, env, c)
	if err != nil {
		return nil, err
	}
	m := &move{env: env, kind: "restore", src: src, dst: dst, archive: c.Backup.Path, sum: c.Backup.SHA256}
	if c.Site.Status == entities.SiteQueued {
		env.Logf(provision.LevelInfo, "bringing the deleted site %s back from %s", c.Site.Domain, c.Backup.Path)
	} else {
		env.Logf(provision.LevelInfo, "restoring %s from %s", c.Site.Domain, c.Backup.Path)
	}
	return m.run(ctx)
}

// OptHealthGate (1) makes a migrate gate its commit on the site's health
// at its new place: the health check of a verify and its front page's
// title as it was before the move (healthGate). A platform migrate's
// moves have it.
const OptHealthGate = "health_gate"

func siteMigrate(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	ch, err := moveWithBackup(ctx, env, c, "migrate", func(m *move) error {
		src, dst := m.src, m.dst
		if dst.c.Site.DB.Password == "" {
			dst.c.Site.DB.Password = c.Site.DB.Password
		}
		if sameWeb(src, dst) && src.p.Root == dst.p.Root && src.c.Site.Domain == dst.c.Site.Domain && src.c.Site.DBServer.Machine.Name == dst.c.Site.DBServer.Machine.Name {
			return provision.Errorf(provision.ErrInvalidContext, "give another platform, database server or domain",
				"%s is on platform %s and database server %s already", c.Site.Domain, c.Site.Platform.Name, c.Site.DBServer.Machine.Name)
		}
		env.Logf(provision.LevelInfo, "migrating %s (platform %s, database server %s) to %s (platform %s, database server %s)",
			c.Site.Domain, c.Site.Platform.Name, c.Site.DBServer.Machine.Name, dst.c.Site.Domain, dst.c.Site.Platform.Name, dst.c.Site.DBServer.Machine.Name)
		if c.Opt(OptHealthGate, "") == "1" {
			before, err := gateBefore(ctx, src)
			if err != nil {
				return err
			}
			m.gate = &before
		}
		return nil
	})
	return ch, err
}

func siteClone(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	ch, err := moveWithBackup(ctx, env, c, "clone", func(m *move) error {
		src, dst := m.src, m.dst
		if dst.c.Site.DB.Password == "" {
			return provision.Errorf(provision.ErrInvalidContext, "the front end generates it; give target.db.password", "no database password for the clone given")
		}
		if dst.c.Site.Domain == src.c.Site.Domain {
			return provision.Errorf(provision.ErrInvalidContext, "give the clone another domain", "a clone of %s needs a domain of its own", c.Site.Domain)
		}
		env.Logf(provision.LevelInfo, "cloning %s (platform %s) as %s on platform %s, database server %s", c.Site.Domain, c.Site.Platform.Name, dst.c.Site.Domain, dst.c.Site.Platform.Name, dst.c.Site.DBServer.Machine.Name)
		return nil
	})
	return ch, err
}

// moveWithBackup opens the site where it is and where it goes, lets
// prepare check them, takes a fresh backup of the site and moves it from
// that backup (a migrate or a clone). The backup is reported whatever
// happens next (it is kept): of the site itself, or of the source of a
// clone.
func moveWithBackup(ctx context.Context, env *engine.Env, c *provision.Job, kind string, prepare func(m *move) error) (*provision.Changes, error) {
	src, dst, err := openMove(ctx, env, c)
	if err != nil {
		return nil, err
	}
	m := &move{env: env, kind: kind, src: src, dst: dst}
	if err := prepare(m); err != nil {
		return nil, err
	}
	info, err := takeBackup(ctx, src)
	if err != nil {
		return nil, err
	}
	of := ""
	if kind == "clone" {
		of = c.Site.Domain
	}
	// No sum: the archive was hashed as it was written, a moment ago; its
	// members are checked against the manifest as they are unpacked.
	m.archive, m.backupCh = info.Path, backupChange(info, of)
	ch, err := m.run(ctx)
	if m.lost {
		return nil, err // its backup is in the journal, which the new holder plays back and saves
	}
	return ch.Merge(&provision.Changes{Backup: m.backupCh}), err
}

// openMove opens the site where it is and where it goes.
func openMove(ctx context.Context, env *engine.Env, c *provision.Job) (*site, *site, error) {
	if !c.HasTarget() {
		return nil, nil, provision.Errorf(provision.ErrInvalidContext, "give target.platform.root and target.domain (and the target's servers) in the job",
			"no target given for %s", c.Task)
	}
	src, err := openSite(ctx, env, c)
	if err != nil {
		return nil, nil, err
	}
	dst, err := openSite(ctx, env, c.AtTarget())
	if err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}

func sameWeb(a, b *site) bool { return a.c.Site.Web.Name == b.c.Site.Web.Name }

// move puts a site from a backup into place: a restore (where the site
// is), a migrate (on another platform, database server or domain, then
// off the old place) or a clone (a new site beside the old one).
//
// Nothing of the site as it runs is touched until the backup is unpacked
// and checked: the database goes into a new database (with its own user),
// the files into their new place or, for the site's own place, into
// staging directories that are then swapped with the live ones. Any
// failure undoes every step, so the site keeps working where it was.
type move struct {
	env      *engine.Env
	kind     string // restore, migrate or clone
	src, dst *site
	archive  string
	sum      string // the archive's recorded SHA-256, if known
	u        undo
	inPlace  bool        // the files go where the site's files are
	revive   bool        // a restore of a deleted site, recorded again: nothing of it is live
	certs    bool        // the backup's certificate goes with the site (see backupCert)
	tag      string      // names staging and set-aside paths
	placed   []placement // where each part goes
	aside    []string    // where live parts were set aside
	manifest *backup.Manifest
	cert     *provision.CertRecord   // the backup's certificate, when it is put in service
	backupCh *provision.BackupRecord // the backup a migrate or clone took first
	gate     *pageProbe              // a migrate's health gate: the front page before the move (nil: no gate)
	j        *journal                // the undo steps on disk (journal.go)
	holds    []*engine.Hold          // the move's locks, its task's and its site's
	lost     bool                    // a hold was lost: another master took the move over
	svc      db.Service              // dst's database service
	same     *bool                   // sameRuntime, once told
	// A sync's: the site the archive is of, and what it leaves as it is
	// (the database, the files) or runs anyway (the update step).
	from          string
	noDB, noFiles bool
	updateDB      bool
}

// placement is where one part of a backup goes.
type placement struct {
	backup.Part        // the part at its live path
	staged      string // where it is unpacked
	// swap: staged beside the live path (the site's own place, and
	// certificate directories) and, but for certificates, swapped in.
	swap bool
}

// classify tells what kind of move this is.
func (m *move) classify() {
	src, dst := m.src, m.dst
	m.inPlace = sameWeb(src, dst) && src.p.Root == dst.p.Root && src.c.Site.Domain == dst.c.Site.Domain
	m.revive = m.kind == "restore" && src.c.Site.Status == entities.SiteQueued
	// The certificate goes along under the same domain, to the same place
	// (restore) or another web server; on the same web server its
	// directory is the site's already.
	m.certs = src.c.Site.Domain == dst.c.Site.Domain && (m.inPlace || !sameWeb(src, dst)) && m.kind != "sync"
}

func (m *move) run(ctx context.Context) (ch *provision.Changes, err error) {
	src, dst, env := m.src, m.dst, m.env
	m.u.env = env
	if src.p.Type != dst.p.Type {
		return nil, provision.Errorf(provision.ErrInvalidContext, "pick a platform of the same kind ("+src.p.Type+")",
			"%s is a %s site; platform %s is %s", src.c.Site.Domain, src.p.Type, dst.c.Site.Platform.Name, dst.p.Type)
	}
	if (src.c.Site.DBServer.Type == entities.TypePostgreSQL) != (dst.c.Site.DBServer.Type == entities.TypePostgreSQL) {
		return nil, provision.Errorf(provision.ErrInvalidContext, "pick a database server of the same kind",
			"the database of %s is on %s; a dump of it does not load into %s (server %s)", src.c.Site.Domain, src.c.Site.DBServer.Type, dst.c.Site.DBServer.Type, dst.c.Site.DBServer.Machine.Name)
	}
	m.classify()
	m.tag = fmt.Sprintf("aegir-%s-%d", m.kind, time.Now().UnixNano())
	if _, err := os.Stat(m.archive); err != nil {
		return nil, provision.Errorf(provision.ErrInvalidContext, "pick another backup of the site, and forget this one",
			"cannot read the backup %s: %v; %s was not changed", m.archive, err, src.c.Site.Domain).
			With(entities.Do("backup.list", "", "site="+src.c.Site.Domain), entities.Do("backup.delete", "ID"))
	}
	if m.sum != "" {
		if err := backup.CheckSum(m.archive, m.sum); err != nil {
			return nil, refused(src.c.Site.Domain, err)
		}
	}
	svc, err := dst.db(ctx)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	m.svc = svc
	m.j = newJournal(m.env, src.c, m.kind)
	if m.j != nil {
		m.j.Backup = m.backupCh
		// The task's own lock (a rescue waits for it), and the site's: a
		// retry (a new task) never runs while an earlier move of the site
		// still rolls back in a process that lost its task.
		for _, name := range []string{taskLockName(src.c.TaskID), siteLockName(src.c.Site.Domain)} {
			hold, where, err := takeLock(ctx, env, name, false)
			if err != nil {
				return nil, provision.Errorf(provision.ErrCommand, "wait for it to end (the site's tasks show it), then retry the task",
					"another run of a restore, migrate or clone of %s still holds %s: %v", src.c.Site.Domain, where, err).
					With(entities.Do("task.list", "", "site="+src.c.Site.Domain), entities.Do("task.retry", src.c.TaskRef()))
			}
			defer hold.Release()
			m.holds = append(m.holds, hold)
		}
	}
	// A hold lost (another master judged this one dead and plays the
	// move back) stops the command that runs, and the move with it.
	ctx, unwatch := m.watchHolds(ctx)
	defer unwatch()
	// Before the service closes: the rollback drops the new database.
	defer func() {
		if err != nil {
			if herr := m.held(ctx); herr != nil {
				ch, err = nil, herr // no rollback: the new holder's playback undoes it
				return
			}
			if m.u.rollback(ctx) {
				m.j.remove()
			} else if m.j != nil {
				env.Logf(provision.LevelWarning, "the journal %s stays: it lists every step of this %s (each undone but those above); remove it once they are done by hand", m.j.path, m.kind)
			}
			var pe *provision.Error
			if m.revive && errors.As(err, &pe) {
				pe.Also("everything this restore of the deleted "+src.c.Site.Domain+" made was removed, and the site stays queued: fix the cause, then retry the task (or give up and delete the site)",
					entities.Do("task.retry", src.c.TaskRef()), entities.Do("site.delete", src.c.Site.Domain))
			}
		}
	}()
	if err := m.createDB(ctx, svc); err != nil {
		return nil, err
	}
	if err := m.prepareRuntime(ctx); err != nil {
		return nil, err
	}
	if err := m.placeParts(ctx); err != nil {
		return nil, err
	}
	if err := m.unpack(ctx, svc); err != nil {
		return nil, err
	}
	if err := m.backupCert(ctx); err != nil {
		return nil, err
	}
	if err := m.swap(ctx); err != nil {
		return nil, err
	}
	if err := m.settings(ctx); err != nil {
		return nil, err
	}
	if err := dst.handFiles(ctx, false); err != nil {
		return nil, err
	}
	// The platform's update step (WordPress's upgrade, Drupal's database
	// updates): a restore on the core version it was made on needs none; a
	// migrate or a clone may (new code).
	if m.kind != "restore" && m.kind != "sync" || m.manifest.CoreVersion != dst.p.Version || m.updateDB {
		if err := m.held(ctx); err != nil {
			return nil, err
		}
		if err := m.updateDatabase(ctx, svc); err != nil {
			return nil, err
		}
	}
	if err := m.held(ctx); err != nil {
		return nil, err
	}
	if !m.noDB && m.manifest.URL != "" && m.manifest.URL != dst.url() {
		if err := m.readdress(ctx, svc); err != nil {
			return nil, err
		}
	}
	if err := m.vhost(ctx); err != nil {
		return nil, err
	}
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	var health *entities.SiteHealth
	if m.gate != nil {
		if health, err = m.healthGate(ctx, *m.gate); err != nil {
			return nil, err
		}
	}
	// The site works in its new state: from here on nothing is undone.
	sc := &provision.SiteChanges{DB: dbRecord(dst.c.Site), Cert: m.cert, Health: health}
	ch = &provision.Changes{Site: sc}
	env.KeepSecret("site_db_password", dst.c.Site.DB.Password) // the new user's, for the front end
	if m.revive {
		sc.Status = entities.SiteInstalled
	}
	switch m.kind {
	case "migrate":
		sc.Platform, sc.DBServer, sc.Domain = dst.c.Site.Platform.Name, dst.c.Site.DBServer.Machine.Name, dst.c.Site.Domain
	case "clone":
		sc.Status = entities.SiteInstalled
	}
	m.u.steps = nil
	if m.j != nil {
		done := *ch
		done.Backup = m.backupCh
		m.j.Done = &moveDone{Changes: &done}
		if err := m.j.save(); errors.Is(err, engine.ErrLockLost) {
			return nil, m.takenOver()
		} else if err != nil {
			// A journal not marked done would let a rescue undo this
			// finished move: it goes, or the clean-up waits.
			if rerr := m.j.drop(); rerr != nil {
				env.Logf(provision.LevelWarning, "cannot mark the journal %s done (%v) nor remove it (%v): the clean-up is skipped; remove by hand the journal, %s on %s and the old database %s on %s",
					m.j.path, err, rerr, strings.Join(m.aside, ", "), dst.ex.Host(), src.c.Site.DB.Name, src.c.Site.DBServer.Machine.Name)
				recordPackages(ctx, dst, ch.Site)
				return ch, nil
			}
			env.Logf(provision.LevelWarning, "cannot mark the journal %s done (%v); removed it", m.j.path, err)
		}
	}
	if err := m.held(ctx); err != nil {
		return nil, err // the new holder finishes the clean-up
	}
	m.cleanup(ctx)
	m.j.remove()
	recordPackages(ctx, dst, ch.Site)
	env.Logf(provision.LevelInfo, "%s of %s done: %s on platform %s, database %s on %s", m.kind, src.c.Site.Domain, dst.url(), dst.c.Site.Platform.Name, dst.c.Site.DB.Name, dst.c.Site.DBServer.Machine.Name)
	return ch, nil
}

// refused is the error of a backup that fails its checks.
func refused(domain string, err error) error {
	var ve *backup.VerifyError
	if !errors.As(err, &ve) {
		return err
	}
	return &provision.Error{Code: provision.ErrInvalidContext, Msg: "refusing the backup; " + domain + " was not changed", Err: err,
		Hint: "the archive is damaged or was changed since it was written; pick another of the site's backups",
		Fix:  []entities.Action{entities.Do("backup.list", "", "site="+domain)}}
}

// createDB makes the site's new database and user on the target server.
func (m *move) createDB(ctx context.Context, svc db.Service) error {
	c := m.dst.c
	if m.noDB {
		m.env.Logf(provision.LevelInfo, "the database %s of %s stays as it is", c.Site.DB.Name, c.Site.Domain)
		return nil
	}
	if c.Site.DB.Password == "" {
		return provision.Errorf(provision.ErrInvalidContext, "give the site's database password (site.db.password) in the job", "no database password for %s given", c.Site.Domain)
	}
	name, err := db.UniqueName(ctx, svc, c.Site.Domain)
	if err != nil {
		return err
	}
	c.Site.DB.Name, c.Site.DB.User = name, name
	m.env.Logf(provision.LevelInfo, "creating database %s and user %s on %s for the %s, for connections from %s", name, name, c.Site.DBServer.Machine.Name, m.kind, c.Site.DB.GrantHost)
	// The drop is recorded once the database is made: a name another
	// task took meanwhile (the create fails) is not this move's to drop.
	if err := svc.CreateDatabase(ctx, name, name, c.Site.DB.Password, c.Site.DB.GrantHost); err != nil {
		return err
	}
	return m.push(moveOp{Op: opDropDB, DB: name})
}

// placeParts decides where each part is unpacked: staging paths beside
// the live ones for the site's own place and for its certificates, else
// the new place, which must be free.
func (m *move) placeParts(ctx context.Context) error {
	dst := m.dst
	if m.noFiles {
		m.env.Logf(provision.LevelInfo, "the files of %s stay as they are", dst.c.Site.Domain)
		return nil
	}
	parts := siteLayout(dst.p, dst.c.Site.Domain)
	if m.certs {
		parts = dst.layout()
	}
	for _, p := range parts {
		pl := placement{Part: p, staged: p.Path, swap: m.inPlace || p.Name == sslPart}
		if pl.swap {
			pl.staged = m.beside(p.Path, "new")
		} else if _, err := dst.ex.Lstat(ctx, p.Path); err == nil {
			return provision.Errorf(provision.ErrInvalidContext, "remove it if it is a leftover, or pick another platform or domain",
				"%s already exists on %s: another site's files are in the way", p.Path, dst.ex.Host())
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s on %s: %w", p.Path, dst.ex.Host(), err)
		}
		mode := fs.FileMode(0o755)
		if p.Name == sslPart {
			mode = 0o700 // as installCert makes it
		}
		if err := dst.ex.MkdirAll(ctx, path.Dir(p.Path), mode); err != nil {
			return fmt.Errorf("create %s on %s: %w", path.Dir(p.Path), dst.ex.Host(), err)
		}
		if err := m.push(moveOp{Op: opRemove, Path: pl.staged}); err != nil {
			return err
		}
		m.placed = append(m.placed, pl)
	}
	return nil
}

// beside names a hidden path next to p for this move: the web server and
// the platforms never serve or load a name that starts with a dot.
func (m *move) beside(p, what string) string {
	return path.Join(path.Dir(p), "."+path.Base(p)+"."+m.tag+"-"+what)
}

// unpack loads the dump into the new database and unpacks the files at
// the same time, from two readers of the archive, checking every member
// against the manifest.
func (m *move) unpack(ctx context.Context, svc db.Service) error {
	dst := m.dst
	parts := make([]backup.Part, len(m.placed))
	for i, pl := range m.placed {
		parts[i] = pl.Part
		parts[i].Path = pl.staged
	}
	dbEx, err := m.env.Connect(ctx, dst.c.DB())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first failure stops the other reader; it is the one reported.
	var once sync.Once
	var first error
	fail := func(err error) {
		if err != nil {
			once.Do(func() { first = err; cancel() })
		}
	}
	loaded := make(chan backup.Member, 1)
	start := time.Now()
	go func() {
		if m.noDB {
			loaded <- backup.Member{}
			return
		}
		mem, err := backup.ReadMember(ctx, m.archive, backup.DatabaseMember, func(r io.Reader) error {
			return svc.Load(ctx, dbEx, dst.c.Site.DB.Name, r)
		})
		fail(err)
		loaded <- mem
	}()
	webWritable, settings := dst.p.Driver.BackupMembers()
	x := backup.Target{Files: dst.ex, Parts: parts, Owner: memberOwner(dst.filesOwner(), webWritable), Skip: func(name string) bool {
		// A clone or a sync keeps its own settings; a site under another
		// domain or on the same web server does not take the backup's
		// certificate; a sync of the database alone takes no files.
		return (m.kind == "clone" || m.kind == "sync") && name == settings || !m.certs && underPart(name, sslPart) || m.noFiles
	}}
	man, err := backup.Extract(ctx, m.archive, x)
	fail(err)
	mem := <-loaded
	if first != nil {
		return refused(m.src.c.Site.Domain, first)
	}
	m.giveToWebServer(ctx, parts)
	if want, ok := man.Member(backup.DatabaseMember); !m.noDB && (!ok || want.SHA256 != mem.SHA256) {
		return refused(m.src.c.Site.Domain, &backup.VerifyError{Path: m.archive, Problems: []string{"database.sql does not match the manifest"}})
	}
	if of := m.src.c.Site.Domain; man.Site != of && man.Site != m.from {
		m.env.Logf(provision.LevelWarning, "the backup was made of %s, not %s", man.Site, of)
	}
	m.manifest = man
	files, size := man.Files()
	m.env.Logf(provision.LevelInfo, "backup of %s from %s checked and unpacked: the database into %s, %s (%s) on %s, in %s",
		man.Site, man.Created.Format(time.RFC3339), dst.c.Site.DB.Name, backup.Count(files, "file"), backup.SizeString(size), dst.ex.Host(), time.Since(start).Round(time.Millisecond))
	return nil
}

// swap puts the parts unpacked beside the live ones in their place; the
// live ones are set aside until the move is done (and put back if it
// fails). The certificate directory is not swapped: the backup's
// certificate joins the live ones (placeCert).
func (m *move) swap(ctx context.Context) error {
	ex := m.dst.ex
	for _, pl := range m.placed {
		if !pl.swap || pl.Name == sslPart {
			continue
		}
		live, staged, aside := pl.Path, pl.staged, m.beside(pl.Path, "old")
		if _, err := ex.Lstat(ctx, live); err == nil {
			if err := m.push(moveOp{Op: opPutBack, Path: live, Aside: aside}); err != nil {
				return err
			}
			if err := ex.Rename(ctx, live, aside); err != nil {
				return fmt.Errorf("set %s aside on %s: %w", live, ex.Host(), err)
			}
			m.aside = append(m.aside, aside)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		} else if err := m.push(moveOp{Op: opRemove, Path: live}); err != nil {
			return err
		}
		if _, err := ex.Lstat(ctx, staged); errors.Is(err, fs.ErrNotExist) {
			continue // the backup had none
		}
		if err := ex.Rename(ctx, staged, live); err != nil {
			return fmt.Errorf("move %s into place on %s: %w", staged, ex.Host(), err)
		}
	}
	return nil
}

// settings writes the site's settings at its new place, for its new
// database. A WordPress site that keeps its aliases on the same platform
// under a new domain takes them over from its old name first.
func (m *move) settings(ctx context.Context) error {
	src, dst := m.src, m.dst
	if !m.inPlace && sameWeb(src, dst) && src.p.Root == dst.p.Root && dst.p.Driver.PlatformAliases() && len(dst.c.Site.Aliases) > 0 && m.kind == "migrate" {
		bare := *src.c
		bare.Site.Aliases = nil
		s := *src
		s.c = &bare
		if err := m.push(moveOp{Op: opSrcSettings}); err != nil {
			return err
		}
		if _, err := s.writeSettings(ctx); err != nil {
			return err
		}
	}
	if !m.inPlace || m.revive {
		if err := m.push(moveOp{Op: opDstSite}); err != nil {
			return err
		}
	} else if m.noFiles {
		// No settings were set aside to put back: they are written again
		// from the record, for the database the site had.
		if err := m.push(moveOp{Op: opSrcSettings}); err != nil {
			return err
		}
	}
	changed, err := dst.writeSettings(ctx)
	if err != nil {
		return err
	}
	if !changed && m.inPlace {
		// The settings swapped in are the ones written: php-fpm may
		// still run those the site had.
		dst.refreshPHP(ctx)
	}
	m.env.Logf(provision.LevelInfo, "settings of %s written for database %s on %s", dst.c.Site.Domain, dst.c.Site.DB.Name, dst.c.Site.DBServer.Machine.Name)
	return nil
}

// readdress rewrites the address a site had when it was backed up (a
// migrate or clone to a new domain, a restore of a backup from before
// one) where its application keeps it in its database (Driver.Readdress:
// WordPress's posts and options).
func (m *move) readdress(ctx context.Context, svc db.Service) error {
	return m.dst.p.Driver.Readdress(ctx, svc, m.dst.appSite(), app.Address{URL: m.manifest.URL, Domain: m.manifest.Site})
}

// vhost writes the site's virtual host at its new place.
func (m *move) vhost(ctx context.Context) error {
	src, dst := m.src, m.dst
	op := moveOp{Op: opDstVhost}
	if sameWeb(src, dst) && src.c.Site.Domain == dst.c.Site.Domain && !m.revive {
		op.Op = opSrcVhost
	}
	if err := m.push(op); err != nil {
		return err
	}
	_, err := dst.ws.WriteSite(ctx, dst.vhost(dst.c.Site.Status == entities.SiteDisabled))
	return err
}

// updateDatabase runs the platform's update step on the moved site,
// unless the driver tells from the database that it has nothing to do
// (app.DBUpToDater: WordPress's db_version is the platform's) and it was
// not asked for (--updatedb): one run of the application less per move.
func (m *move) updateDatabase(ctx context.Context, svc db.Service) error {
	if u, ok := m.dst.p.Driver.(app.DBUpToDater); ok && !m.updateDB && !m.noDB {
		if ok, versions := u.DBUpToDate(ctx, m.dst.ex, svc, m.dst.p, m.dst.appSite()); ok {
			m.dst.env.Logf(provision.LevelInfo, "the database of %s is up to date for platform %s (%s): no update step", m.dst.c.Site.Domain, m.dst.c.Site.Platform.Name, versions)
			return nil
		}
	}
	return m.dst.updateDatabase(ctx)
}

// check makes sure the site works at its new place (Driver.Check):
// WordPress loads with its database; Drupal's settings parse (and drush
// bootstraps the site, when the platform has it).
func (m *move) check(ctx context.Context) error {
	if pc, ok := m.dst.p.Driver.(app.PackageChecker); ok {
		// The packages it read are those recordPackages records once
		// the move is done: nothing changes the site's code or database
		// in between (the health gate only reads its pages).
		enabled, err := pc.CheckPackages(ctx, m.dst.ex, m.dst.p, m.dst.appSite())
		m.dst.checked = enabled
		return err
	}
	return m.dst.p.Driver.Check(ctx, m.dst.ex, m.dst.p, m.dst.appSite())
}

// cleanup removes what the site left behind once the move is done:
// for a restore, its files as they were and its old database; for a
// migrate, the site at its old place. A failure here is a warning: the
// site works, and the log says what is left to remove by hand.
func (m *move) cleanup(ctx context.Context) {
	src, dst, env := m.src, m.dst, m.env
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	warn := func(what string, err error) {
		if err != nil {
			env.Logf(provision.LevelWarning, "could not %s: %v; remove it by hand", what, err)
		}
	}
	if m.kind == "clone" {
		return
	}
	for _, a := range m.aside {
		warn("remove "+a+" on "+dst.ex.Host(), dst.ex.RemoveAll(ctx, a))
	}
	if m.kind == "migrate" {
		if !(sameWeb(src, dst) && src.c.Site.Domain == dst.c.Site.Domain) {
			_, err := src.ws.RemoveSite(ctx, src.c.Site.Domain)
			warn("remove the virtual host of "+src.c.Site.Domain+" on "+src.c.Site.Web.Name, err)
			_, err = removeCert(ctx, src)
			warn("remove the certificate of "+src.c.Site.Domain+" from "+src.certDir()+" on "+src.c.Site.Web.Name, err)
		}
		if !m.inPlace {
			err := app.RemoveSite(ctx, src.ex, src.p, src.c.Site.Domain)
			warn("remove the files of "+src.c.Site.Domain+" from "+src.p.Root+" on "+src.c.Site.Web.Name, err)
			if err == nil {
				env.Logf(provision.LevelInfo, "removed the settings and files of %s from %s on %s", src.c.Site.Domain, src.p.Root, src.c.Site.Web.Name)
			}
		}
	}
	if m.kind == "migrate" {
		m.cleanupRuntime(ctx, warn)
	}
	if src.c.Site.DB.Name == "" || (src.c.Site.DBServer.Machine.Name == dst.c.Site.DBServer.Machine.Name && src.c.Site.DB.Name == dst.c.Site.DB.Name) {
		return
	}
	// php-fpm runs the new settings since they were written
	// (writeSettings): no request meets the old database any more.
	svc, err := src.db(ctx)
	if err == nil {
		defer svc.Close()
		err = svc.DropDatabase(ctx, src.c.Site.DB.Name, src.c.Site.DB.User, src.c.Site.DB.GrantHost)
	}
	warn(fmt.Sprintf("drop the old database %s and user %s on %s", src.c.Site.DB.Name, src.c.Site.DB.User, src.c.Site.DBServer.Machine.Name), err)
	if err == nil {
		env.Logf(provision.LevelInfo, "dropped the old database %s and user %s on %s", src.c.Site.DB.Name, src.c.Site.DB.User, src.c.Site.DBServer.Machine.Name)
	}
}
