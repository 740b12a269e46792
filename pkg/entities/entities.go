// Package entities is aegir's data model: clients, servers and their
// services, platforms, sites with aliases, tasks with their logs, and
// packages with their releases and instances. Types and validation only;
// no IO.
package entities

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Statuses of servers and platforms, and of a server's services
// (enabled, or error when its last verify failed).
const (
	StatusQueued  = "queued"
	StatusEnabled = "enabled"
	StatusLocked  = "locked"
	StatusDeleted = "deleted"
	StatusError   = "error"
)

// Statuses of sites (queued and deleted shared with the above).
const (
	SiteQueued    = "queued"
	SiteInstalled = "installed"
	SiteDisabled  = "disabled"
	SiteDeleted   = "deleted"
	SiteMigrating = "migrating"
)

// Statuses of tasks.
const (
	TaskQueued     = "queued"
	TaskProcessing = "processing"
	TaskSuccess    = "success"
	TaskWarning    = "warning"
	TaskError      = "error"
	TaskCancelled  = "cancelled"
)

// TaskStatuses lists every task status, in lifecycle order.
var TaskStatuses = []string{TaskQueued, TaskProcessing, TaskSuccess, TaskWarning, TaskError, TaskCancelled}

// SiteStatuses lists every site status.
var SiteStatuses = []string{SiteQueued, SiteInstalled, SiteDisabled, SiteDeleted, SiteMigrating}

// Service kinds and types.
const (
	KindHTTP = "http"
	KindDB   = "db"

	TypeNginx      = "nginx"
	TypeApache     = "apache"
	TypeMariaDB    = "mariadb"
	TypeMySQL      = "mysql"
	TypePostgreSQL = "postgresql"
)

// ServiceTypes maps each service kind to its types.
var ServiceTypes = map[string][]string{
	KindHTTP: {TypeNginx, TypeApache},
	KindDB:   {TypeMariaDB, TypeMySQL, TypePostgreSQL},
}

// Platform types: the applications aegir hosts. Each has its driver, a
// package under pkg/provision/app.
const (
	PlatformDrupal    = "drupal"
	PlatformWordPress = "wordpress"
)

// PlatformTypes are the platform types, as the command line offers them.
var PlatformTypes = []string{PlatformDrupal, PlatformWordPress}

// HTTPS modes of a site.
const (
	HTTPSOff      = "off"
	HTTPSOn       = "on"       // answer on HTTP and HTTPS
	HTTPSRequired = "required" // HTTP answers 301 to HTTPS (except ACME challenges); HSTS
)

// HTTPSModes are the HTTPS modes, in the order help text lists them.
var HTTPSModes = []string{HTTPSOff, HTTPSOn, HTTPSRequired}

// Target kinds of tasks.
const (
	TargetServer   = "server"
	TargetPlatform = "platform"
	TargetSite     = "site"
	TargetBackup   = "backup"
)

// Task types: what the back end can do. Each maps to a provision task.
const (
	TaskServerVerify   = "server.verify"
	TaskPlatformVerify = "platform.verify"
	TaskPlatformImport = "platform.import"
	TaskPlatformDelete = "platform.delete"
	TaskSiteInstall    = "site.install"
	TaskSiteVerify     = "site.verify"
	TaskSiteDisable    = "site.disable"
	TaskSiteEnable     = "site.enable"
	TaskSiteDelete     = "site.delete"
	TaskSiteLoginReset = "site.login-reset"
	TaskSiteBackup     = "site.backup"
	TaskSiteRestore    = "site.restore"
	TaskSiteMigrate    = "site.migrate"
	TaskSiteClone      = "site.clone"
	TaskSiteSync       = "site.sync"
	TaskSiteCron       = "site.cron"
	TaskSiteStats      = "site.stats"
	TaskSiteHealth     = "site.health" // the health check of a verify alone (the health queue)
	TaskSiteUpdateDB   = "site.updatedb"
	TaskBackupDelete   = "backup.delete"
	// TaskPlatformMigrate moves a platform's sites to another platform in
	// waves: the front end's task, run by the front end itself (each site
	// a site.migrate child), not by the back end.
	TaskPlatformMigrate = "platform.migrate"
)

