// Package app holds aegir's platform (application) drivers: Drupal 7 to 11
// and WordPress. It finds out what a platform is (Detect), checks that sites
// can be published on it (Verify), lists its packages (Discover) and the
// sites already on it (FindSites), writes the settings of its sites
// (WriteDrupalSettings, PrepareDrupalSite, WriteWordPressSite and the
// WordPress dispatcher, EnsureWordPressPlatform) and runs the applications'
// own code through php-cli: installers (InstallWordPress, InstallDrupal),
// one-time login links (WordPressLoginLink, DrupalLoginLink), site state
// (ReadWordPressStatus, ReadDrupalStatus), Drupal's cron (DrupalCron) and
// database updates after a move to a newer platform (UpdateDrupal,
// UpdateWordPress, or UpdateSite for either).
//
// The PHP steps are scripts embedded in the binary (php/*.php), copied to
// the server's /tmp and run by php-cli in the docroot, usually as the web
// server user. Their settings, passwords included, go as JSON on standard
// input, never on a command line; they answer with one marked line of
// JSON, after marked lines for the task log. Before Drupal runs, a script
// checks that PHP has the extensions Drupal needs and fails with the
// Debian packages to install when it has not. Drupal needs no drush:
// InstallDrupal drives Drupal's installer the way drush does, DrupalCron
// and UpdateDrupal run its cron and update.php's batch. With the
// platform's own drush (DrupalInstall.Drush, SiteStep.Drush) they run
// drush instead; drush site:install gets no password and no database URL
// on its command line (drush reads the database from settings.php and
// makes up the admin password, which is kept out of the log).
//
// Everything goes through an exec.Executor, so the same code works on the
// machine aegir runs on and on a remote web server. On a remote server each
// step is one or a few commands, never one round trip per file: package
// discovery, for instance, is a single find(1) that prints the files it
// finds.
//
// # Layout of a platform
//
// A Drupal platform is either a plain tree (ROOT/index.php, ROOT/core or
// ROOT/includes) or a Composer project whose docroot is ROOT/web or
// ROOT/docroot. Its sites live in DOCROOT/sites/DOMAIN; settings.php there
// holds the site's database and paths, and the site's files are
//
//	sites/DOMAIN/files                  public files (owned by the web server user)
//	sites/DOMAIN/private/files          private files
//	sites/DOMAIN/private/temp           temporary files
//	sites/DOMAIN/private/config/sync    configuration sync directory (8+)
//
// The web server must refuse requests for sites/*/private.
//
// A WordPress platform is one WordPress tree serving many sites. Its
// wp-config.php is aegir's dispatcher (RenderWordPressDispatcher): it takes
// the request's host name, finds ROOT/wp-content/aegir-sites/HOST.php (the
// site's own configuration, or a symbolic link to it for an alias) and
// loads it, or answers 404 when there is none. Each site's uploads go to
// wp-content/uploads/DOMAIN.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Platform types.
const (
	Drupal    = entities.PlatformDrupal
	WordPress = entities.PlatformWordPress
)

// Package types.
const (
	TypeCore    = "core"
	TypeModule  = "module"
	TypeTheme   = "theme"
	TypeProfile = "profile"
	TypePlugin  = "plugin"
)

// WordPressSitesDir is where a WordPress platform keeps the configuration
// of its sites, relative to the platform root.
const WordPressSitesDir = "wp-content/aegir-sites"

// Platform is what Detect found in a platform's root.
type Platform struct {
	Type string `json:"type"` // Drupal or WordPress
	Root string `json:"root"` // the platform root, as given
	// Docroot is the directory the web server serves: Root, or Root/web
	// (Root/docroot) for a Composer project.
	Docroot string `json:"docroot"`
	Version string `json:"version"` // core version, e.g. 7.105, 10.3.1, 6.1.9
	Major   int    `json:"major"`   // major core version, e.g. 7, 10, 6
	// Drush is the platform's own drush (vendor/bin/drush), when it has one.
	Drush string `json:"drush,omitempty"`
	// Driver is the platform's application driver (Detect sets it).
	Driver Driver `json:"-"`
}

// SitesDir is the directory that holds the sites' configuration:
// DOCROOT/sites for Drupal, ROOT/wp-content/aegir-sites for WordPress.
func (p Platform) SitesDir() string {
	d, err := p.driver()
	if err != nil {
		return ""
	}
	return d.SitesDir(p)
}

// SiteDir is the directory of one Drupal site, DOCROOT/sites/DOMAIN. The
// domain must have been validated.
func (p Platform) SiteDir(domain string) string {
	return path.Join(p.SitesDir(), domain)
}

// DocrootRel is the docroot relative to the root: "" for a plain tree,
// "web" or "docroot" for a Composer project.
func (p Platform) DocrootRel() string {
	if p.Docroot == p.Root {
		return ""
	}
	return path.Base(p.Docroot)
}

// platformError is the error of a platform that cannot be used.
func platformError(hint, format string, args ...any) *provision.Error {
	return provision.Errorf(provision.ErrPlatform, hint, format, args...)
}

// readOptional reads a file, answering nil without error when it does not
// exist.
func readOptional(ctx context.Context, ex exec.Executor, p string) ([]byte, error) {
	b, err := ex.ReadFile(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", p, ex.Host(), err)
	}
	return b, nil
}
