package hosting

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/web"
)

// Plan is what a task would change, worked out from the state and the job
// the task would be given (BuildContext) without running it: nothing is
// written, no server is reached (docs/platforms.md, "Plans"). The front
// end prints it for --dry-run; a platform migrate's plan is one per site.
type Plan struct {
	Task    string       `json:"task" yaml:"task"`
	Target  string       `json:"target" yaml:"target"`
	Changes []PlanChange `json:"changes" yaml:"changes"`
}

// PlanChange is one thing a task would change.
type PlanChange struct {
	// Kind: record, backup, database, db_user, files, settings, vhost,
	// certificate, php_fpm_pool, unix_user.
	Kind string `json:"kind" yaml:"kind"`
	// Action: create, remove, replace (the new one takes the old one's
	// place, which goes once it works), rewrite (written again from the
	// record), update (a record's field), keep.
	Action string `json:"action" yaml:"action"`
	What   string `json:"what" yaml:"what"`                         // a path, a database, a field
	Server string `json:"server,omitempty" yaml:"server,omitempty"` // where
	Detail string `json:"detail,omitempty" yaml:"detail,omitempty"`
}

// TableColumns: see entities.Client.TableColumns.
func (PlanChange) TableColumns() []string {
	return []string{"kind", "action", "what", "server", "detail"}
}

// Plan actions.
const (
	PlanCreate  = "create"
	PlanRemove  = "remove"
	PlanReplace = "replace"
	PlanRewrite = "rewrite"
	PlanUpdate  = "update"
	PlanKeep    = "keep"
)

func (p *Plan) add(kind, action, what, server, detail string) {
	p.Changes = append(p.Changes, PlanChange{Kind: kind, Action: action, What: what, Server: server, Detail: detail})
}

// Plan works out what task t (a task of a site that is not recorded yet:
// its type, target and options, as the command would queue it) would
// change: site.migrate, site.restore, site.delete and site.sync.
func (r *Runner) Plan(ctx context.Context, t *entities.Task) (*Plan, error) {
	c, err := r.BuildContext(ctx, t)
	if err != nil {
		return nil, err
	}
	pl := &Plan{Task: t.Type, Target: t.Target, Changes: []PlanChange{}}
	switch t.Type {
	case entities.TaskSiteMigrate:
		err = r.planMigrate(ctx, pl, c)
	case entities.TaskSiteRestore:
		err = r.planRestore(ctx, pl, c)
	case entities.TaskSiteDelete:
		err = r.planDelete(ctx, pl, c)
	case entities.TaskSiteSync:
		err = r.planSync(ctx, pl, c)
	default:
		return nil, fmt.Errorf("no plan for %s tasks", t.Type)
	}
	return pl, err
}

// siteParts are the files of the site s of job c as a backup holds them
// (the driver's layout on its platform: WordPress's uploads and settings,
// Drupal's sites/DOMAIN), with their kind in a plan.
func (r *Runner) siteParts(ctx context.Context, s *provision.SiteSpec) ([]PlanChange, error) {
	p, err := r.Store.GetPlatform(ctx, s.Platform.Name)
	if err != nil {
		return nil, err
	}
	typ := p.Type
	if typ == "" {
		return nil, &provision.Error{Code: provision.ErrInvalidContext, Msg: fmt.Sprintf("platform %s has no type yet", p.Name), Hint: "verify the platform first",
			Fix: []entities.Action{entities.Do("platform.verify", p.Name)}}
	}
	d, err := app.For(typ)
	if err != nil {
		return nil, err
	}
	docroot := p.Docroot
	if docroot == "" {
		docroot = p.Root
	}
	ap := app.Platform{Type: typ, Root: p.Root, Docroot: docroot, Driver: d}
	_, settings := d.BackupMembers()
	var out []PlanChange
	for _, part := range d.BackupParts(ap, s.Domain) {
		kind := "files"
		if part.Name == settings || strings.HasSuffix(part.Path, ".php") {
			kind = "settings"
		}
		out = append(out, PlanChange{Kind: kind, What: part.Path, Server: s.Web.Name})
	}
	return out, nil
}

// vhostFile is the site's virtual host file on its web server.
func vhostFile(c *provision.Job) string { return web.SiteFileIn(c.ConfigDir(), c.Site.Domain) }