// Client is the person or group that runs sites.
type Client struct {
	ID      int64     `json:"-" yaml:"-"`
	Name    string    `json:"name" yaml:"name"`
	Email   string    `json:"email" yaml:"email"`
	Sites   int       `json:"sites" yaml:"sites"`
	Created time.Time `json:"created" yaml:"created"`
	// Quotas (0: no limit) and what the client uses of them: its live
	// sites (Sites), the disk its sites' databases and files take as the
	// statistics queue last measured them, and the backups its sites keep.
	QuotaSites   int64 `json:"quota_sites" yaml:"quota_sites"`
	QuotaDisk    int64 `json:"quota_disk" yaml:"quota_disk" table:"bytes"`
	QuotaBackups int64 `json:"quota_backups" yaml:"quota_backups"`
	DiskUsed     int64 `json:"disk_used" yaml:"disk_used" table:"bytes"`
	Backups      int64 `json:"backups" yaml:"backups"`
}

// Server is a machine that provides services.
type Server struct {
	ID            int64      `json:"-" yaml:"-"`
	Name          string     `json:"name" yaml:"name"`
	Host          string     `json:"host" yaml:"host"`
	SSHUser       string     `json:"ssh_user" yaml:"ssh_user"`
	SSHPort       int        `json:"ssh_port" yaml:"ssh_port"`
	SSHKey        string     `json:"ssh_key" yaml:"ssh_key"`
	AcceptHostKey bool       `json:"accept_host_key" yaml:"accept_host_key"`
	RemoteHome    string     `json:"remote_home" yaml:"remote_home"`
	Status        string     `json:"status" yaml:"status"`
	Services      []Service  `json:"services" yaml:"services"`
	Created       time.Time  `json:"created" yaml:"created"`
	Verified      *time.Time `json:"verified" yaml:"verified"`
}

// IsLocal reports whether the server is the machine aegir runs on
// (IsLocalMachine).
func (s *Server) IsLocal() bool { return IsLocalMachine(s.Host, s.SSHUser) }

// IsLocalMachine is the one rule of what a server on this machine is, for
// the front end and the back end alike: no SSH user, and host localhost,
// 127.0.0.1, ::1 or none (a job written by hand may leave it out). Any
// other host, or any SSH user, is reached over SSH.
func IsLocalMachine(host, sshUser string) bool {
	return sshUser == "" && (host == "localhost" || host == "127.0.0.1" || host == "::1" || host == "")
}

// IsLoopbackHost reports whether h names the machine it is read on: a
// loopback address, localhost, or a unix socket path.
func IsLoopbackHost(h string) bool {
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return h == "localhost" || strings.HasPrefix(h, "/") || ip != nil && ip.IsLoopback()
}

// SameMachine reports whether s and o are one machine: one server, the
// same host, or both this machine under a loopback name.
func (s *Server) SameMachine(o *Server) bool {
	return s.Name == o.Name || s.Host == o.Host || IsLoopbackHost(s.Host) && IsLoopbackHost(o.Host)
}

// DBReachableFrom says whether a site on the web server web can use the
// database service of s at its DBHost: "" when it can, else why not. A
// loopback address or a socket is the web server itself to a site on
// another machine.
func (s *Server) DBReachableFrom(web *Server) string {
	for _, sv := range s.Services {
		if sv.Kind == KindDB && IsLoopbackHost(sv.DBHost) && !s.SameMachine(web) {
			return fmt.Sprintf("listens on %s (its --db-host), which to a site on %s (%s) is %s itself", sv.DBHost, web.Name, web.Host, web.Name)
		}
	}
	return ""
}

