package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/store"
)

// InitOptions are init's: the invocation alone (its home is the one to make).
type InitOptions struct{ *App }

func (a *App) initCmd() *cobra.Command { return newInitCmd(a, nil) }

func newInitCmd(a *App, runF func(*InitOptions) error) *cobra.Command {
	return bind(&cobra.Command{
		Use:   "init",
		Short: "Create AEGIR_HOME, the state database and the config file",
		Long: `Create the aegir home (default ~/.aegir): aegir.db (the state, mode 0600),
aegir.yaml (the configuration, with every key commented), and the config/,
backups/ and templates/ directories. Running it again upgrades an older
state database in place and changes nothing else. With the state key (or
AEGIR_STATE) naming a PostgreSQL database, the state goes there instead:
the database must exist, and init makes aegir's tables in it
(docs/masters.md).`,
	}, &InitOptions{App: a}, runF, runInit)
}

func runInit(o *InitOptions) error {
	if err := os.MkdirAll(o.home, 0o700); err != nil {
		return &Error{Err: err, Code: ExitFailed, Hint: "check that the parent directory exists and is writable"}
	}
	// 0711: others may pass through to config/ (the web server's
	// workers serve ACME challenges from there) but not list the home.
	if err := os.Chmod(o.home, 0o711); err != nil {
		return err
	}
	for _, d := range []string{"config", "backups", "templates"} {
		if err := os.MkdirAll(filepath.Join(o.home, d), 0o700); err != nil {
			return err
		}
	}
	// config/ is read by the local web server (its include files).
	if err := os.Chmod(filepath.Join(o.home, "config"), 0o755); err != nil {
		return err
	}
	cfg := filepath.Join(o.home, "aegir.yaml")
	if _, err := os.Stat(cfg); os.IsNotExist(err) {
		if err := os.WriteFile(cfg, []byte(defaultConfigFile), 0o600); err != nil {
			return err
		}
	}
	st, err := o.openState(true)
	if err != nil {
		return err
	}
	o.st = st
	o.infof("aegir home ready: %s, its state %s (schema version %d)", o.home, st.Path(), store.SchemaVersion())
	o.infof("next: aegir server add NAME --host localhost --http nginx --db mariadb")
	return nil
}

type versionInfo struct {
	Version string `json:"version" yaml:"version"`
	Schema  int    `json:"schema" yaml:"schema"`
	Go      string `json:"go" yaml:"go"`
	OS      string `json:"os" yaml:"os"`
	Arch    string `json:"arch" yaml:"arch"`
}

// VersionOptions are version's: the invocation alone (its output format).
type VersionOptions struct{ *App }

func (a *App) versionCmd() *cobra.Command {
	return bind(&cobra.Command{Use: "version", Short: "Print aegir's version"}, &VersionOptions{App: a}, nil, runVersion)
}

func runVersion(o *VersionOptions) error {
	v := versionInfo{Version: Version, Schema: store.SchemaVersion(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if o.plainTable() {
		fmt.Fprintf(o.IO.Out, "aegir %s (state schema %d, %s %s/%s)\n", v.Version, v.Schema, v.Go, v.OS, v.Arch)
		return nil
	}
	return o.print(v)
}
