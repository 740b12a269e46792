package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
)

// JobVersion is the version of the job's JSON form: the "version" key of
// every job. Version 1 was a flat object of prefixed keys (site_domain,
// web_host, target_site_domain, ...); it is refused with what changed.
const JobVersion = 2

// Job is what a task runs with: its target and every relation the front
// end resolved for it, nested as the model is. Site is what the task works
// on: for a site task the site with its web server, database server and
// platform; for a platform task only its web server and platform; for a
// server task the server's web and database services. A site.migrate or
// site.clone puts the site at Target, a second SiteSpec. Secrets in it (the
// database admin and site passwords) are never logged or printed.
type Job struct {
	Version int    `json:"version"`
	Task    string `json:"task"`              // task type, e.g. "site.install"
	TaskID  int64  `json:"task_id,omitempty"` // the front end's task id, for logs

	// Server is the server a server task runs on (server.verify,
	// server.delete); its services are in Site.
	Server string `json:"server,omitempty"`

	Site SiteSpec `json:"site,omitzero"`
	// Target is where a site.migrate or site.clone puts the site. Nil: the
	// site stays where it is. Site is where its data comes from.
	Target *SiteSpec `json:"target,omitempty"`

	System SystemSpec `json:"system,omitzero"`
	Backup BackupSpec `json:"backup,omitzero"`
	ACME   ACMESpec   `json:"acme,omitzero"`

	// Options holds task-specific options that have no field above.
	Options map[string]string `json:"options,omitempty"`
}

// SiteSpec is a site where it lives: its own settings, its platform, its web
// server and its database server.
type SiteSpec struct {
	Domain   string     `json:"domain,omitempty"`
	Aliases  []string   `json:"aliases,omitempty"`
	Redirect bool       `json:"redirect,omitempty"`
	Profile  string     `json:"profile,omitempty"`
	Language string     `json:"language,omitempty"`
	Client   ClientSpec `json:"client,omitzero"`
	Status   string     `json:"status,omitempty"`
	// DB is the site's own database and the account it connects with.
	DB    SiteDBSpec `json:"db,omitzero"`
	HTTPS HTTPSSpec  `json:"https,omitzero"`
	// Install is what a site.install sets up.
	Install InstallSpec `json:"install,omitzero"`
	// PHP is the PHP version the site runs (MAJOR.MINOR); empty: the
	// server's default (the newest php-fpm found).
	PHP string `json:"php,omitempty"`
	// Isolation is entities.IsolationSite (a Unix user and php-fpm pool
	// of its own) or entities.IsolationShared (empty: the server's shared
	// pool, as the web server's user).
	Isolation string `json:"isolation,omitempty"`

	Platform PlatformSpec `json:"platform,omitzero"`
	Web      WebSpec      `json:"web,omitzero"`
	DBServer DBSpec       `json:"db_server,omitzero"`
}