// Service is one service (web or database) that a server runs.
type Service struct {
	ID     int64  `json:"-" yaml:"-"`
	Server string `json:"server" yaml:"server"`
	Kind   string `json:"kind" yaml:"kind"`
	Type   string `json:"type" yaml:"type"`
	Status string `json:"status" yaml:"status"`
	// Version is what the last verify found.
	Version string `json:"version" yaml:"version"`
	Port    int    `json:"port" yaml:"port"`
	// HTTP settings.
	HTTPSPort  int    `json:"https_port,omitempty" yaml:"https_port,omitempty"`
	TestCmd    string `json:"test_cmd,omitempty" yaml:"test_cmd,omitempty"`
	RestartCmd string `json:"restart_cmd,omitempty" yaml:"restart_cmd,omitempty"`
	PHPFPM     string `json:"php_fpm,omitempty" yaml:"php_fpm,omitempty"`
	ListenIP   string `json:"listen_ip,omitempty" yaml:"listen_ip,omitempty"`
	// PHPVersions are the php-fpm versions the last verify found (http).
	PHPVersions []string `json:"php_versions,omitempty" yaml:"php_versions,omitempty"`
	// ReloadPending: a reload failed after changes were written; the next
	// task on the server reloads.
	ReloadPending bool `json:"reload_pending,omitempty" yaml:"reload_pending,omitempty"`
	// DB settings. The admin password itself is never stored here: only the
	// file that holds it.
	DBHost            string `json:"db_host,omitempty" yaml:"db_host,omitempty"`
	AdminUser         string `json:"admin_user,omitempty" yaml:"admin_user,omitempty"`
	AdminPasswordFile string `json:"admin_password_file,omitempty" yaml:"admin_password_file,omitempty"`
	// DBTunnel: aegir reaches the database as its admin through an SSH
	// tunnel to the server (for one that listens only on its loopback).
	DBTunnel bool       `json:"db_tunnel,omitempty" yaml:"db_tunnel,omitempty"`
	Message  string     `json:"message" yaml:"message"`
	Verified *time.Time `json:"verified" yaml:"verified"`
}

// Platform is a code base on a web server on which sites are published.
type Platform struct {
	ID          int64  `json:"-" yaml:"-"`
	Name        string `json:"name" yaml:"name"`
	Server      string `json:"server" yaml:"server"`
	Root        string `json:"root" yaml:"root"`
	Type        string `json:"type" yaml:"type"`
	CoreVersion string `json:"core_version" yaml:"core_version"`
	Docroot     string `json:"docroot" yaml:"docroot"`
	Drush       string `json:"drush" yaml:"drush"`
	// Status is queued, enabled (or locked: enabled, Locked) or deleted.
	Status string `json:"status" yaml:"status"`
	// Locked: the platform takes no new sites (install, clone, migrate
	// onto it); verify, migrate away and delete still run.
	Locked bool `json:"locked" yaml:"locked"`
	// A platform aegir builds: the git repository it is cloned from, the
	// tag or branch asked for (empty: the default branch), the commit
	// checked out, and the composer step after it (ComposerInstall, or
	// ComposerProject and the package).
	GitURL   string     `json:"git_url,omitempty" yaml:"git_url,omitempty"`
	GitRef   string     `json:"git_ref,omitempty" yaml:"git_ref,omitempty"`
	Commit   string     `json:"commit,omitempty" yaml:"commit,omitempty"`
	Composer string     `json:"composer,omitempty" yaml:"composer,omitempty"`
	Sites    int        `json:"sites" yaml:"sites"`
	Created  time.Time  `json:"created" yaml:"created"`
	Verified *time.Time `json:"verified" yaml:"verified"`
}

// How a platform built from git is finished (Platform.Composer):
// composer install in the checkout, or composer create-project of a
// package (ComposerProject + "PKG[:VERSION]").
const (
	ComposerInstall = "install"
	ComposerProject = "project:"
)

