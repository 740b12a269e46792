package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/store"
)

func (a *App) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create AEGIR_HOME, the state database and the config file",
		Long: `Create the aegir home (default ~/.aegir): aegir.db (the state, mode 0600),
aegir.yaml (the configuration, with every key commented), and the config/,
backups/ and templates/ directories. Running it again upgrades an older
state database in place and changes nothing else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(a.home, 0o700); err != nil {
				return &Error{Err: err, Code: ExitFailed, Hint: "check that the parent directory exists and is writable"}
			}
			// 0711: others may pass through to config/ (the web server's
			// workers serve ACME challenges from there) but not list the home.
			if err := os.Chmod(a.home, 0o711); err != nil {
				return err
			}
			for _, d := range []string{"config", "backups", "templates"} {
				if err := os.MkdirAll(filepath.Join(a.home, d), 0o700); err != nil {
					return err
				}
			}
			// config/ is read by the local web server (its include files).
			if err := os.Chmod(filepath.Join(a.home, "config"), 0o755); err != nil {
				return err
			}
			cfg := filepath.Join(a.home, "aegir.yaml")
			if _, err := os.Stat(cfg); os.IsNotExist(err) {
				if err := os.WriteFile(cfg, []byte(defaultConfigFile), 0o600); err != nil {
					return err
				}
			}
			st, err := store.Open(a.ctx, a.dbPath(), true)
			if err != nil {
				return err
			}
			a.st = st
			a.infof("aegir home ready: %s (schema version %d)", a.home, store.SchemaVersion())
			a.infof("next: aegir server add NAME --host localhost --http nginx --db mariadb")
			return nil
		},
	}
}

type versionInfo struct {
	Version string `json:"version" yaml:"version"`
	Schema  int    `json:"schema" yaml:"schema"`
	Go      string `json:"go" yaml:"go"`
	OS      string `json:"os" yaml:"os"`
	Arch    string `json:"arch" yaml:"arch"`
}

func (a *App) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print aegir's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Version: Version, Schema: store.SchemaVersion(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			if a.plainTable() {
				fmt.Fprintf(a.IO.Out, "aegir %s (state schema %d, %s %s/%s)\n", v.Version, v.Schema, v.Go, v.OS, v.Arch)
				return nil
			}
			return a.print(v)
		},
	}
}
