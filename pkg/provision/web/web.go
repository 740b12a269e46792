// Package web writes the virtual hosts of aegir's sites for nginx and
// apache, tests the web server's configuration and reloads it, on the
// machine aegir runs on or on a remote server (through an exec.Executor).
//
// # Layout on the web server
//
// Everything aegir writes lives in one directory per server, Config.ConfigDir
// (HOME/config/SERVER, where HOME is the aegir home on that server):
//
//	ConfigDir/nginx.conf          nginx: the one file the system's nginx includes
//	ConfigDir/apache.conf         apache: the one file the system's apache includes
//	ConfigDir/vhost.d/DOMAIN.conf one file per site
//	ConfigDir/acme-challenge/     default directory of ACME HTTP-01 answers
//
// The administrator adds one line to the system's web server, once:
//
//	nginx, inside the http {} block of /etc/nginx/nginx.conf
//	(or in a file of /etc/nginx/conf.d/, which Debian includes there):
//	    include /root/.aegir/config/SERVER/nginx.conf;
//
//	apache, at the end of /etc/apache2/apache2.conf
//	(or in /etc/apache2/conf-enabled/aegir.conf):
//	    IncludeOptional /root/.aegir/config/SERVER/apache.conf
//
// Server.IncludeLine returns that line for a server; docs/web-servers.md
// tells the whole story.
//
// # Templates
//
// The files are rendered from text/template templates embedded in the
// binary (see the templates directory of this package). A file of the same
// name in Config.TemplatesDir ($AEGIR_HOME/templates on the master) replaces
// the embedded one: nginx-site.conf.tmpl, nginx.conf.tmpl,
// apache-site.conf.tmpl, apache.conf.tmpl and site-disabled.html.tmpl.
//
// # Applying changes
//
// WriteSite and RemoveSite write a file only when its bytes change. After a
// change they run the server's configuration test; when the test fails they
// put the previous file back (or remove the new one), so that the server
// keeps its last good configuration, and return a *provision.Error with the
// test's output. Only then, and only when something changed, they reload
// the server, through the engine.ReloadSet of the run, so that parallel
// tasks on one server share one reload, and wait until the server serves
// the new configuration (reload.go).
//
// Config.TestCmd and Config.RestartCmd are shell command lines that the
// administrator configured for the server (`aegir server add
// --http-test-cmd/--http-restart-cmd`). They are trusted configuration, like
// a crontab line: they run as given through `sh -c` on the web server. They
// never carry data from sites or users.
package web

