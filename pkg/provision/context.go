package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Context is the flat set of options a task runs with: the target and every
// relation the front end resolved for it. Keys are snake_case and prefixed by
// the entity they come from. Secrets in it (db_admin_password, site_db_password)
// are never logged or printed.
type Context struct {
	Task   string `json:"task"`              // task type, e.g. "site.install"
	TaskID int64  `json:"task_id,omitempty"` // the front end's task id, for logs

	// The server a server task runs on (server.verify, server.delete).
	Server string `json:"server,omitempty"`

	// Web server of the target (the platform's server).
	WebServer        string `json:"web_server,omitempty"`
	WebHost          string `json:"web_host,omitempty"`
	WebSSHUser       string `json:"web_ssh_user,omitempty"`
	WebSSHPort       int    `json:"web_ssh_port,omitempty"`
	WebSSHKey        string `json:"web_ssh_key,omitempty"`
	WebAcceptHostKey bool   `json:"web_accept_host_key,omitempty"`
	WebRemoteHome    string `json:"web_remote_home,omitempty"` // the server's aegir home (local: the master's home)
	HTTPType         string `json:"http_type,omitempty"`       // nginx or apache
	HTTPPort         int    `json:"http_port,omitempty"`
	HTTPSPort        int    `json:"https_port,omitempty"`
	HTTPTestCmd      string `json:"http_test_cmd,omitempty"`
	HTTPRestartCmd   string `json:"http_restart_cmd,omitempty"`
	PHPFPM           string `json:"php_fpm,omitempty"`        // socket path or host:port
	HTTPListenIP     string `json:"http_listen_ip,omitempty"` // address the vhosts listen on; empty: all
	// HTTPReloadPending: a reload failed after changes were written; this
	// task reloads first.
	HTTPReloadPending bool   `json:"http_reload_pending,omitempty"`
	WebUser           string `json:"web_user,omitempty"` // the web server's system user, e.g. www-data
	WebGroup          string `json:"web_group,omitempty"`

	// Database server of the target.
	DBServer            string `json:"db_server,omitempty"`
	DBServerHost        string `json:"db_server_host,omitempty"` // the DB server's machine (for SSH)
	DBSSHUser           string `json:"db_ssh_user,omitempty"`
	DBSSHPort           int    `json:"db_ssh_port,omitempty"`
	DBSSHKey            string `json:"db_ssh_key,omitempty"`
	DBAcceptHostKey     bool   `json:"db_accept_host_key,omitempty"`
	DBType              string `json:"db_type,omitempty"` // mariadb, mysql or postgresql
	DBHost              string `json:"db_host,omitempty"` // where clients connect
	DBPort              int    `json:"db_port,omitempty"`
	DBAdminUser         string `json:"db_admin_user,omitempty"`
	DBAdminPassword     string `json:"db_admin_password,omitempty"` // secret; usually read from the file below
	DBAdminPasswordFile string `json:"db_admin_password_file,omitempty"`
	// DBGrantHost is the address the web server connects from; grants are
	// limited to it ("localhost" when web and DB share a machine).
	DBGrantHost string `json:"db_grant_host,omitempty"`
	// DBTunnel makes the admin connection go through an SSH tunnel to the
	// database server's machine (DBHost and DBPort as seen from there),
	// for a database that listens only on that machine's loopback or that
	// a firewall keeps from the master.
	DBTunnel bool `json:"db_tunnel,omitempty"`

	// Platform of the target.
	Platform            string `json:"platform,omitempty"`
	PlatformRoot        string `json:"platform_root,omitempty"`
	PlatformType        string `json:"platform_type,omitempty"` // drupal or wordpress; empty: detect
	PlatformCoreVersion string `json:"platform_core_version,omitempty"`
	PlatformDrush       string `json:"platform_drush,omitempty"` // path to the platform's drush, when it is to be used

	// Site of the target.
	SiteDomain     string   `json:"site_domain,omitempty"`
	SiteAliases    []string `json:"site_aliases,omitempty"`
	SiteRedirect   bool     `json:"site_redirect,omitempty"`
	SiteProfile    string   `json:"site_profile,omitempty"`
	SiteLanguage   string   `json:"site_language,omitempty"`
	SiteClient     string   `json:"site_client,omitempty"`
	SiteClientMail string   `json:"site_client_email,omitempty"`
	SiteStatus     string   `json:"site_status,omitempty"`
	SiteDBName     string   `json:"site_db_name,omitempty"`
	SiteDBUser     string   `json:"site_db_user,omitempty"`
	SiteDBPassword string   `json:"site_db_password,omitempty"` // secret
	SiteHTTPS      string   `json:"site_https,omitempty"`       // off, on or required
	SiteCertFile   string   `json:"site_cert_file,omitempty"`   // the site's certificate chain, on the web server
	SiteKeyFile    string   `json:"site_key_file,omitempty"`    // its private key (0600), on the web server
	SiteCertSource string   `json:"site_cert_source,omitempty"` // acme or admin (brought with aegir site cert)
	// What a site.install sets up (the install task's options title,
	// admin_user and admin_email). Empty: the domain; admin; the client's
	// email, else admin@DOMAIN. WordPress: the blog's name and the first
	// user; Drupal: the site name and user 1.
	SiteTitle      string `json:"site_title,omitempty"`
	SiteAdminUser  string `json:"site_admin_user,omitempty"`
	SiteAdminEmail string `json:"site_admin_email,omitempty"`

	// ACME CA for HTTPS certificates (docs/https.md).
	ACMEDirectory string `json:"acme_directory,omitempty"` // production, staging or a directory URL
	ACMEEmail     string `json:"acme_email,omitempty"`
	ACMECAFile    string `json:"acme_ca_file,omitempty"`    // extra PEM roots for the directory's own TLS (on the master)
	ACMERenewDays int    `json:"acme_renew_days,omitempty"` // renew this many days before expiry (default 30)

	// Backups.
	BackupDir  string `json:"backup_dir,omitempty"`  // on the master
	BackupPath string `json:"backup_path,omitempty"` // a backup to restore or verify
	// BackupSHA256 is the SHA-256 of the file at BackupPath, recorded when
	// it was written; a restore checks it first.
	BackupSHA256 string `json:"backup_sha256,omitempty"`

	// Where a site.migrate or site.clone puts the site: the same keys as
	// above for the web server, database server, platform and site, with a
	// target_ prefix (Target and SetTarget). Empty: the site stays where it
	// is. The fields above are where the site's data comes from.
	TargetWebServer           string   `json:"target_web_server,omitempty"`
	TargetWebHost             string   `json:"target_web_host,omitempty"`
	TargetWebSSHUser          string   `json:"target_web_ssh_user,omitempty"`
	TargetWebSSHPort          int      `json:"target_web_ssh_port,omitempty"`
	TargetWebSSHKey           string   `json:"target_web_ssh_key,omitempty"`
	TargetWebAcceptHostKey    bool     `json:"target_web_accept_host_key,omitempty"`
	TargetWebRemoteHome       string   `json:"target_web_remote_home,omitempty"`
	TargetHTTPType            string   `json:"target_http_type,omitempty"`
	TargetHTTPPort            int      `json:"target_http_port,omitempty"`
	TargetHTTPSPort           int      `json:"target_https_port,omitempty"`
	TargetHTTPTestCmd         string   `json:"target_http_test_cmd,omitempty"`
	TargetHTTPRestartCmd      string   `json:"target_http_restart_cmd,omitempty"`
	TargetPHPFPM              string   `json:"target_php_fpm,omitempty"`
	TargetHTTPListenIP        string   `json:"target_http_listen_ip,omitempty"`
	TargetHTTPReloadPending   bool     `json:"target_http_reload_pending,omitempty"`
	TargetDBServer            string   `json:"target_db_server,omitempty"`
	TargetDBServerHost        string   `json:"target_db_server_host,omitempty"`
	TargetDBSSHUser           string   `json:"target_db_ssh_user,omitempty"`
	TargetDBSSHPort           int      `json:"target_db_ssh_port,omitempty"`
	TargetDBSSHKey            string   `json:"target_db_ssh_key,omitempty"`
	TargetDBAcceptHostKey     bool     `json:"target_db_accept_host_key,omitempty"`
	TargetDBType              string   `json:"target_db_type,omitempty"`
	TargetDBHost              string   `json:"target_db_host,omitempty"`
	TargetDBPort              int      `json:"target_db_port,omitempty"`
	TargetDBAdminUser         string   `json:"target_db_admin_user,omitempty"`
	TargetDBAdminPassword     string   `json:"target_db_admin_password,omitempty"` // secret
	TargetDBAdminPasswordFile string   `json:"target_db_admin_password_file,omitempty"`
	TargetDBGrantHost         string   `json:"target_db_grant_host,omitempty"`
	TargetDBTunnel            bool     `json:"target_db_tunnel,omitempty"`
	TargetPlatform            string   `json:"target_platform,omitempty"`
	TargetPlatformRoot        string   `json:"target_platform_root,omitempty"`
	TargetPlatformType        string   `json:"target_platform_type,omitempty"`
	TargetPlatformCoreVersion string   `json:"target_platform_core_version,omitempty"`
	TargetPlatformDrush       string   `json:"target_platform_drush,omitempty"`
	TargetSiteDomain          string   `json:"target_site_domain,omitempty"`
	TargetSiteAliases         []string `json:"target_site_aliases,omitempty"`
	TargetSiteRedirect        bool     `json:"target_site_redirect,omitempty"`
	TargetSiteHTTPS           string   `json:"target_site_https,omitempty"`
	TargetSiteStatus          string   `json:"target_site_status,omitempty"`
	TargetSiteDBName          string   `json:"target_site_db_name,omitempty"` // empty: the back end picks a free name
	TargetSiteDBUser          string   `json:"target_site_db_user,omitempty"`
	TargetSiteDBPassword      string   `json:"target_site_db_password,omitempty"` // secret

	// Extra holds task-specific options that have no field above.
	Extra map[string]string `json:"extra,omitempty"`
}