// newDBName is the database (and user) a move would make for the site at
// s: the first name derived from its domain that no site of the state
// takes on its database server (the back end takes the first free one on
// the server itself, the same unless something else took it there).
func (r *Runner) newDBName(ctx context.Context, s *provision.SiteSpec) (string, error) {
	srv, err := r.Store.GetServer(ctx, s.DBServer.Machine.Name)
	if err != nil {
		return "", err
	}
	var qerr error
	name := db.NameFor(s.Domain, func(n string) bool {
		taken, e := r.Store.DBNameTaken(ctx, srv.ID, n)
		if e != nil {
			qerr = e
		}
		return taken || e != nil || n == s.DB.Name
	})
	return name, qerr
}

func (r *Runner) planBackup(pl *Plan, c *provision.Job, why string) {
	pl.add("backup", PlanCreate, path.Join(c.Backup.Dir, c.Site.Domain+"-TIME.tar.gz"), "", why)
}

// planNewDB: a new database and user for the site at to (from a dump),
// and the old ones dropped once the site works there.
func (r *Runner) planNewDB(ctx context.Context, pl *Plan, from, to *provision.SiteSpec, dump string) error {
	name, err := r.newDBName(ctx, to)
	if err != nil {
		return err
	}
	where := to.DBServer.Machine.Name
	pl.add("database", PlanCreate, name, where, "loaded from "+dump)
	pl.add("db_user", PlanCreate, name, where, "for connections from "+to.DB.GrantHost+", a new password")
	if from.DB.Name != "" {
		pl.add("database", PlanRemove, from.DB.Name, from.DBServer.Machine.Name, "once the site works on "+name)
		pl.add("db_user", PlanRemove, from.DB.User, from.DBServer.Machine.Name, "")
	}
	pl.add("record", PlanUpdate, "db_name", "", from.DB.Name+" → "+name)
	return nil
}

func (r *Runner) planMigrate(ctx context.Context, pl *Plan, c *provision.Job) error {
	if !c.HasTarget() {
		return fmt.Errorf("the migrate of %s has no target", c.Site.Domain)
	}
	src, dst := &c.Site, c.Target
	at := c.AtTarget()
	r.planBackup(pl, c, "taken first, kept")
	if err := r.planNewDB(ctx, pl, src, dst, "the backup"); err != nil {
		return err
	}
	from, err := r.siteParts(ctx, src)
	if err != nil {
		return err
	}
	to, err := r.siteParts(ctx, dst)
	if err != nil {
		return err
	}
	inPlace := src.Web.Name == dst.Web.Name && src.Platform.Root == dst.Platform.Root && src.Domain == dst.Domain
	for i, p := range to {
		if inPlace {
			p.Action, p.Detail = PlanReplace, "from the backup"
			pl.Changes = append(pl.Changes, p)
			continue
		}
		p.Action, p.Detail = PlanCreate, "from the backup"
		pl.Changes = append(pl.Changes, p)
		if i < len(from) {
			o := from[i]
			o.Action, o.Detail = PlanRemove, "once the site works at "+p.What
			pl.Changes = append(pl.Changes, o)
		}
	}
	sameVhost := src.Web.Name == dst.Web.Name && src.Domain == dst.Domain
	if sameVhost {
		pl.add("vhost", PlanRewrite, vhostFile(c), src.Web.Name, "for platform "+dst.Platform.Name)
	} else {
		pl.add("vhost", PlanCreate, vhostFile(at), dst.Web.Name, "")
		pl.add("vhost", PlanRemove, vhostFile(c), src.Web.Name, "once the site works on "+dst.Web.Name)
	}
	if src.HTTPS.CertFile != "" {
		switch {
		case src.Domain != dst.Domain:
			pl.add("certificate", PlanKeep, c.CertDir(), src.Web.Name, "of "+src.Domain+"; "+dst.Domain+" needs its own (the cert queue requests it with HTTPS "+dst.HTTPS.Mode+")")
		case src.Web.Name != dst.Web.Name:
			pl.add("certificate", PlanCreate, at.CertDir(), dst.Web.Name, "from the backup")
			pl.add("certificate", PlanRemove, c.CertDir(), src.Web.Name, "")
		}
	}
	if src.Isolation == entities.IsolationSite {
		if sameVhost {
			pl.add("php_fpm_pool", PlanRewrite, src.Domain, src.Web.Name, "the site's own pool, for platform "+dst.Platform.Name)
		} else {
			pl.add("unix_user", PlanCreate, entities.SiteUnixUser(dst.Domain), dst.Web.Name, "owns the site's files there")
			pl.add("php_fpm_pool", PlanCreate, dst.Domain, dst.Web.Name, "the site's own pool")
			pl.add("php_fpm_pool", PlanRemove, src.Domain, src.Web.Name, "once the site works on "+dst.Web.Name)
			pl.add("unix_user", PlanRemove, entities.SiteUnixUser(src.Domain), src.Web.Name, "")
		}
	}
	for _, f := range []struct{ field, from, to string }{{"platform", src.Platform.Name, dst.Platform.Name},
		{"db_server", src.DBServer.Machine.Name, dst.DBServer.Machine.Name}, {"domain", src.Domain, dst.Domain}} {
		if f.from != f.to {
			pl.add("record", PlanUpdate, f.field, "", f.from+" → "+f.to)
		}
	}
	return nil
}

