package wordpress

import (
	"embed"
	"regexp"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/app"
)

//go:embed php/*.php
var phpFS embed.FS

// WordPress's PHP steps, embedded in the binary and run with php-cli in
// the platform root (see app.Scripts).
const (
	ScriptInstall = "wp-install.php"
	ScriptLogin   = "wp-login-link.php"
	ScriptStatus  = "wp-status.php"
	ScriptUpgrade = "wp-upgrade.php"
)

// Scripts lists the embedded scripts.
var Scripts = []string{ScriptInstall, ScriptLogin, ScriptStatus, ScriptUpgrade}

var scripts = app.Scripts{Type: entities.PlatformWordPress, FS: phpFS, Common: "wp-common.php", Names: Scripts}

// PHPScript returns an embedded script as it runs: the shared prelude,
// wp-common.php, then the script's own code.
func PHPScript(name string) ([]byte, error) { return scripts.Script(name) }

// wpVersion is where WordPress's wp-includes/version.php says its version.
var wpVersion = regexp.MustCompile(`\$wp_version\s*=\s*['"]([^'"]+)['"]`)
