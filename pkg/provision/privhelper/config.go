// Package privhelper is aegir's privileged helper as it runs on a server,
// as root through the deploy user's one sudo rule (package priv is the
// master's side). It does a fixed set of operations; each checks its
// arguments with pkg/entities' rules and against the helper's
// configuration, a root-owned file on the server, never against what the
// caller says; each says what it did to syslog (the journal).
package privhelper

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
)

// Config is the helper's configuration file (priv.DefaultConfigFile),
// written by root when the helper is installed:
//
//	deploy_user: aegir
//	web_user: www-data            # default www-data
//	web_group: www-data           # default web_user
//	roots:                        # platforms and the aegir home
//	  - /home/aegir/platforms
//	  - /home/aegir/.aegir
//	php_fpm:                      # as aegir.yaml's php_fpm (defaults: Debian's)
//	  pool_dir: /etc/php/{version}/fpm/pool.d
//	  runtime_dir: /var/lib/aegir
type Config struct {
	DeployUser string   `yaml:"deploy_user"`
	WebUser    string   `yaml:"web_user"`
	WebGroup   string   `yaml:"web_group"`
	Roots      []string `yaml:"roots"`
	FPM        struct {
		PoolDir          string `yaml:"pool_dir"`
		RuntimeDir       string `yaml:"runtime_dir"`
		TestCmd          string `yaml:"test_cmd"`
		ReloadCmd        string `yaml:"reload_cmd"`
		DisableFunctions string `yaml:"disable_functions"`
		LogrotateFile    string `yaml:"logrotate_file"`
	} `yaml:"php_fpm"`
}

// Spec is the configuration's php-fpm settings as the fpm package takes
// them.
func (c *Config) Spec() provision.FPMSpec {
	f := c.FPM
	return provision.FPMSpec{PoolDir: f.PoolDir, RuntimeDir: f.RuntimeDir, TestCmd: f.TestCmd, ReloadCmd: f.ReloadCmd,
		DisableFunctions: f.DisableFunctions, LogrotateFile: f.LogrotateFile}
}

// LoadConfig reads and checks the configuration file. The file and every
// directory above it must be root's and writable by root alone: a file
// that another user could change would let that user choose what root
// does.
func LoadConfig(file string) (*Config, error) {
	if err := checkRootOwned(file); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var c Config
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return &c, nil
}

// check checks the settings and fills in the defaults.
func (c *Config) check() error {
	if c.WebUser == "" {
		c.WebUser = "www-data"
	}
	if c.WebGroup == "" {
		c.WebGroup = c.WebUser
	}
	for k, v := range map[string]string{"deploy_user": c.DeployUser, "web_user": c.WebUser} {
		if err := entities.ValidateSystemName(k, v, "user"); err != nil {
			return err
		}
		if v == "root" || strings.HasPrefix(v, entities.SiteUserPrefix) {
			return entities.Invalid(k, v, "must not be root or a site's user")
		}
	}
	if err := entities.ValidateSystemName("web_group", c.WebGroup, "group"); err != nil {
		return err
	}
	if len(c.Roots) == 0 {
		return entities.Invalid("roots", "", "must name at least one directory (the platforms' parent, the aegir home)")
	}
	for _, r := range c.Roots {
		if err := entities.ValidateServerPath("roots", r); err != nil {
			return err
		}
		if r == "/" || strings.Count(r, "/") < 2 {
			return entities.Invalid("roots", r, "must be a directory two levels below / at least (not /, /home or /var)")
		}
	}
	return fpm.CheckConfig(c.Spec())
}

// checkRootOwned checks that p and each directory above it belong to
// root and that no one else may write them.
func checkRootOwned(file string) error {
	p := filepath.Clean(file)
	for {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		// A sticky directory (/tmp) lets no one else rename root's
		// entries in it.
		open := fi.Mode().Perm()&0o022 != 0 && !(fi.IsDir() && fi.Mode()&os.ModeSticky != 0 && p != filepath.Clean(file))
		if !ok || st.Uid != 0 || open || fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s must belong to root and be writable by root alone (chown root:root, chmod go-w), and not be a symbolic link", p)
		}
		if p == "/" {
			return nil
		}
		p = filepath.Dir(p)
	}
}

// lookupSiteUser is the uid and gid of aegir's user of a site named
// name: an ae-* user whose comment says it is aegir's for the domain its
// name is made from.
func lookupSiteUser(name string) (uid, gid int, ok bool) {
	if !strings.HasPrefix(name, entities.SiteUserPrefix) {
		return 0, 0, false
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false
	}
	d, found := strings.CutPrefix(u.Name, "aegir site ")
	if !found || entities.ValidateDomain("", d, false) != nil || entities.SiteUnixUser(d) != name {
		return 0, 0, false
	}
	fmt.Sscan(u.Uid, &uid)
	fmt.Sscan(u.Gid, &gid)
	return uid, gid, true
}
