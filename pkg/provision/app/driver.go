package app

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/backup"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Driver is one application that platforms hold (Drupal, WordPress):
// everything the tasks do that depends on the application goes through
// it, so that no task asks which application a platform is. A driver
// registers itself (Register) from its package's init; the Platform that
// Detect returns carries its driver, and For finds a driver by type.
//
// The methods on a platform get the Platform that Detect found; those on
// a site get the Site as its record says.
type Driver interface {
	// Type is the platform type the driver serves: one of
	// entities.PlatformTypes.
	Type() string

	// Markers are the files whose presence tells a platform of this type,
	// checked in order by Detect; the first that exists decides.
	Markers() []Marker
	// Describe says, for Detect's error on a directory that holds no
	// known application, what a platform of this type holds ("Drupal
	// (core/lib/Drupal.php, ...)") and where to point one ("Drupal's
	// index.php ...").
	Describe() (holds, pointAt string)
	// Inspect completes a platform Detect found (Drupal: its own drush).
	Inspect(ctx context.Context, ex exec.Executor, p *Platform)
	// SitesDir is the directory that holds the sites' configuration.
	SitesDir(p Platform) string
	// PreparePlatform readies a verified platform for aegir's sites
	// (WordPress: aegir's dispatcher and login plugin), keeping the
	// platform's own configuration that aegir replaces, and copies an
	// older aegir left in the docroot, under keep (KeptDir).
	PreparePlatform(ctx context.Context, ex exec.Executor, p Platform, keep string, log Logf) error
	// FindSites lists the sites the platform holds (see FindSites).
	FindSites(ctx context.Context, ex exec.Executor, p Platform, runAs string, log Logf) ([]FoundSite, error)
	// Discover lists the platform's packages, core first (see Discover).
	Discover(ctx context.Context, ex exec.Executor, p Platform, log Logf) ([]Package, error)

	// WriteSettings writes the site's settings from its record (and the
	// directories and platform files they need); it reports whether a
	// file changed.
	WriteSettings(ctx context.Context, ex exec.Executor, p Platform, s Site) (bool, error)
	// SettingsFiles are the PHP files of the site's settings that
	// php-fpm runs, which WriteSettings writes: a task makes php-fpm
	// forget its compiled copy of them once they changed.
	SettingsFiles(p Platform, s Site) []string
	// Install runs the application's installer for a site whose settings
	// WriteSettings wrote, on its empty database.
	Install(ctx context.Context, ex exec.Executor, p Platform, s Site) error
	// RemoveSite removes what the platform holds of one site; absent
	// files are no error.
	RemoveSite(ctx context.Context, ex exec.Executor, p Platform, domain string) error
	// LoginLink makes a one-time login link for the site's administrator,
	// to be printed once, never logged or kept.
	LoginLink(ctx context.Context, ex exec.Executor, p Platform, s Site) (string, error)
	// EnabledPackages reads from the site which packages it has enabled:
	// "TYPE/NAME" (as Discover's Package.Type and Name) to the schema
	// version, "" when there is none.
	EnabledPackages(ctx context.Context, ex exec.Executor, p Platform, s Site) (map[string]string, error)
	// Cron runs the site's cron.
	Cron(ctx context.Context, ex exec.Executor, p Platform, s Site) error
	// UpdateDB runs the site's database updates on its platform, as after
	// a move to a newer one.
	UpdateDB(ctx context.Context, ex exec.Executor, p Platform, o SiteStep) error
	// Check makes sure a site that moved (restore, migrate, clone) works
	// at its new place.
	Check(ctx context.Context, ex exec.Executor, p Platform, s Site) error
	// BackupParts are what a backup holds of the site besides its
	// database and its certificate.
	BackupParts(p Platform, domain string) []backup.Part
	// BackupMembers name, among the archive members of BackupParts, those
	// the web server writes (given to its user when they are unpacked)
	// and the one that holds the site's settings (left out of a clone,
	// which gets its own secrets).
	BackupMembers() (webWritable []string, settings string)
	// Readdress rewrites the address the site had (from) in its
	// database, svc, after a move to its address s.URL; an application
	// that keeps no address in its database does nothing.
	Readdress(ctx context.Context, svc db.Service, s Site, from Address) error
	// StatsQueries are the SQL queries of a site's statistics, each
	// answering one count: users, active_users (seen since the Unix
	// time since), posts and comments.
	StatsQueries(p Platform, since int64) map[string]string
	// PlatformAliases reports whether a site's aliases are files of the
	// platform that two sites cannot hold at once, so that a site that
	// moves to a new domain on the same platform gives them up under its
	// old one first.
	PlatformAliases() bool
}