import (
	"context"
	"fmt"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Web server types (entities.Type*).
const (
	Nginx  = entities.TypeNginx
	Apache = entities.TypeApache
)

// Application types of a site's platform.
const (
	Drupal    = entities.PlatformDrupal
	WordPress = entities.PlatformWordPress
)

// HTTPS modes of a site (entities.HTTPS*).
const (
	HTTPSOff      = entities.HTTPSOff
	HTTPSOn       = entities.HTTPSOn
	HTTPSRequired = entities.HTTPSRequired
)

// Config describes the web service of one server.
type Config struct {
	Type string // Nginx or Apache
	// ConfigDir is aegir's directory on the web server: HOME/config/SERVER.
	ConfigDir string
	HTTPPort  int // 0: 80
	HTTPSPort int // 0: 443
	// ListenIP limits the virtual hosts to one address (e.g. 127.0.0.1);
	// empty: every address (nginx `listen PORT`, apache `*:PORT`).
	ListenIP string
	// TestCmd and RestartCmd are trusted shell command lines run with
	// `sh -c` on the server. Empty: the defaults of a system install
	// (nginx: `nginx -t`, `nginx -s reload`; apache: `apache2ctl
	// configtest`, `apache2ctl graceful`).
	TestCmd    string
	RestartCmd string
	// PHPFPM is where php-fpm listens: a unix socket path (optionally with
	// a "unix:" prefix) or HOST:PORT. Empty: the newest /run/php/php*-fpm.sock
	// found on the server.
	PHPFPM string
	// TemplatesDir holds template overrides, on the master (local) disk.
	// Empty: embedded templates only.
	TemplatesDir string
	// WebUser is the web server's system user (www-data); templates get it.
	WebUser string
	// PHPUser runs php-cli towards php-fpm and the checks of what the web
	// server's user may read: WebUser, or a remote deploy user (in the web
	// server's group: no sudo). Empty: WebUser.
	PHPUser string
	// Sudo runs the default test and reload commands through `sudo -n`:
	// for a remote server whose SSH user is not root. (The administrator's
	// own TestCmd and RestartCmd run as given; they say sudo themselves.)
	Sudo bool
	// ReloadTimeout bounds the wait, after a reload, for the server to
	// serve the new configuration (default DefaultReloadTimeout).
	ReloadTimeout time.Duration
	// ReloadPending: a reload failed after changes were written; the
	// next write (or Settle) reloads even when it changes nothing.
	ReloadPending bool
}

// Site is what a site's virtual host is made from.
type Site struct {
	Domain  string
	Aliases []string
	// Redirect makes the aliases answer 301 to Domain, keeping the path;
	// otherwise they serve the site as Domain does.
	Redirect bool
	Root     string // document root, on the web server
	// Disabled serves a "site disabled" page (status 503) instead of the
	// site; the document root is not served. ACME challenges still answer.
	Disabled bool
	AppType  string // Drupal or WordPress; empty: Drupal
	// HTTPS is HTTPSOff (or empty), HTTPSOn or HTTPSRequired. The TLS
	// virtual host is written only when CertFile and KeyFile are set.
	HTTPS    string
	CertFile string // on the web server
	KeyFile  string
	// ACMEChallengeDir is served at /.well-known/acme-challenge/.
	// Empty: ConfigDir/acme-challenge.
	ACMEChallengeDir string
	// PHPFPM is where the site's PHP goes when not to the server's
	// (Config.PHPFPM): its own pool's socket, or the shared pool of
	// another PHP version.
	PHPFPM string
	// AccessLog and ErrorLog are the site's own logs, on the web server;
	// empty: the web server's.
	AccessLog, ErrorLog string
}

// Server applies site configuration to one web server. A Server is for one
// task: it is not safe for concurrent use. Tasks that run at the same time
// make one each; they still share one reload through the run's ReloadSet,
// and writes to one config dir are serialized within the process.
type Server struct {
	cfg     Config
	fl      *flavor
	ex      exec.Executor
	env     *engine.Env
	php     string // resolved PHP-FPM address, once known
	reloadK string
	pending bool // a reload is still to do (Config.ReloadPending)
}

// New returns the Server for cfg on the server ex reaches. env gives the
// task log and the run's ReloadSet; nil logs nothing and reloads at once.
func New(ex exec.Executor, cfg Config, env *engine.Env) (*Server, error) {
	fl, ok := flavors[cfg.Type]
	if !ok {
		return nil, provision.Errorf(provision.ErrInvalidContext, "make the server's http service nginx or apache",
			"unknown web server type %q (want nginx or apache)", cfg.Type)
	}
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = 80
	}
	if cfg.HTTPSPort == 0 {
		cfg.HTTPSPort = 443
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if env == nil {
		env = &engine.Env{}
	}
	s := &Server{cfg: cfg, fl: fl, ex: ex, env: env, pending: cfg.ReloadPending}
	if cfg.PHPFPM != "" {
		s.php = cfg.PHPFPM
	}
	// One reload per web server instance: the host, its config dir and the
	// command that reloads it.
	s.reloadK = strings.Join([]string{"web", ex.Host(), cfg.Type, cfg.ConfigDir, cfg.RestartCmd}, "\x00")
	return s, nil
}

// ConfigFromContext builds the web Config of a task's web server. home is
// the master's aegir home (for template overrides).
func ConfigFromContext(home string, c *provision.Job) Config {
	cfg := Config{
		Type:       c.Site.Web.Type,
		ConfigDir:  c.ConfigDir(),
		HTTPPort:   c.Site.Web.Port,
		HTTPSPort:  c.Site.Web.HTTPSPort,
		ListenIP:   c.Site.Web.ListenIP,
		TestCmd:    c.Site.Web.TestCmd,
		RestartCmd: c.Site.Web.RestartCmd,
		PHPFPM:     c.Site.Web.PHPFPM,
		WebUser:    c.System.WebUser,
		PHPUser:    c.PHPUser(),
		Sudo:       !c.Web().IsLocal() && c.Site.Web.SSHUser != "" && c.Site.Web.SSHUser != "root",
		// A reload a failed task left to do.
		ReloadPending: c.Site.Web.ReloadPending,
	}
	if home != "" {
		cfg.TemplatesDir = filepath.Join(home, "templates")
	}
	return cfg
}

// Open connects to the task's web server and returns its Server.
func Open(ctx context.Context, env *engine.Env, c *provision.Job) (*Server, error) {
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return nil, err
	}
	return New(ex, ConfigFromContext(env.Home, c), env)
}