func (r *Runner) planRestore(ctx context.Context, pl *Plan, c *provision.Job) error {
	if err := r.planNewDB(ctx, pl, &c.Site, &c.Site, c.Backup.Path); err != nil {
		return err
	}
	parts, err := r.siteParts(ctx, &c.Site)
	if err != nil {
		return err
	}
	for _, p := range parts {
		p.Action, p.Detail = PlanReplace, "from "+c.Backup.Path
		pl.Changes = append(pl.Changes, p)
	}
	pl.add("vhost", PlanRewrite, vhostFile(c), c.Site.Web.Name, "")
	pl.add("certificate", PlanKeep, c.CertDir(), c.Site.Web.Name, "the backup's certificate, if it holds one, joins those there")
	return nil
}

func (r *Runner) planDelete(ctx context.Context, pl *Plan, c *provision.Job) error {
	if c.Opt("no_backup", "") != "1" && c.Site.DB.Name != "" {
		r.planBackup(pl, c, "taken first, kept")
	}
	pl.add("vhost", PlanRemove, vhostFile(c), c.Site.Web.Name, "")
	parts, err := r.siteParts(ctx, &c.Site)
	if err != nil {
		return err
	}
	for _, p := range parts {
		p.Action = PlanRemove
		pl.Changes = append(pl.Changes, p)
	}
	if c.Site.DB.Name != "" {
		pl.add("database", PlanRemove, c.Site.DB.Name, c.Site.DBServer.Machine.Name, "")
		pl.add("db_user", PlanRemove, c.Site.DB.User, c.Site.DBServer.Machine.Name, "")
	}
	if c.Site.HTTPS.CertFile != "" {
		pl.add("certificate", PlanRemove, c.CertDir(), c.Site.Web.Name, "")
	}
	if c.Site.Isolation == entities.IsolationSite {
		pl.add("php_fpm_pool", PlanRemove, c.Site.Domain, c.Site.Web.Name, "the site's own pool")
		pl.add("unix_user", PlanRemove, entities.SiteUnixUser(c.Site.Domain), c.Site.Web.Name, "")
	}
	pl.add("record", PlanUpdate, "status", "", c.Site.Status+" → "+entities.SiteDeleted)
	return nil
}