// Site is one hosted site.
type Site struct {
	ID       int64    `json:"-" yaml:"-"`
	Domain   string   `json:"domain" yaml:"domain"`
	Aliases  []string `json:"aliases" yaml:"aliases"`
	Redirect bool     `json:"redirect" yaml:"redirect"`
	Platform string   `json:"platform" yaml:"platform"`
	Server   string   `json:"server" yaml:"server"`
	Client   string   `json:"client" yaml:"client"`
	DBServer string   `json:"db_server" yaml:"db_server"`
	DBName   string   `json:"db_name" yaml:"db_name"`
	DBUser   string   `json:"db_user" yaml:"db_user"`
	// DBGrantHost is the host the site's database user is granted for
	// (its web server's address as the database server sees it).
	DBGrantHost string `json:"db_grant_host" yaml:"db_grant_host"`
	// DBPassword is the site's own database password: kept in the 0600
	// state file for the back end, never printed.
	DBPassword string `json:"-" yaml:"-"`
	Profile    string `json:"profile" yaml:"profile"`
	Language   string `json:"language" yaml:"language"`
	HTTPS      string `json:"https" yaml:"https"`
	// PHP is the PHP version the site runs; empty: its server's default.
	PHP string `json:"php" yaml:"php"`
	// Isolation is IsolationSite or IsolationShared.
	Isolation string `json:"isolation" yaml:"isolation"`
	// UnixUser is the Unix user the site's PHP runs as: its own
	// (SiteUnixUser) when isolated, else "" (the web server's).
	UnixUser string     `json:"unix_user" yaml:"unix_user"`
	Status   string     `json:"status" yaml:"status"`
	Created  time.Time  `json:"created" yaml:"created"`
	LastCron *time.Time `json:"last_cron" yaml:"last_cron"`
	Stats    *SiteStats `json:"stats" yaml:"stats"`
	// Health is what the site's last install, verify, enable or disable found; nil: never checked.
	Health     *SiteHealth  `json:"health" yaml:"health"`
	Cert       *Certificate `json:"cert" yaml:"cert"` // filled by site show
	PlatformID int64        `json:"-" yaml:"-"`
	DBServerID int64        `json:"-" yaml:"-"`
}

// SiteStats are a site's statistics as the statistics queue last read
// them. DBBytes is the size of the site's database on its database server,
// FilesBytes that of its own files on its web server (0: not measured).
type SiteStats struct {
	Domain      string    `json:"domain" yaml:"domain"`
	Users       int64     `json:"users" yaml:"users"`
	ActiveUsers int64     `json:"active_users" yaml:"active_users"`
	Posts       int64     `json:"posts" yaml:"posts"`
	Comments    int64     `json:"comments" yaml:"comments"`
	DBBytes     int64     `json:"db_bytes" yaml:"db_bytes"`
	FilesBytes  int64     `json:"files_bytes" yaml:"files_bytes"`
	Updated     time.Time `json:"updated" yaml:"updated"`
}

// Health statuses of a site.
const (
	HealthOK    = "ok"
	HealthError = "error"
)

// SiteHealth is how a site answered its last verify: through its web
// server, with its Host header, as its status says it should (installed:
// 200 or a redirect; disabled: 503), its database user logging in.
type SiteHealth struct {
	Status   string    `json:"status" yaml:"status"`       // ok or error
	HTTPCode int       `json:"http_code" yaml:"http_code"` // 0: no answer
	TimeMS   int64     `json:"time_ms" yaml:"time_ms"`     // the answer's time
	Checked  time.Time `json:"checked" yaml:"checked"`
	Error    string    `json:"error" yaml:"error"` // why not ok, in one line
}

// ListCell renders the health in a list's table cell: "ok 200", "error
// 502". (A show renders every key.)
func (h *SiteHealth) ListCell() string {
	if h == nil {
		return ""
	}
	if h.HTTPCode == 0 {
		return h.Status
	}
	return fmt.Sprintf("%s %d", h.Status, h.HTTPCode)
}

// CellString renders statistics in one table cell.
func (s *SiteStats) CellString() string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%d users (%d active), %d posts, %d comments, %s database, %s files", s.Users, s.ActiveUsers, s.Posts, s.Comments,
		FormatSize(s.DBBytes), FormatSize(s.FilesBytes))
}

// Certificate sources.
const (
	CertACME  = "acme"  // issued by the ACME CA, renewed by the cert queue
	CertAdmin = "admin" // brought by the administrator (aegir site cert --cert --key)
)

