package provision

import (
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Changes is what a task reports for the front end to save: one value,
// nested as the job is (Result.Changes; the front end applies it in one
// call). A part left nil or empty is a part the task did not change.
type Changes struct {
	// Site is what became of the task's site (its target for a clone).
	Site *SiteChanges `json:"site,omitempty"`
	// Platform is what a platform verify found.
	Platform *PlatformChanges `json:"platform,omitempty"`
	// Services are the states a server verify found, one per service.
	Services []ServiceState `json:"services,omitempty"`
	// Backup is an archive the task wrote (a backup, or the one a delete,
	// migrate or clone took first): recorded whatever the task's end.
	Backup *BackupRecord `json:"backup,omitempty"`
	// BackupDeleted: a backup.delete removed its archive.
	BackupDeleted bool `json:"backup_deleted,omitempty"`
	// FoundSites are the sites a platform import found; each database
	// password travels as the secret "db_password/DOMAIN".
	FoundSites []FoundSite `json:"found_sites,omitempty"`
	// WebReloads is what became of the web server reloads, by server.
	WebReloads map[string]ReloadReport `json:"web_reloads,omitempty"`
	// Committed: the task failed, but what it reports stays done (a site
	// installed whose certificate could not be had): save it anyway.
	Committed bool `json:"committed,omitempty"`
	// MoveDone: a site.rescue found the move done but for its clean-up,
	// finished that, and reports the move's own changes.
	MoveDone bool `json:"move_done,omitempty"`
	// StillRunning: a task.rescue found the task still running in
	// another process; nothing was undone.
	StillRunning bool `json:"still_running,omitempty"`
	// LoginLink is a one-time login link: shown once to whoever asked,
	// never stored.
	LoginLink string `json:"login_link,omitempty"`
}

// SiteChanges is what became of a site.
type SiteChanges struct {
	// Status is the site's status now (entities.Site*), when the task
	// decides it rather than its type.
	Status string `json:"status,omitempty"`
	// DB is the database and user the site now uses, chosen by the back
	// end where they were free; the password is a secret
	// ("site_db_password"), never here.
	DB *DBRecord `json:"db,omitempty"`
	// Platform, DBServer and Domain are where a migrate put the site.
	Platform string `json:"platform,omitempty"`
	DBServer string `json:"db_server,omitempty"`
	Domain   string `json:"domain,omitempty"`
	// Health is what the task's health check found (a failed check is a
	// health too).
	Health *entities.SiteHealth `json:"health,omitempty"`
	// Stats are the site's counts (site.stats).
	Stats *SiteStats `json:"stats,omitempty"`
	// Packages are the site's packages, all of them (nil: not read).
	Packages []entities.Package `json:"packages,omitempty"`
	// Cert is the certificate the site now uses; CertFailed an attempt
	// to get one that failed (the current one stays); CertRemoved its
	// removal.
	Cert        *CertRecord  `json:"cert,omitempty"`
	CertFailed  *CertFailure `json:"cert_failed,omitempty"`
	CertRemoved bool         `json:"cert_removed,omitempty"`
	// Leftovers are what a delete could not do and someone must do by hand.
	Leftovers []string `json:"leftovers,omitempty"`
}

// Moved reports whether the changes say where a migrate put the site.
func (s *SiteChanges) Moved() bool {
	return s != nil && (s.Platform != "" || s.DBServer != "" || s.Domain != "")
}

// DBRecord names a site's database and user, and the host the user is
// granted for.
type DBRecord struct {
	Name      string `json:"name"`
	User      string `json:"user"`
	GrantHost string `json:"grant_host,omitempty"`
}

// SiteStats are a site's counts.
type SiteStats struct {
	Users       int64 `json:"users"`
	ActiveUsers int64 `json:"active_users"`
	Posts       int64 `json:"posts"`
	Comments    int64 `json:"comments"`
	// DBBytes and FilesBytes are the disk the site's database and its own
	// files take (0: not measured).
	DBBytes    int64 `json:"db_bytes"`
	FilesBytes int64 `json:"files_bytes"`
}

// CertRecord is a certificate installed for a site: what the front end
// keeps of it.
type CertRecord struct {
	Names     []string  `json:"names"`
	Issuer    string    `json:"issuer"`
	Source    string    `json:"source"` // entities.CertACME or CertAdmin
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// RenewAt is when the cert queue renews it (ACME certificates only).
	RenewAt  *time.Time `json:"renew_at,omitempty"`
	CertPath string     `json:"cert_path"` // on the web server
	KeyPath  string     `json:"key_path"`
}

// CertFailure is an attempt to get a certificate that failed: the cert
// queue counts it and retries later with backoff.
type CertFailure struct {
	Error string   `json:"error"`
	Names []string `json:"names,omitempty"` // the names asked for
}

// PlatformChanges is what a platform verify found of its platform.
type PlatformChanges struct {
	Type        string `json:"type,omitempty"`
	CoreVersion string `json:"core_version,omitempty"`
	Docroot     string `json:"docroot,omitempty"`
	Drush       string `json:"drush,omitempty"`
	// Commit is the git commit checked out at the platform's root (empty:
	// not a git checkout).
	Commit string `json:"commit,omitempty"`
	// Packages are the platform's packages, all of them (nil: not read).
	Packages []entities.Package `json:"packages,omitempty"`
}

// ServiceState is what a server verify found of one of its services.
type ServiceState struct {
	Kind    string `json:"kind"`   // http or db
	Status  string `json:"status"` // enabled or error
	Version string `json:"version,omitempty"`
	Message string `json:"message,omitempty"`
	// PHPVersions are the php-fpm versions found on a web server (http
	// only), oldest first: the versions its sites may choose.
	PHPVersions []string `json:"php_versions,omitempty"`
}

// BackupRecord is an archive a task wrote, for the front end to list.
type BackupRecord struct {
	// Site is the site it is of, when not the task's own (a clone's
	// source).
	Site    string    `json:"site,omitempty"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

// SiteChanges returns c's site part, made if it has none.
func (c *Changes) SiteChanges() *SiteChanges {
	if c.Site == nil {
		c.Site = &SiteChanges{}
	}
	return c.Site
}

// Merge adds o's parts to c: a part o has replaces c's, a flag o sets
// is set. Either may be nil; the result is c, or o when c is nil.
func (c *Changes) Merge(o *Changes) *Changes {
	if o == nil {
		return c
	}
	if c == nil {
		return o
	}
	if o.Site != nil {
		if c.Site == nil {
			c.Site = o.Site
		} else {
			c.Site.merge(o.Site)
		}
	}
	keep(&c.Platform, o.Platform)
	keep(&c.Backup, o.Backup)
	keepAll(&c.Services, o.Services)
	keepAll(&c.FoundSites, o.FoundSites)
	if o.WebReloads != nil {
		c.WebReloads = o.WebReloads
	}
	if o.LoginLink != "" {
		c.LoginLink = o.LoginLink
	}
	c.BackupDeleted = c.BackupDeleted || o.BackupDeleted
	c.Committed = c.Committed || o.Committed
	c.MoveDone = c.MoveDone || o.MoveDone
	c.StillRunning = c.StillRunning || o.StillRunning
	return c
}

func (s *SiteChanges) merge(o *SiteChanges) {
	for _, f := range []struct{ dst, src *string }{{&s.Status, &o.Status}, {&s.Platform, &o.Platform}, {&s.DBServer, &o.DBServer}, {&s.Domain, &o.Domain}} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	keep(&s.DB, o.DB)
	keep(&s.Health, o.Health)
	keep(&s.Stats, o.Stats)
	keep(&s.Cert, o.Cert)
	keep(&s.CertFailed, o.CertFailed)
	keepAll(&s.Packages, o.Packages)
	s.CertRemoved = s.CertRemoved || o.CertRemoved
	s.Leftovers = append(s.Leftovers, o.Leftovers...)
}

// keep sets *dst to src when src is there.
func keep[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

// keepAll sets *dst to src when src is there (nil is not; empty is).
func keepAll[T any](dst *[]T, src []T) {
	if src != nil {
		*dst = src
	}
}
