package drupal

import (
	"embed"
	"regexp"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/app"
)

//go:embed php/*.php
var phpFS embed.FS

// Drupal's PHP steps, embedded in the binary and run with php-cli in the
// docroot (see app.Scripts).
const (
	ScriptInstall = "drupal-install.php"
	ScriptSite    = "drupal-site.php"
	ScriptSites   = "drupal-sites.php"
	ScriptUpdate  = "drupal-update.php"
)

// Scripts lists the embedded scripts.
var Scripts = []string{ScriptInstall, ScriptSite, ScriptSites, ScriptUpdate}

var scripts = app.Scripts{Type: entities.PlatformDrupal, FS: phpFS, Common: "drupal-common.php", Names: Scripts}

// PHPScript returns an embedded script as it runs: the shared prelude,
// drupal-common.php, then the script's own code.
func PHPScript(name string) ([]byte, error) { return scripts.Script(name) }

// Where Drupal's core says its version: Drupal 7's bootstrap.inc, 8+'s
// Drupal.php.
var (
	drupal7Version = regexp.MustCompile(`define\(\s*['"]VERSION['"]\s*,\s*['"]([^'"]+)['"]\s*\)`)
	drupal8Version = regexp.MustCompile(`const\s+VERSION\s*=\s*['"]([^'"]+)['"]`)
)
