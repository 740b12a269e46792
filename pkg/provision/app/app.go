// Package app is what aegir's application drivers share, and how the
// tasks reach them. A platform is one application's code (Drupal 7 to 11,
// WordPress); each application is a Driver in a package of its own
// (pkg/provision/app/drupal, pkg/provision/app/wordpress) that registers
// itself (Register; pkg/provision/app/all imports them all). Detect finds
// out which application a platform holds and gives the Platform its
// driver; Verify checks that sites can be published on it; Discover lists
// its packages and FindSites the sites already on it; the tasks write a
// site's settings, install it, make its login links, run its cron and
// its database updates (UpdateSite), back it up and remove it
// (RemoveSite) through the driver, and never ask which application it
// is. Adding an application is adding a driver package (and its type to
// entities.PlatformTypes).
//
// The drivers' PHP steps are scripts embedded in the binary (Scripts: the
// prelude here, php/prelude.php, then the application's own code), run by
// php-cli in the docroot, usually as the web server user (RunPHP,
// RunSiteStep). Their settings, passwords included, go as JSON on
// standard input, never on a command line; they answer with one marked
// line of JSON, after marked lines for the task log.
//
// Everything goes through an exec.Executor, so the same code works on the
// machine aegir runs on and on a remote web server. On a remote server each
// step is one or a few commands, never one round trip per file: package
// discovery, for instance, is a single find(1) that prints the files it
// finds (ScanFiles).
//
// A platform's own configuration that aegir replaces is kept outside
// every docroot (KeptDir, KeepOutside).
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

// Package types.
const (
	TypeCore    = entities.PackageCore
	TypeModule  = entities.PackageModule
	TypeTheme   = entities.PackageTheme
	TypeProfile = entities.PackageProfile
	TypePlugin  = entities.PackagePlugin
)

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
	d, err := p.findDriver()
	if err != nil {
		return ""
	}
	return d.SitesDir(p)
}

// SiteDir is the directory of one site in SitesDir (Drupal: DOCROOT/sites/DOMAIN). The
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

// PlatformError is the error of a platform that cannot be used.
func PlatformError(hint, format string, args ...any) *provision.Error {
	return provision.Errorf(provision.ErrPlatform, hint, format, args...)
}

// ReadOptional reads a file, answering nil without error when it does not
// exist.
func ReadOptional(ctx context.Context, ex exec.Executor, p string) ([]byte, error) {
	b, err := ex.ReadFile(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", p, ex.Host(), err)
	}
	return b, nil
}