// Certificate is a site's HTTPS certificate (aegir cert list, site show).
// One with no NotAfter is not issued yet: its first issuance failed and
// the cert queue retries it.
type Certificate struct {
	SiteID    int64      `json:"-" yaml:"-"`
	Domain    string     `json:"domain" yaml:"domain"`
	Names     []string   `json:"names" yaml:"names"`
	Issuer    string     `json:"issuer" yaml:"issuer"`
	Source    string     `json:"source" yaml:"source"`
	NotBefore *time.Time `json:"not_before" yaml:"not_before"`
	NotAfter  *time.Time `json:"not_after" yaml:"not_after"`
	// DaysLeft is filled by the front end (it depends on the clock).
	DaysLeft *int   `json:"days_left" yaml:"days_left"`
	CertPath string `json:"cert_path" yaml:"cert_path"` // on the web server
	KeyPath  string `json:"key_path" yaml:"key_path"`
	// RenewAfter is when the cert queue renews it (or retries a failure).
	RenewAfter *time.Time `json:"renew_after" yaml:"renew_after"`
	Failures   int        `json:"failures" yaml:"failures"`
	LastError  string     `json:"last_error" yaml:"last_error"`
	Updated    time.Time  `json:"updated" yaml:"updated"`
}

// TableColumns are the default columns of aegir cert list.
func (Certificate) TableColumns() []string {
	return []string{"domain", "names", "issuer", "not_after", "days_left", "source", "failures"}
}

// CellString renders a certificate in one table cell.
func (c *Certificate) CellString() string {
	if c == nil {
		return ""
	}
	if c.NotAfter == nil || c.DaysLeft == nil {
		return fmt.Sprintf("none yet (%d failed attempts; aegir cert list --format json)", c.Failures)
	}
	s := fmt.Sprintf("%s, %s, until %s (%d days)", strings.Join(c.Names, " "), c.Issuer, c.NotAfter.Format("2006-01-02"), *c.DaysLeft)
	if c.Failures > 0 {
		s += fmt.Sprintf(", %d failed renewals", c.Failures)
	}
	return s
}

// Task is one change for the back end to carry out, with its log.
type Task struct {
	ID         int64             `json:"id" yaml:"id"`
	Type       string            `json:"type" yaml:"type"`
	TargetKind string            `json:"target_kind" yaml:"target_kind"`
	TargetID   int64             `json:"-" yaml:"-"`
	Target     string            `json:"target" yaml:"target"`
	Status     string            `json:"status" yaml:"status"`
	Created    time.Time         `json:"created" yaml:"created"`
	Started    *time.Time        `json:"started" yaml:"started"`
	Finished   *time.Time        `json:"finished" yaml:"finished"`
	Error      string            `json:"error" yaml:"error"`
	Hint       string            `json:"hint" yaml:"hint"`
	Fix        []Action          `json:"fix,omitempty" yaml:"fix,omitempty"` // what the hint proposes, in order
	Attempt    int               `json:"attempt" yaml:"attempt"`
	Options    map[string]string `json:"options,omitempty" yaml:"options,omitempty"`
	LeaseUntil *time.Time        `json:"-" yaml:"-"`
	Worker     string            `json:"-" yaml:"-"`
	// Parent is the task that runs this one as a part of its own (a
	// platform migrate's site.migrate); 0: none.
	Parent int64 `json:"parent,omitempty" yaml:"parent,omitempty"`
	// Master is the one master that may run the task, among those that
	// share the state ("": any): the one whose backups directory holds
	// the archive it deletes or restores. The others pass over it, and
	// the later tasks of its target wait for it.
	Master string `json:"master,omitempty" yaml:"master,omitempty"`
}

// Levels of log lines, as kept in a task's log: the back end's, the
// dispatcher's and the front end's own lines.
const (
	LevelDebug   = "debug"
	LevelInfo    = "info"
	LevelCommand = "command" // a command that ran on a server
	LevelOutput  = "output"  // what a command printed
	LevelWarning = "warning"
	LevelError   = "error"
)

// LogLine is one line of a task's log: as the back end writes it in a
// result, and as the state keeps it.
type LogLine struct {
	Time    time.Time `json:"time" yaml:"time"`
	Level   string    `json:"level" yaml:"level"`
	Message string    `json:"message" yaml:"message"`
	// Fix is what the line proposes to do, as actions each front end
	// words as its own commands (the message is neutral prose).
	Fix []Action `json:"fix,omitempty" yaml:"fix,omitempty"`
}

// Package types.
const (
	PackageModule  = "module"
	PackageTheme   = "theme"
	PackageProfile = "profile"
	PackagePlugin  = "plugin"
	PackageCore    = "core"
)