func (r *Runner) planSync(ctx context.Context, pl *Plan, c *provision.Job) error {
	if !c.HasTarget() {
		return fmt.Errorf("the sync onto %s has no source", c.Site.Domain)
	}
	source, at := &c.Site, c.AtTarget()
	dst := &at.Site
	r.planBackup(pl, at, "of "+dst.Domain+", taken first, kept: a restore of "+dst.Domain+" brings it back")
	pl.add("backup", PlanCreate, path.Join(c.Backup.Dir, source.Domain+"-TIME.tar.gz"), "", "a snapshot of "+source.Domain+", removed after the sync")
	if c.Opt("db", "1") != "0" {
		if err := r.planNewDB(ctx, pl, dst, dst, "the snapshot of "+source.Domain); err != nil {
			return err
		}
	} else {
		pl.add("database", PlanKeep, dst.DB.Name, dst.DBServer.Machine.Name, "")
	}
	parts, err := r.siteParts(ctx, dst)
	if err != nil {
		return err
	}
	for _, p := range parts {
		switch {
		case p.Kind == "settings":
			p.Action, p.Detail = PlanRewrite, "from "+dst.Domain+"'s record"
		case c.Opt("files", "1") == "0":
			p.Action = PlanKeep
		default:
			p.Action, p.Detail = PlanReplace, "with those of "+source.Domain
		}
		pl.Changes = append(pl.Changes, p)
	}
	pl.add("vhost", PlanRewrite, vhostFile(at), dst.Web.Name, "")
	if dst.HTTPS.CertFile != "" {
		pl.add("certificate", PlanKeep, at.CertDir(), dst.Web.Name, "")
	}
	return nil
}

// MigratePlan is what a platform migrate would do (--dry-run): its
// settings, and per wave the plan of each site's move (the site.migrate
// child it would run, with the health gate before the old copy goes).
type MigratePlan struct {
	Task      string `json:"task" yaml:"task"`     // platform.migrate
	Target    string `json:"target" yaml:"target"` // the old platform
	To        string `json:"to" yaml:"to"`
	Sites     int    `json:"sites" yaml:"sites"`
	Canary    int    `json:"canary" yaml:"canary"`
	Wave      int    `json:"wave" yaml:"wave"`
	PerServer int    `json:"per_server" yaml:"per_server"`
	// Allowed is how many sites may fail before no new site starts
	// (a canary's failure stops it whatever it is).
	Allowed int        `json:"max_failures" yaml:"max_failures"`
	Waves   []PlanWave `json:"waves" yaml:"waves"`
}

// PlanWave is one wave of a platform migrate's plan.
type PlanWave struct {
	Name  string  `json:"name" yaml:"name"` // canary, wave 1, ...
	Sites []*Plan `json:"sites" yaml:"sites"`
}

// PlanPlatformMigrate works out what a platform migrate of set's sites from
// platform from would change: the waves it would run, and for each site
// the plan of its move (Plan of the site.migrate child, with the child's
// options). Nothing is recorded.
func (r *Runner) PlanPlatformMigrate(ctx context.Context, from *entities.Platform, set MigrateSettings) (*MigratePlan, error) {
	to, err := r.Store.GetPlatform(ctx, set.To)
	if err != nil {
		return nil, err
	}
	allowed, err := AllowedFailures(set.MaxFailures, len(set.Sites))
	if err != nil {
		return nil, err
	}
	mp := &MigratePlan{Task: entities.TaskPlatformMigrate, Target: from.Name, To: to.Name, Sites: len(set.Sites),
		Canary: min(set.Canary, len(set.Sites)), Wave: set.Wave, PerServer: set.PerServer, Allowed: allowed, Waves: []PlanWave{}}
	for i, sites := range Waves(set.Sites, set.Canary, set.Wave) {
		pw := PlanWave{Name: WaveName(i, set.Canary > 0)}
		for _, d := range sites {
			v, err := r.Store.GetSite(ctx, d)
			if err != nil {
				return nil, err
			}
			pl, err := r.Plan(ctx, &entities.Task{Type: entities.TaskSiteMigrate, TargetKind: entities.TargetSite, TargetID: v.ID, Target: v.Domain, Options: childOptions(to, v)})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", d, err)
			}
			pw.Sites = append(pw.Sites, pl)
		}
		mp.Waves = append(mp.Waves, pw)
	}
	return mp, nil
}

// MigratePlanRow is one change of one site's move in a platform migrate's
// plan, as its table prints it.
type MigratePlanRow struct {
	Wave   string `json:"wave" yaml:"wave"`
	Site   string `json:"site" yaml:"site"`
	Kind   string `json:"kind" yaml:"kind"`
	Action string `json:"action" yaml:"action"`
	What   string `json:"what" yaml:"what"`
	Server string `json:"server,omitempty" yaml:"server,omitempty"`
	Detail string `json:"detail,omitempty" yaml:"detail,omitempty"`
}

// TableColumns: see entities.Client.TableColumns.
func (MigratePlanRow) TableColumns() []string {
	return []string{"wave", "site", "kind", "action", "what", "server", "detail"}
}