// ServerRef is how to reach one server.
type ServerRef struct {
	Name          string
	Host          string
	SSHUser       string
	SSHPort       int
	SSHKey        string
	AcceptHostKey bool
}

// IsLocal reports whether the server is this machine: host localhost (or a
// loopback name) with no SSH user.
func (s ServerRef) IsLocal() bool {
	return s.SSHUser == "" && (s.Host == "localhost" || s.Host == "127.0.0.1" || s.Host == "::1" || s.Host == "")
}

// Web is the reference of the web server.
func (c *Context) Web() ServerRef {
	return ServerRef{Name: c.WebServer, Host: c.WebHost, SSHUser: c.WebSSHUser, SSHPort: c.WebSSHPort, SSHKey: c.WebSSHKey, AcceptHostKey: c.WebAcceptHostKey}
}

// DB is the reference of the database server's machine.
func (c *Context) DB() ServerRef {
	return ServerRef{Name: c.DBServer, Host: c.DBServerHost, SSHUser: c.DBSSHUser, SSHPort: c.DBSSHPort, SSHKey: c.DBSSHKey, AcceptHostKey: c.DBAcceptHostKey}
}

// ConfigDir is the directory on the web server that holds aegir's web
// server configuration for it: HOME/config/SERVER.
func (c *Context) ConfigDir() string {
	return path.Join(c.WebRemoteHome, "config", c.WebServer)
}