// Config returns the server's configuration, with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// IncludeFile is the path of the one file the system's web server includes.
func (s *Server) IncludeFile() string { return path.Join(s.cfg.ConfigDir, s.fl.includeName) }

// IncludeLine is the line the administrator adds to the system's web
// server configuration (nginx: inside http {}).
func (s *Server) IncludeLine() string { return s.fl.includeLine(s.IncludeFile()) }

// SiteFile is the path of a site's virtual host file.
func (s *Server) SiteFile(domain string) string { return SiteFileIn(s.cfg.ConfigDir, domain) }

// SiteFileIn is the path of a site's virtual host file in the web
// server's configuration directory configDir.
func SiteFileIn(configDir, domain string) string {
	return path.Join(configDir, "vhost.d", domain+".conf")
}

// ACMEChallengeDir is the default directory served at
// /.well-known/acme-challenge/ for sites that name none.
func (s *Server) ACMEChallengeDir() string { return path.Join(s.cfg.ConfigDir, "acme-challenge") }

// --- validation: everything that reaches a config file or a path ---

func invalid(format string, args ...any) *provision.Error {
	return provision.Errorf(provision.ErrInvalidContext, "correct the value in the server's or the site's record, which show it, and run the task again", format, args...).
		With(entities.Do("server.show", "SERVER"), entities.Do("site.show", "DOMAIN"))
}