// DBUpToDater is a Driver that can tell, from the site's database and
// the platform's code and without loading the application, that the
// site's update step has nothing to do: a move between platforms whose
// core keeps the same database schema skips a run of the application.
type DBUpToDater interface {
	// DBUpToDate reports whether the site's database (on svc) is at the
	// schema the platform's code wants, and the versions it compared.
	// false (with no error) when it cannot tell: the step runs.
	DBUpToDate(ctx context.Context, ex exec.Executor, svc db.Service, p Platform, s Site) (bool, string)
}

// PackageChecker is a Driver whose Check reads, in the same run of the
// application, what EnabledPackages would read: a move that checks the
// site at its new place and then records its packages loads the
// application once instead of twice.
type PackageChecker interface {
	// CheckPackages is Check, and gives what EnabledPackages gives.
	CheckPackages(ctx context.Context, ex exec.Executor, p Platform, s Site) (map[string]string, error)
}

// Marker is a file whose presence tells a platform's type, and where its
// core version is written.
type Marker struct {
	File    string // relative to the root
	Docroot string // relative to the root
	Version *regexp.Regexp
}

// Site is what a driver is told of one site, from its record.
type Site struct {
	Domain  string
	Aliases []string
	// URL is the site's address as its users reach it; HTTPSURL its
	// address over HTTPS when it answers on both schemes, else "".
	URL      string
	HTTPSURL string
	DB       DB
	// Owner is the web server's user and group; the application's steps
	// run as its user.
	Owner Owner
	// Keep is where the platform's own configuration that aegir replaces
	// is kept (KeptDir of the web server's aegir home); "": not known.
	Keep    string
	Install InstallSettings
	// Drush is the platform's own drush, when one is configured.
	Drush string
	// PHP is the php-cli command and its first arguments for the steps on
	// an installed site (cron, database updates); empty: php.
	PHP []string
	Log Logf
	// Visit requests path from the site's web server with the site's
	// domain as Host and returns the HTTP status code.
	Visit func(ctx context.Context, path string) (int, error)
}

// InstallSettings are the settings of a site's install.
type InstallSettings struct {
	Title      string // empty: the domain
	AdminUser  string // empty: admin
	AdminEmail string // the administrator's email
	SiteMail   string // the site's own email (Drupal)
	Profile    string // Drupal's install profile; empty: standard
	Locale     string // empty: the application's default
}

// Address is where a site was: its address and domain.
type Address struct {
	URL    string
	Domain string
}

// Step says how the application's steps (cron, database updates) run for
// the site.
func (s Site) Step() SiteStep {
	return SiteStep{Domain: s.Domain, URL: s.URL, User: s.Owner.WebUser, DBType: s.DB.Type, Drush: s.Drush, PHP: s.PHP, Log: s.Log}
}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver known by its type. Registering a type twice is
// a bug, and panics.
func Register(d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[d.Type()]; dup {
		panic("app: driver " + d.Type() + " registered twice")
	}
	drivers[d.Type()] = d
}

// Types are the types of the registered drivers, sorted.
func Types() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	return slices.Sorted(maps.Keys(drivers))
}

// all is every registered driver, in the order of their types.
func all() []Driver {
	types := Types()
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]Driver, len(types))
	for i, t := range types {
		out[i] = drivers[t]
	}
	return out
}

// For is the driver of a platform type; an unknown type is a
// *provision.Error with a hint.
func For(typ string) (Driver, error) {
	driversMu.RLock()
	d := drivers[typ]
	driversMu.RUnlock()
	if d == nil {
		return nil, PlatformError("verify the platform, or add it with one of the types "+strings.Join(Types(), ", "),
			"platform type %q is unknown (known: %s)", typ, strings.Join(Types(), ", ")).With(entities.Do("platform.verify", "NAME"))
	}
	return d, nil
}

// driver is the platform's driver: the one Detect gave it, else the one
// of its type.
func (p Platform) findDriver() (Driver, error) {
	if p.Driver != nil {
		return p.Driver, nil
	}
	return For(p.Type)
}