// Opt returns an Extra option, or def when it is not set.
func (c *Context) Opt(key, def string) string {
	if v, ok := c.Extra[key]; ok {
		return v
	}
	return def
}

// DecodeContext reads a JSON context, refusing unknown keys so that a typo
// in a hand-written context is an error rather than a silent default.
func DecodeContext(r io.Reader) (*Context, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	// A key given twice would be read as its last value by this decoder
	// and as its first by others: one context, two meanings.
	if k := duplicateKey(data); k != "" {
		return nil, fmt.Errorf("context: key %q is given twice: give each key once", k)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Context
	if err := dec.Decode(&c); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("context: empty: give one JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("context: the JSON object is cut short: give it whole")
		}
		return nil, fmt.Errorf("context: %w", err)
	}
	// One object and nothing after it: trailing data is a context cut or
	// pasted wrong, not something to ignore.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("context: data after the JSON object: give exactly one object")
	}
	return &c, nil
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
// it first: a context may come from anyone who can run aegir provision.
func (c *Context) Check() error {
	for _, f := range []struct{ key, value string }{{"server", c.Server}, {"web_server", c.WebServer}, {"db_server", c.DBServer},
		{"platform", c.Platform}, {"target_web_server", c.TargetWebServer}, {"target_db_server", c.TargetDBServer}, {"target_platform", c.TargetPlatform}} {
		if f.value != "" {
			if err := entities.ValidateName(f.key, f.value); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct{ key, value, kind string }{{"web_user", c.WebUser, "user"}, {"web_group", c.WebGroup, "group"}} {
		if f.value != "" {
			if err := entities.ValidateSystemName(f.key, f.value, f.kind); err != nil {
				return err
			}
		}
	}
	// Paths the web server's configuration names unquoted keep its rule;
	// the others are only ever quoted.
	for _, f := range []struct {
		key, value string
		check      func(field, p string) error
	}{{"web_remote_home", c.WebRemoteHome, entities.ValidateServerPath}, {"target_web_remote_home", c.TargetWebRemoteHome, entities.ValidateServerPath},
		{"platform_root", c.PlatformRoot, entities.ValidateServerPath}, {"target_platform_root", c.TargetPlatformRoot, entities.ValidateServerPath},
		{"platform_drush", c.PlatformDrush, entities.ValidateAbsPath}, {"target_platform_drush", c.TargetPlatformDrush, entities.ValidateAbsPath},
		{"backup_dir", c.BackupDir, entities.ValidateAbsPath}} {
		if f.value != "" {
			if err := f.check(f.key, f.value); err != nil {
				return err
			}
		}
	}
	return nil
}

// HasTarget reports whether the context names a target (site.migrate,
// site.clone).
func (c *Context) HasTarget() bool { return c.TargetPlatformRoot != "" && c.TargetSiteDomain != "" }

// Target is the context of the site at its target: c with the target_
// fields in place of their own. The target's database name may be empty
// (to be chosen).
func (c *Context) Target() *Context {
	t := *c
	t.SiteAliases = append([]string(nil), c.TargetSiteAliases...)
	t.linkTarget(c, false)
	return &t
}

// SetTarget fills the target_ fields from t, the site's context at its
// target.
func (c *Context) SetTarget(t *Context) { c.linkTarget(t, true) }

// linkTarget copies o's own fields to c's target_ fields (toTarget), or
// o's target_ fields to c's own fields.
func (c *Context) linkTarget(o *Context, toTarget bool) {
	str := func(own, tgt *string) { copyField(own, tgt, toTarget) }
	num := func(own, tgt *int) { copyField(own, tgt, toTarget) }
	flag := func(own, tgt *bool) { copyField(own, tgt, toTarget) }
	// Each pair is (own field, target_ field); the contexts they belong to
	// depend on the direction.
	own, tgt := o, c
	if !toTarget {
		own, tgt = c, o
	}
	str(&own.WebServer, &tgt.TargetWebServer)
	str(&own.WebHost, &tgt.TargetWebHost)
	str(&own.WebSSHUser, &tgt.TargetWebSSHUser)
	num(&own.WebSSHPort, &tgt.TargetWebSSHPort)
	str(&own.WebSSHKey, &tgt.TargetWebSSHKey)
	flag(&own.WebAcceptHostKey, &tgt.TargetWebAcceptHostKey)
	str(&own.WebRemoteHome, &tgt.TargetWebRemoteHome)
	str(&own.HTTPType, &tgt.TargetHTTPType)
	num(&own.HTTPPort, &tgt.TargetHTTPPort)
	num(&own.HTTPSPort, &tgt.TargetHTTPSPort)
	str(&own.HTTPTestCmd, &tgt.TargetHTTPTestCmd)
	str(&own.HTTPRestartCmd, &tgt.TargetHTTPRestartCmd)
	str(&own.PHPFPM, &tgt.TargetPHPFPM)
	str(&own.HTTPListenIP, &tgt.TargetHTTPListenIP)
	flag(&own.HTTPReloadPending, &tgt.TargetHTTPReloadPending)
	str(&own.DBServer, &tgt.TargetDBServer)
	str(&own.DBServerHost, &tgt.TargetDBServerHost)
	str(&own.DBSSHUser, &tgt.TargetDBSSHUser)
	num(&own.DBSSHPort, &tgt.TargetDBSSHPort)
	str(&own.DBSSHKey, &tgt.TargetDBSSHKey)
	flag(&own.DBAcceptHostKey, &tgt.TargetDBAcceptHostKey)
	str(&own.DBType, &tgt.TargetDBType)
	str(&own.DBHost, &tgt.TargetDBHost)
	num(&own.DBPort, &tgt.TargetDBPort)
	str(&own.DBAdminUser, &tgt.TargetDBAdminUser)
	str(&own.DBAdminPassword, &tgt.TargetDBAdminPassword)
	str(&own.DBAdminPasswordFile, &tgt.TargetDBAdminPasswordFile)
	str(&own.DBGrantHost, &tgt.TargetDBGrantHost)
	flag(&own.DBTunnel, &tgt.TargetDBTunnel)
	str(&own.Platform, &tgt.TargetPlatform)
	str(&own.PlatformRoot, &tgt.TargetPlatformRoot)
	str(&own.PlatformType, &tgt.TargetPlatformType)
	str(&own.PlatformCoreVersion, &tgt.TargetPlatformCoreVersion)
	str(&own.PlatformDrush, &tgt.TargetPlatformDrush)
	str(&own.SiteDomain, &tgt.TargetSiteDomain)
	flag(&own.SiteRedirect, &tgt.TargetSiteRedirect)
	str(&own.SiteHTTPS, &tgt.TargetSiteHTTPS)
	str(&own.SiteStatus, &tgt.TargetSiteStatus)
	str(&own.SiteDBName, &tgt.TargetSiteDBName)
	str(&own.SiteDBUser, &tgt.TargetSiteDBUser)
	str(&own.SiteDBPassword, &tgt.TargetSiteDBPassword)
	if toTarget {
		c.TargetSiteAliases = append([]string(nil), o.SiteAliases...)
	}
}

// copyField copies *own to *tgt (toTarget) or *tgt to *own.
func copyField[T any](own, tgt *T, toTarget bool) {
	if toTarget {
		*tgt = *own
	} else {
		*own = *tgt
	}
}