// ClientSpec is the client a site belongs to.
type ClientSpec struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// SiteDBSpec is a site's database: its name, the user it connects as and
// that user's password (secret). The name may be empty for a target (the
// back end picks a free one).
type SiteDBSpec struct {
	Name     string `json:"name,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// GrantHost is the address the web server connects from; the user's
	// grants are limited to it ("localhost" when web and database share a
	// machine).
	GrantHost string `json:"grant_host,omitempty"`
}

// HTTPSSpec is how a site answers HTTPS.
type HTTPSSpec struct {
	Mode       string `json:"mode,omitempty"`        // off, on or required
	CertFile   string `json:"cert_file,omitempty"`   // the certificate chain, on the web server
	KeyFile    string `json:"key_file,omitempty"`    // its private key (0600), on the web server
	CertSource string `json:"cert_source,omitempty"` // acme or admin (brought with aegir site cert)
}

// InstallSpec is what a site.install sets up. Empty: the domain; admin; the
// client's email, else admin@DOMAIN. WordPress: the blog's name and the
// first user; Drupal: the site name and user 1.
type InstallSpec struct {
	Title      string `json:"title,omitempty"`
	AdminUser  string `json:"admin_user,omitempty"`
	AdminEmail string `json:"admin_email,omitempty"`
}

// PlatformSpec is a code base on its web server.
type PlatformSpec struct {
	Name        string `json:"name,omitempty"`
	Root        string `json:"root,omitempty"`
	Type        string `json:"type,omitempty"` // drupal or wordpress; empty: detect
	CoreVersion string `json:"core_version,omitempty"`
	Drush       string `json:"drush,omitempty"` // path to the platform's drush, when it is to be used
}

// WebSpec is a web server: how to reach its machine and its web service.
type WebSpec struct {
	ServerRef
	Home       string `json:"home,omitempty"` // the server's aegir home (local: the master's home)
	Type       string `json:"type,omitempty"` // nginx or apache
	Port       int    `json:"port,omitempty"`
	HTTPSPort  int    `json:"https_port,omitempty"`
	TestCmd    string `json:"test_cmd,omitempty"`
	RestartCmd string `json:"restart_cmd,omitempty"`
	PHPFPM     string `json:"php_fpm,omitempty"`   // socket path or host:port
	ListenIP   string `json:"listen_ip,omitempty"` // address the vhosts listen on; empty: all
	// ReloadPending: a reload failed after changes were written; this task
	// reloads first.
	ReloadPending bool `json:"reload_pending,omitempty"`
}

// DBSpec is a database server: its machine (for SSH) and its service.
type DBSpec struct {
	Machine ServerRef `json:"machine,omitzero"`
	Type    string    `json:"type,omitempty"` // mariadb, mysql or postgresql
	Host    string    `json:"host,omitempty"` // where clients connect
	Port    int       `json:"port,omitempty"`

	AdminUser         string `json:"admin_user,omitempty"`
	AdminPassword     string `json:"admin_password,omitempty"` // secret; usually read from the file below
	AdminPasswordFile string `json:"admin_password_file,omitempty"`
	// Tunnel makes the admin connection go through an SSH tunnel to the
	// machine (Host and Port as seen from there), for a database that
	// listens only on that machine's loopback or that a firewall keeps
	// from the master.
	Tunnel bool `json:"tunnel,omitempty"`
}

// SystemSpec is the front end's settings of the web servers' system.
type SystemSpec struct {
	WebUser  string `json:"web_user,omitempty"` // the web server's system user, e.g. www-data
	WebGroup string `json:"web_group,omitempty"`
	// FPM is how the web servers' php-fpm takes the pools of isolated
	// sites.
	FPM FPMSpec `json:"php_fpm,omitzero"`
}

// FPMSpec is where the pools of isolated sites go and how php-fpm is
// tested and reloaded. "{version}" in a value is the pool's PHP version
// (8.2). Empty values are the defaults of Debian's php-fpm packages.
type FPMSpec struct {
	PoolDir   string `json:"pool_dir,omitempty"`   // default /etc/php/{version}/fpm/pool.d
	TestCmd   string `json:"test_cmd,omitempty"`   // default php-fpm{version} -t
	ReloadCmd string `json:"reload_cmd,omitempty"` // default kill -USR2 of /run/php/php{version}-fpm.pid
	// RuntimeDir holds the sockets of the pools (fpm/) and each site's
	// temporary files, sessions and logs (sites/DOMAIN/); default
	// /var/lib/aegir.
	RuntimeDir string `json:"runtime_dir,omitempty"`
	// DisableFunctions is the pools' disable_functions, comma-separated.
	DisableFunctions string `json:"disable_functions,omitempty"`
	// LogrotateFile is the logrotate configuration aegir writes for the
	// sites' logs (RuntimeDir/sites/*/logs/*.log); default
	// /etc/logrotate.d/aegir.
	LogrotateFile string `json:"logrotate_file,omitempty"`
	// Helper is the privileged helper on remote servers whose SSH user
	// is not root (docs/remote-servers.md); default
	// /usr/local/sbin/aegir-priv.
	Helper string `json:"helper,omitempty"`
}

// BackupSpec is where backups go, and a backup to restore or verify.
type BackupSpec struct {
	Dir  string `json:"dir,omitempty"`  // on the master
	Path string `json:"path,omitempty"` // a backup to restore or verify
	// SHA256 of the file at Path, recorded when it was written; a restore
	// checks it first.
	SHA256 string `json:"sha256,omitempty"`
}

// ACMESpec is the ACME CA for HTTPS certificates (docs/https.md).
type ACMESpec struct {
	Directory string `json:"directory,omitempty"` // production, staging or a directory URL
	Email     string `json:"email,omitempty"`
	CAFile    string `json:"ca_file,omitempty"`    // extra PEM roots for the directory's own TLS (on the master)
	RenewDays int    `json:"renew_days,omitempty"` // renew this many days before expiry (default 30)
}

// ServerRef is how to reach one server.
type ServerRef struct {
	Name          string `json:"name,omitempty"`
	Host          string `json:"host,omitempty"`
	SSHUser       string `json:"ssh_user,omitempty"`
	SSHPort       int    `json:"ssh_port,omitempty"`
	SSHKey        string `json:"ssh_key,omitempty"`
	AcceptHostKey bool   `json:"accept_host_key,omitempty"`
}

// IsLocal reports whether the server is this machine
// (entities.IsLocalMachine).
func (s ServerRef) IsLocal() bool { return entities.IsLocalMachine(s.Host, s.SSHUser) }

// DeployUser is the web server's SSH user when the server is remote and
// that user is not root; else "". Such a user has no sudo rule of its
// own: it is in the web server's group, and what it may not do goes
// through the privileged helper (docs/remote-servers.md).
func (c *Job) DeployUser() string {
	w := c.Site.Web.ServerRef
	if w.IsLocal() || w.SSHUser == "" || w.SSHUser == "root" {
		return ""
	}
	return w.SSHUser
}

// PHPUser is who runs PHP on the web server for a shared site (installers,
// checks, php-cli to php-fpm): the web server's user, or the deploy user
// (DeployUser), which reaches php-fpm's socket through the web server's
// group, without sudo.
func (c *Job) PHPUser() string {
	if d := c.DeployUser(); d != "" {
		return d
	}
	return c.System.WebUser
}

// Web is the reference of the web server.
func (c *Job) Web() ServerRef { return c.Site.Web.ServerRef }

// DB is the reference of the database server's machine.
func (c *Job) DB() ServerRef { return c.Site.DBServer.Machine }

// ConfigDir is the directory on the web server that holds aegir's web
// server configuration for it: HOME/config/SERVER.
func (c *Job) ConfigDir() string {
	return path.Join(c.Site.Web.Home, "config", c.Site.Web.Name)
}

// CertDir is where the site's certificate and key are on its web server:
// CONFIGDIR/ssl/DOMAIN.
func (c *Job) CertDir() string { return path.Join(c.ConfigDir(), "ssl", c.Site.Domain) }

// Opt returns an option, or def when it is not set.
func (c *Job) Opt(key, def string) string {
	if v, ok := c.Options[key]; ok {
		return v
	}
	return def
}

// DecodeJob reads a JSON job, refusing unknown keys so that a typo in a
// hand-written job is an error rather than a silent default, and a job of
// another version (the flat form of version 1 says what changed).
func DecodeJob(r io.Reader) (*Job, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	// A key given twice would be read as its last value by this decoder
	// and as its first by others: one context, two meanings.
	if k := duplicateKey(data); k != "" {
		return nil, fmt.Errorf("context: key %q is given twice: give each key once", k)
	}
	if err := checkVersion(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Job
	if err := dec.Decode(&c); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("context: empty: give one JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("context: the JSON object is cut short: give it whole")
		}
		return nil, fmt.Errorf("context: %w", err)
	}
	// One object and nothing after it: trailing data is a job cut or
	// pasted wrong, not something to ignore.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("context: data after the JSON object: give exactly one object")
	}
	return &c, nil
}

// checkVersion refuses a job whose "version" is not JobVersion. A job
// without one is the flat form of version 1 when it has its keys.
func checkVersion(data []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil // decoding says what is wrong
	}
	raw, ok := top["version"]
	if !ok {
		for _, k := range slices.Sorted(maps.Keys(top)) {
			if strings.HasPrefix(k, "site_") || strings.HasPrefix(k, "web_") || strings.HasPrefix(k, "db_") ||
				strings.HasPrefix(k, "platform_") || strings.HasPrefix(k, "target_") || strings.HasPrefix(k, "http_") || k == "extra" {
				return fmt.Errorf("context: key %q is of the flat form of version 1, which is no longer read: since version %d a job nests its keys (site.domain, site.web.host, site.db_server.host, target.platform.root, options; docs/json.md) and says \"version\": %d", k, JobVersion, JobVersion)
			}
		}
		return fmt.Errorf("context: key \"version\" is missing: give \"version\": %d (docs/json.md)", JobVersion)
	}
	var v int
	if json.Unmarshal(raw, &v) != nil || v != JobVersion {
		return fmt.Errorf("context: \"version\" is %s: this aegir reads version %d (docs/json.md)", string(raw), JobVersion)
	}
	return nil
}

// duplicateKey is a key that the JSON object in data has twice, or "" (for
// none, and for data that is no object: decoding says what is wrong then).
func duplicateKey(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return ""
		}
		if seen[k] {
			return k
		}
		seen[k] = true
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return ""
		}
	}
	return ""
}

// Check validates the fields that name files and directories on the
// servers: server and platform names (they name config/SERVER), the aegir
// homes, platform roots, drush and the backup directory. Every task runs
// it first: a job may come from anyone who can run aegir provision.
func (c *Job) Check() error {
	tg := c.Target
	if tg == nil {
		tg = &SiteSpec{}
	}
	for _, f := range []struct{ key, value string }{{"server", c.Server}, {"site.web.name", c.Site.Web.Name}, {"site.db_server.machine.name", c.Site.DBServer.Machine.Name},
		{"site.platform.name", c.Site.Platform.Name}, {"target.web.name", tg.Web.Name}, {"target.db_server.machine.name", tg.DBServer.Machine.Name}, {"target.platform.name", tg.Platform.Name}} {
		if f.value != "" {
			if err := entities.ValidateName(f.key, f.value); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct{ key, value, kind string }{{"system.web_user", c.System.WebUser, "user"}, {"system.web_group", c.System.WebGroup, "group"}} {
		if f.value != "" {
			if err := entities.ValidateSystemName(f.key, f.value, f.kind); err != nil {
				return err
			}
		}
	}
	for _, sp := range []struct {
		key  string
		site *SiteSpec
	}{{"site", &c.Site}, {"target", tg}} {
		if err := entities.ValidatePHPVersion(sp.key+".php", sp.site.PHP); err != nil {
			return err
		}
		if sp.site.Isolation != "" {
			if err := entities.ValidateOneOf(sp.key+".isolation", sp.site.Isolation, entities.Isolations...); err != nil {
				return err
			}
		}
	}
	// Paths the web server's configuration names unquoted keep its rule;
	// the others are only ever quoted.
	for _, f := range []struct {
		key, value string
		check      func(field, p string) error
	}{{"site.web.home", c.Site.Web.Home, entities.ValidateServerPath}, {"target.web.home", tg.Web.Home, entities.ValidateServerPath},
		{"site.platform.root", c.Site.Platform.Root, entities.ValidateServerPath}, {"target.platform.root", tg.Platform.Root, entities.ValidateServerPath},
		{"site.platform.drush", c.Site.Platform.Drush, entities.ValidateAbsPath}, {"target.platform.drush", tg.Platform.Drush, entities.ValidateAbsPath},
		{"backup.dir", c.Backup.Dir, entities.ValidateAbsPath}} {
		if f.value != "" {
			if err := f.check(f.key, f.value); err != nil {
				return err
			}
		}
	}
	return nil
}

// HasTarget reports whether the job names a target (site.migrate,
// site.clone).
func (c *Job) HasTarget() bool {
	return c.Target != nil && c.Target.Platform.Root != "" && c.Target.Domain != ""
}

// AtTarget is the job of the site at its target: c with the target in place
// of the site. The target's database name may be empty (to be chosen).
func (c *Job) AtTarget() *Job {
	t := *c
	t.Site = *c.Target
	t.Target = nil
	return &t
}

// TaskRef is the job's task as the target of an Action (task.retry,
// task.log): its id, or ID when the job has none (a job run by hand).
func (j *Job) TaskRef() string {
	if j == nil || j.TaskID == 0 {
		return "ID"
	}
	return fmt.Sprint(j.TaskID)
}