// Package is an installable component (module, theme, profile, plugin).
// PackageInstance rows say where a release of it is installed.
type Package struct {
	Name     string `json:"name" yaml:"name"`
	Title    string `json:"title" yaml:"title"`
	Type     string `json:"type" yaml:"type"`
	Project  string `json:"project" yaml:"project"`
	Version  string `json:"version" yaml:"version"`
	Platform string `json:"platform,omitempty" yaml:"platform,omitempty"`
	Site     string `json:"site,omitempty" yaml:"site,omitempty"`
	Path     string `json:"path" yaml:"path"`
	Enabled  bool   `json:"enabled" yaml:"enabled"`
	Schema   string `json:"schema_version" yaml:"schema_version"`
}

// Backup is one archive of a site.
type Backup struct {
	ID   int64  `json:"id" yaml:"id"`
	Site string `json:"site" yaml:"site"`
	// SiteStatus is the status of the backup's site: deleted means the
	// site can be brought back from it (aegir site restore DOMAIN).
	SiteStatus string    `json:"site_status" yaml:"site_status"`
	Path       string    `json:"path" yaml:"path"`
	Size       int64     `json:"size" yaml:"size" table:"bytes"`
	SHA256     string    `json:"sha256" yaml:"sha256"`
	Created    time.Time `json:"created" yaml:"created"`
	// Master is the master whose backups directory holds the archive
	// ("" when recorded before masters were named).
	Master string `json:"master,omitempty" yaml:"master,omitempty"`
}

// TableColumns are the default table and CSV columns of each type; JSON
// and YAML carry every key.
func (Client) TableColumns() []string { return []string{"name", "email", "sites", "created"} }

// TableColumns: see Client.TableColumns.
func (Server) TableColumns() []string {
	return []string{"name", "host", "ssh_user", "status", "services", "verified"}
}

// TableColumns: see Client.TableColumns.
func (Service) TableColumns() []string {
	return []string{"server", "kind", "type", "status", "version", "port", "message"}
}

// TableColumns: see Client.TableColumns.
func (Platform) TableColumns() []string {
	return []string{"name", "server", "type", "core_version", "root", "status", "sites"}
}

// TableColumns: see Client.TableColumns.
func (Site) TableColumns() []string {
	return []string{"domain", "platform", "db_server", "client", "status", "health", "https", "aliases"}
}

// TableColumns: see Client.TableColumns.
func (Task) TableColumns() []string {
	return []string{"id", "type", "target", "status", "created", "finished", "error"}
}

// TableColumns: see Client.TableColumns.
func (LogLine) TableColumns() []string { return []string{"time", "level", "message"} }

// TableColumns: see Client.TableColumns.
func (Package) TableColumns() []string {
	return []string{"name", "type", "version", "project", "platform", "site", "enabled"}
}

// TableColumns: see Client.TableColumns.
func (Backup) TableColumns() []string {
	return []string{"id", "site", "site_status", "size", "created", "path"}
}

// CellString renders a service in one table cell: kind:type(status), and
// a web service's PHP versions: http:nginx(enabled) php 8.2,8.3.
func (s Service) CellString() string {
	v := s.Kind + ":" + s.Type
	if s.Status != "" {
		v += "(" + s.Status + ")"
	}
	if len(s.PHPVersions) > 0 {
		v += " php " + strings.Join(s.PHPVersions, ",")
	}
	return v
}

// Master is a master the state knows of (aegir master list): named by
// the worker of a task it ran, by a task tied to it or by a backup
// recorded on it.
type Master struct {
	Name string `json:"name" yaml:"name"`
	// LastSeen is when it last started or finished a task, RFC 3339
	// ("never": none).
	LastSeen string `json:"last_seen" yaml:"last_seen"`
	Holds    int    `json:"holds" yaml:"holds"`     // tasks it is running (processing)
	Waiting  int    `json:"waiting" yaml:"waiting"` // queued tasks tied to it
	Backups  int    `json:"backups" yaml:"backups"` // backups recorded in its backups directory
	This     bool   `json:"this" yaml:"this"`       // the master running the command
}

// TableColumns: see Client.TableColumns.
func (Master) TableColumns() []string {
	return []string{"name", "last_seen", "holds", "waiting", "backups", "this"}
}
