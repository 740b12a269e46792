package app

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// marker is a file whose presence tells a platform's type, and where its
// core version is written.
type marker struct {
	file    string // relative to the root
	typ     string
	docroot string // relative to the root
	version *regexp.Regexp
}

var (
	drupal7Version = regexp.MustCompile(`define\(\s*['"]VERSION['"]\s*,\s*['"]([^'"]+)['"]\s*\)`)
	drupal8Version = regexp.MustCompile(`const\s+VERSION\s*=\s*['"]([^'"]+)['"]`)
	wpVersion      = regexp.MustCompile(`\$wp_version\s*=\s*['"]([^'"]+)['"]`)
	leadingNumber  = regexp.MustCompile(`^[0-9]+`)
)

// markers are checked in order; the first file that exists decides.
var markers = []marker{
	{"wp-includes/version.php", WordPress, "", wpVersion},
	{"core/lib/Drupal.php", Drupal, "", drupal8Version},
	{"web/core/lib/Drupal.php", Drupal, "web", drupal8Version},
	{"docroot/core/lib/Drupal.php", Drupal, "docroot", drupal8Version},
	{"includes/bootstrap.inc", Drupal, "", drupal7Version},
	{"web/includes/bootstrap.inc", Drupal, "web", drupal7Version},
	{"docroot/includes/bootstrap.inc", Drupal, "docroot", drupal7Version},
}

// Detect finds out which application the platform at root is (Drupal 7 or
// 8+, plain or Composer, or WordPress), its docroot and its core version.
// A root that does not exist, or that holds neither, is a
// *provision.Error with a hint.
func Detect(ctx context.Context, ex exec.Executor, root string) (Platform, error) {
	if err := entities.ValidateAbsPath("platform root", root); err != nil {
		return Platform{}, platformError("give the platform's directory as an absolute path", "%v", err)
	}
	fi, err := ex.Stat(ctx, root)
	if errors.Is(err, fs.ErrNotExist) {
		return Platform{}, platformError(
			"restore the platform's code at "+root+" on "+ex.Host()+", or, if it is gone for good, move its sites away and delete the platform (aegir platform delete)",
			"platform root %s does not exist on %s", root, ex.Host())
	}
	if err != nil {
		return Platform{}, platformError("check that aegir's user on "+ex.Host()+" can enter every directory of the path",
			"platform root %s on %s: %v", root, ex.Host(), err)
	}
	if !fi.IsDir() {
		return Platform{}, platformError("give the platform's directory, not a file", "platform root %s on %s is not a directory", root, ex.Host())
	}
	for _, m := range markers {
		file := path.Join(root, m.file)
		b, err := readOptional(ctx, ex, file)
		if err != nil {
			return Platform{}, platformError("check that aegir's user on "+ex.Host()+" can read the platform's files", "%v", err)
		}
		if b == nil {
			continue
		}
		p := Platform{Type: m.typ, Root: root, Docroot: path.Join(root, m.docroot)}
		sub := m.version.FindSubmatch(b)
		if sub == nil {
			return Platform{}, platformError("the core files look damaged: reinstall the platform's core",
				"%s on %s does not say which %s version it is (no VERSION found)", file, ex.Host(), m.typ)
		}
		p.Version = string(sub[1])
		p.Major, _ = strconv.Atoi(leadingNumber.FindString(p.Version))
		if p.Major == 0 {
			return Platform{}, platformError("the core files look damaged: reinstall the platform's core",
				"%s on %s gives a version %q that does not start with a number", file, ex.Host(), p.Version)
		}
		if p.Type == Drupal {
			drush := path.Join(root, "vendor/bin/drush")
			if _, err := ex.Stat(ctx, drush); err == nil {
				p.Drush = drush
			}
		}
		return p, nil
	}
	return Platform{}, platformError(
		"point the platform at the directory that holds Drupal's index.php (or the Composer project above web/) or WordPress's wp-includes/",
		"%s on %s holds neither Drupal (core/lib/Drupal.php, includes/bootstrap.inc, or the same under web/ or docroot/) nor WordPress (wp-includes/version.php)",
		root, ex.Host())
}