// checkDomain accepts a lower-case host name; wildcard allows a leading
// "*." (an alias such as *.example.com). The rule is the front end's
// (entities.ValidateDomain).
func checkDomain(what, d string, wildcard bool) error {
	if err := entities.ValidateDomain(what, d, wildcard); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// checkPath accepts an absolute, clean path made of characters that need no
// quoting in a web server's configuration (entities.ValidateServerPath,
// the rule the front end checks input with).
func checkPath(what, p string) error {
	if err := entities.ValidateServerPath(what, p); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func checkPort(what string, n int) error {
	if n < 1 || n > 65535 {
		return invalid("invalid %s %d: want a port from 1 to 65535", what, n)
	}
	return nil
}

func (c *Config) validate() error {
	if err := checkPath("web config dir", c.ConfigDir); err != nil {
		return err
	}
	if err := checkPort("HTTP port", c.HTTPPort); err != nil {
		return err
	}
	if err := checkPort("HTTPS port", c.HTTPSPort); err != nil {
		return err
	}
	if c.ListenIP != "" && net.ParseIP(c.ListenIP) == nil {
		return invalid("invalid listen address %q: want an IP address", c.ListenIP)
	}
	if c.PHPFPM != "" {
		if _, err := parsePHP(c.PHPFPM); err != nil {
			return err
		}
	}
	if c.WebUser != "" {
		if err := CheckUser("web user", c.WebUser); err != nil {
			return invalid("%v", err)
		}
	}
	for _, cmd := range []string{c.TestCmd, c.RestartCmd} {
		if strings.ContainsAny(cmd, "\x00\n") {
			return invalid("invalid web server command %q: want one line", cmd)
		}
	}
	return nil
}

// CheckUser is the rule of the web server's system user (web_user), for
// the front end to check configuration with.
func CheckUser(field, s string) error {
	return entities.ValidateSystemName(field, s, "user")
}

// phpAddr is a parsed PHP-FPM address: Socket, or Host and Port.
type phpAddr struct {
	Socket string
	Host   string
	Port   int
}

func parsePHP(s string) (phpAddr, error) {
	a, err := parsePHPAddr("php-fpm address", s)
	if err != nil {
		return a, invalid("%v", err)
	}
	return a, nil
}

// CheckPHPFPM is the rule of a php-fpm address, for the front end to check
// input with (field names the flag): a socket path (optionally unix:) as
// entities.ValidateServerPath allows, or HOST:PORT.
func CheckPHPFPM(field, s string) error {
	_, err := parsePHPAddr(field, s)
	return err
}

func parsePHPAddr(field, s string) (phpAddr, error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok || strings.HasPrefix(s, "/") {
		if !ok {
			p = s
		}
		if err := entities.ValidateServerPath(field, p); err != nil {
			return phpAddr{}, err
		}
		return phpAddr{Socket: p}, nil
	}
	h, p, err := net.SplitHostPort(s)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 || (net.ParseIP(h) == nil && checkDomain("php-fpm host", h, false) != nil && h != "localhost") {
		return phpAddr{}, entities.Invalid(field, s, "must be a socket path (/run/php/php8.2-fpm.sock) or HOST:PORT (127.0.0.1:9000)")
	}
	return phpAddr{Host: h, Port: port}, nil
}

// normalize checks a site and fills in its defaults.
func (s *Server) normalize(site Site) (Site, error) {
	site.Domain = strings.ToLower(strings.TrimSuffix(site.Domain, "."))
	if err := checkDomain("site domain", site.Domain, false); err != nil {
		return site, err
	}
	seen := map[string]bool{site.Domain: true}
	aliases := make([]string, 0, len(site.Aliases))
	for _, a := range site.Aliases {
		a = strings.ToLower(strings.TrimSuffix(a, "."))
		if err := checkDomain("site alias", a, true); err != nil {
			return site, err
		}
		if !seen[a] {
			seen[a] = true
			aliases = append(aliases, a)
		}
	}
	site.Aliases = aliases
	if err := checkPath("site document root", site.Root); err != nil {
		return site, err
	}
	if site.AppType == "" {
		site.AppType = Drupal
	}
	if !slices.Contains(entities.PlatformTypes, site.AppType) {
		return site, invalid("invalid application type %q: want %s", site.AppType, strings.Join(entities.PlatformTypes, " or "))
	}
	switch site.HTTPS {
	case "":
		site.HTTPS = HTTPSOff
	case HTTPSOff, HTTPSOn, HTTPSRequired:
	default:
		return site, invalid("invalid HTTPS mode %q: want off, on or required", site.HTTPS)
	}
	if site.PHPFPM != "" {
		if _, err := parsePHP(site.PHPFPM); err != nil {
			return site, err
		}
	}
	if (site.AccessLog == "") != (site.ErrorLog == "") {
		return site, invalid("give both the access and the error log of %s, or neither", site.Domain)
	}
	for what, p := range map[string]string{"certificate file": site.CertFile, "key file": site.KeyFile, "ACME challenge dir": site.ACMEChallengeDir,
		"access log": site.AccessLog, "error log": site.ErrorLog} {
		if p != "" {
			if err := checkPath(what, p); err != nil {
				return site, err
			}
		}
	}
	if site.ACMEChallengeDir == "" {
		site.ACMEChallengeDir = s.ACMEChallengeDir()
	}
	return site, nil
}

func (s *Server) logf(level, format string, args ...any) { s.env.Logf(level, format, args...) }

// errf builds an error about this web server.
func (s *Server) errf(code, hint string, err error, format string, args ...any) *provision.Error {
	return &provision.Error{Code: code, Hint: hint, Err: err, Msg: fmt.Sprintf(format, args...)}
}