// Rows are the plan's changes, one a row, by wave and site.
func (mp *MigratePlan) Rows() []MigratePlanRow {
	out := []MigratePlanRow{}
	for _, w := range mp.Waves {
		for _, pl := range w.Sites {
			for _, c := range pl.Changes {
				out = append(out, MigratePlanRow{Wave: w.Name, Site: pl.Target, Kind: c.Kind, Action: c.Action, What: c.What, Server: c.Server, Detail: c.Detail})
			}
		}
	}
	return out
}

// PlanEdit works out what site edit would change: the record's fields
// from old to edited, and what the verify that follows writes again for
// them.
func (r *Runner) PlanEdit(ctx context.Context, old, edited *entities.Site) (*Plan, error) {
	pl := &Plan{Task: "site.edit", Target: old.Domain, Changes: []PlanChange{}}
	t := &entities.Task{Type: entities.TaskSiteVerify, TargetKind: entities.TargetSite, TargetID: old.ID, Target: old.Domain}
	c, err := r.BuildContext(ctx, t)
	if err != nil {
		return nil, err
	}
	web := c.Site.Web.Name
	for _, f := range []struct{ field, from, to string }{
		{"aliases", strings.Join(old.Aliases, ","), strings.Join(edited.Aliases, ",")},
		{"redirect", fmt.Sprint(old.Redirect), fmt.Sprint(edited.Redirect)},
		{"client", old.Client, edited.Client},
		{"https", old.HTTPS, edited.HTTPS},
		{"php", old.PHP, edited.PHP},
		{"isolation", old.Isolation, edited.Isolation},
	} {
		if f.from != f.to {
			pl.add("record", PlanUpdate, f.field, "", orNone(f.from)+" → "+orNone(f.to))
		}
	}
	names := !slices.Equal(old.Aliases, edited.Aliases)
	if names || old.Redirect != edited.Redirect || old.HTTPS != edited.HTTPS || old.PHP != edited.PHP || old.Isolation != edited.Isolation {
		pl.add("vhost", PlanRewrite, vhostFile(c), web, "")
	}
	if names {
		for _, a := range edited.Aliases {
			if !slices.Contains(old.Aliases, a) {
				pl.add("record", PlanCreate, "name "+a, "", "the site answers to it")
			}
		}
		for _, a := range old.Aliases {
			if !slices.Contains(edited.Aliases, a) {
				pl.add("record", PlanRemove, "name "+a, "", "")
			}
		}
		if parts, err := r.siteParts(ctx, &c.Site); err == nil {
			for _, p := range parts {
				if p.Kind == "settings" {
					p.Action, p.Detail = PlanRewrite, "for the new names"
					pl.Changes = append(pl.Changes, p)
				}
			}
		}
		if edited.HTTPS != entities.HTTPSOff {
			pl.add("certificate", PlanReplace, c.CertDir(), web, "a certificate for "+strings.Join(append([]string{edited.Domain}, edited.Aliases...), ", ")+", requested by the cert queue")
		}
	}
	if old.HTTPS == entities.HTTPSOff && edited.HTTPS != entities.HTTPSOff && !names {
		pl.add("certificate", PlanCreate, c.CertDir(), web, "requested by the cert queue")
	}
	switch {
	case old.Isolation != edited.Isolation && edited.Isolation == entities.IsolationSite:
		pl.add("unix_user", PlanCreate, entities.SiteUnixUser(old.Domain), web, "owns the site's files")
		pl.add("php_fpm_pool", PlanCreate, old.Domain, web, "the site's own pool, PHP "+orNone(edited.PHP))
	case old.Isolation != edited.Isolation:
		pl.add("php_fpm_pool", PlanRemove, old.Domain, web, "the site runs in the shared pool")
		pl.add("unix_user", PlanRemove, entities.SiteUnixUser(old.Domain), web, "its files go back to aegir's and the web server's users")
	case old.PHP != edited.PHP && edited.Isolation == entities.IsolationSite:
		pl.add("php_fpm_pool", PlanReplace, old.Domain, web, "PHP "+orNone(old.PHP)+" → "+orNone(edited.PHP))
	}
	return pl, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
