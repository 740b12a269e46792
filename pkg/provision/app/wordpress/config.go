package wordpress

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Salts are the names of the secret keys and salts of a
// WordPress site's configuration.
var Salts = []string{
	"AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
	"AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
}

// SiteConfig is what a WordPress site's configuration says.
type SiteConfig struct {
	Domain  string
	Aliases []string
	// URL is the site's address (WP_HOME and WP_SITEURL), e.g.
	// https://example.com or http://wp1.test:8080. Empty: http://DOMAIN.
	URL string
	// HTTPSURL, if set, is the site's address over HTTPS for a site that
	// answers on both schemes: WP_HOME and WP_SITEURL are then URL on an
	// HTTP request and HTTPSURL on an HTTPS one, so that each scheme
	// links and redirects to its own port.
	HTTPSURL    string
	DB          app.DB
	TablePrefix string // empty: wp_
	// Salts maps each of Salts to its value. Missing ones are
	// taken from the existing configuration (WriteSiteConfig) or made
	// afresh with crypto/rand.
	Salts map[string]string
}

var tablePrefixRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

func (s SiteConfig) Check() error {
	if err := app.CheckDomains(s.Domain, s.Aliases); err != nil {
		return err
	}
	if _, err := app.SiteURL(s.Domain, s.URL); err != nil {
		return err
	}
	if s.HTTPSURL != "" {
		if u, err := app.SiteURL(s.Domain, s.HTTPSURL); err != nil {
			return err
		} else if !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("site HTTPS URL %q must be https://", s.HTTPSURL)
		}
	}
	if drv, err := s.DB.PDODriver(); err != nil {
		return err
	} else if drv != "mysql" {
		return errors.New("WordPress needs MariaDB or MySQL; it does not run on PostgreSQL")
	}
	if s.TablePrefix != "" && !tablePrefixRe.MatchString(s.TablePrefix) {
		return fmt.Errorf("table prefix %q may hold only letters, digits and '_'", s.TablePrefix)
	}
	for k, v := range s.Salts {
		if err := app.CheckPHPValue(k, v); err != nil {
			return err
		}
	}
	return s.DB.Check()
}

// dbHost is DB_HOST: host, or host:port.
func dbHost(d app.DB) string {
	if d.Port == 0 {
		return d.Host
	}
	return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
}

// RenderSiteConfig renders the configuration of one WordPress site, which
// the platform's dispatcher (wp-config.php) loads for the site's domain and
// aliases: database constants, keys and salts, table prefix, the site's
// address, its own uploads directory (wp-content/uploads/DOMAIN), and no
// changes to the shared code from the site's dashboard (DISALLOW_FILE_MODS:
// the platform's code is shared by all of its sites). Loaded any other way
// than through the dispatcher, it answers 404 and does nothing.
func RenderSiteConfig(s SiteConfig) ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("wordpress site config: %w", err)
	}
	home, _ := app.SiteURL(s.Domain, s.URL)
	prefix := s.TablePrefix
	if prefix == "" {
		prefix = "wp_"
	}
	aliases := append([]string(nil), s.Aliases...)
	sort.Strings(aliases)
	var b bytes.Buffer
	def := func(name, v string) { fmt.Fprintf(&b, "define(%s, %s);\n", app.PHPString(name), v) }
	b.WriteString("<?php\n\n")
	fmt.Fprintf(&b, "// Settings of %s, written by aegir. Do not edit: aegir writes this file\n", s.Domain)
	b.WriteString("// again on every verify.\n\n")
	b.WriteString("if (!defined('AEGIR_WP_DISPATCH')) {\n  http_response_code(404);\n  exit;\n}\n\n")
	def("AEGIR_SITE", app.PHPString(s.Domain))
	def("AEGIR_ALIASES", app.PHPString(strings.Join(aliases, ",")))
	b.WriteString("\n")
	def("DB_NAME", app.PHPString(s.DB.Name))
	def("DB_USER", app.PHPString(s.DB.User))
	def("DB_PASSWORD", app.PHPString(s.DB.Password))
	def("DB_HOST", app.PHPString(dbHost(s.DB)))
	def("DB_CHARSET", "'utf8mb4'")
	def("DB_COLLATE", "''")
	b.WriteString("\n")
	for _, k := range Salts {
		v := s.Salts[k]
		if v == "" {
			v = app.NewSalt()
		}
		def(k, app.PHPString(v))
	}
	fmt.Fprintf(&b, "\n$table_prefix = %s;\n\n", app.PHPString(prefix))
	homeValue := app.PHPString(home)
	if s.HTTPSURL != "" {
		tls, _ := app.SiteURL(s.Domain, s.HTTPSURL)
		homeValue = "(isset($_SERVER['HTTPS']) && $_SERVER['HTTPS'] !== '' && strtolower($_SERVER['HTTPS']) !== 'off' ? " +
			app.PHPString(tls) + " : " + app.PHPString(home) + ")"
	}
	def("WP_HOME", homeValue)
	def("WP_SITEURL", homeValue)
	def("UPLOADS", app.PHPString("wp-content/uploads/"+s.Domain))
	def("WP_AUTO_UPDATE_CORE", "false")
	def("AUTOMATIC_UPDATER_DISABLED", "true")
	def("DISALLOW_FILE_EDIT", "true")
	def("DISALLOW_FILE_MODS", "true")
	return b.Bytes(), nil
}

//go:embed php/wp-config.php
var dispatcher []byte

// dispatcherMark identifies aegir's wp-config.php.
const dispatcherMark = "aegir WordPress dispatcher"

// RenderDispatcher is the platform's wp-config.php: it takes the
// request's host name (HTTP_HOST without the port, lower-cased, checked to
// be a plain domain name), loads wp-content/aegir-sites/HOST.php and then
// WordPress; an unknown or malformed host gets a 404 (exit status 1 from
// php-cli) and WordPress is not loaded.
func RenderDispatcher() []byte { return append([]byte(nil), dispatcher...) }

// EnsurePlatform makes a WordPress platform ready for aegir's
// sites: the sites directory (with an index.php and a deny-all .htaccess),
// the dispatcher as wp-config.php and aegir's login plugin
// (EnsureLoginPlugin). A wp-config.php that is not
// aegir's is kept outside the docroot, under keep (KeptDir of the
// server's aegir home), and a wp-config.php.aegir-orig that an older
// aegir left in the docroot is moved there too. It reports whether it
// changed anything.
func EnsurePlatform(ctx context.Context, ex exec.Executor, p app.Platform, keep string, log app.Logf) (bool, error) {
	if p.Type != entities.PlatformWordPress {
		return false, fmt.Errorf("platform %s is %s, not WordPress", p.Root, p.Type)
	}
	changed, err := EnsureLoginPlugin(ctx, ex, p, log)
	if err != nil {
		return changed, err
	}
	dir := p.SitesDir()
	if _, err := ex.Stat(ctx, dir); errors.Is(err, fs.ErrNotExist) {
		if err := ex.MkdirAll(ctx, dir, 0o755); err != nil {
			return false, app.PlatformError("give aegir's user write access to "+path.Dir(dir), "create %s on %s: %v", dir, ex.Host(), err)
		}
		log.Printf(provision.LevelInfo, "created the sites directory %s", dir)
		changed = true
	}
	for name, content := range map[string]string{
		"index.php": "<?php\n// Nothing to see here.\n",
		".htaccess": "# aegir: site configuration, never served.\nRequire all denied\n",
	} {
		f := path.Join(dir, name)
		if _, err := ex.Stat(ctx, f); errors.Is(err, fs.ErrNotExist) {
			if err := ex.WriteFile(ctx, f, []byte(content), 0o644); err != nil {
				return changed, fmt.Errorf("write %s on %s: %w", f, ex.Host(), err)
			}
			changed = true
		}
	}
	if err := app.MoveOutLegacyCopies(ctx, ex, p, keep, []app.LegacyCopy{{Path: path.Join(p.Root, "wp-config.php.aegir-orig"), Name: "wp-config.php"}}, log); err != nil {
		return changed, err
	}
	cfg := path.Join(p.Root, "wp-config.php")
	old, err := app.ReadOptional(ctx, ex, cfg)
	if err != nil {
		return changed, err
	}
	if bytes.Equal(old, dispatcher) {
		return changed, nil
	}
	if old != nil && !bytes.Contains(old, []byte(dispatcherMark)) {
		// Kept before it is replaced: never a moment without a copy.
		kept, err := app.KeepOutside(ctx, ex, keep, p, "wp-config.php", old)
		if err != nil {
			return changed, err
		}
		log.Printf(provision.LevelInfo, "kept the platform's own wp-config.php as %s, outside its docroot", kept)
	}
	if err := ex.WriteFile(ctx, cfg, dispatcher, 0o644); err != nil {
		return changed, app.PlatformError("give aegir's user write access to "+p.Root, "write %s on %s: %v", cfg, ex.Host(), err)
	}
	log.Printf(provision.LevelInfo, "wrote aegir's dispatcher as %s", cfg)
	return true, nil
}

// siteFile is the configuration file of domain (or alias).
func siteFile(p app.Platform, domain string) string {
	return path.Join(p.SitesDir(), domain+".php")
}

// aliasStub is the file that makes alias load the configuration of domain.
func aliasStub(alias, domain string) []byte {
	return []byte("<?php\n// aegir: " + alias + " is an alias of " + domain + ".\nrequire __DIR__ . " + app.PHPString("/"+domain+".php") + ";\n")
}

// WriteSiteConfig writes the configuration of one site into the
// platform's sites directory, keeping the salts of an existing one, and a
// small file for each alias that loads it; files of aliases the site no
// longer has are removed. An alias that is another site's domain or alias
// on the platform is refused. With o.WebUser it also makes the site's
// uploads directory (UploadsDir), owned by the web server user.
// It reports whether any file changed.
func WriteSiteConfig(ctx context.Context, ex exec.Executor, p app.Platform, s SiteConfig, o app.Owner) (bool, error) {
	if p.Type != entities.PlatformWordPress {
		return false, fmt.Errorf("platform %s is %s, not WordPress", p.Root, p.Type)
	}
	if _, err := entities.NormalizeDomain("domain", s.Domain); err != nil {
		return false, err
	}
	file := siteFile(p, s.Domain)
	old, err := app.ReadOptional(ctx, ex, file)
	if err != nil {
		return false, err
	}
	prev := app.PHPDefines(old)
	salts := map[string]string{}
	for _, k := range Salts {
		if v := s.Salts[k]; v != "" {
			salts[k] = v
		} else if v := prev[k]; v != "" {
			salts[k] = v
		}
	}
	s.Salts = salts
	b, err := RenderSiteConfig(s)
	if err != nil {
		return false, provision.Errorf(provision.ErrInvalidContext, "check the site's record", "%v", err).With(entities.Do("site.show", s.Domain))
	}
	// Aliases first: a conflict must stop us before anything is written.
	want := map[string]bool{}
	for _, a := range s.Aliases {
		want[a] = true
		if err := checkAliasFree(ctx, ex, p, a, s.Domain); err != nil {
			return false, err
		}
	}
	changed, err := app.WriteConfig(ctx, ex, file, old, b, o)
	if err != nil {
		return changed, err
	}
	for _, a := range s.Aliases {
		f := siteFile(p, a)
		stub := aliasStub(a, s.Domain)
		cur, err := app.ReadOptional(ctx, ex, f)
		if err != nil {
			return changed, err
		}
		if !bytes.Equal(cur, stub) {
			if err := ex.WriteFile(ctx, f, stub, 0o644); err != nil {
				return changed, fmt.Errorf("write %s on %s: %w", f, ex.Host(), err)
			}
			changed = true
		}
	}
	if o.WebUser != "" {
		made, err := ensureUploads(ctx, ex, p, s.Domain, o)
		if err != nil {
			return changed, err
		}
		changed = changed || made
	}
	for _, a := range app.SplitList(prev["AEGIR_ALIASES"]) {
		if !want[a] {
			ok, err := removeAliasStub(ctx, ex, p, a, s.Domain)
			if err != nil {
				return changed, err
			}
			changed = changed || ok
		}
	}
	return changed, nil
}

// checkAliasFree fails when alias already names another site on the
// platform.
func checkAliasFree(ctx context.Context, ex exec.Executor, p app.Platform, alias, domain string) error {
	cur, err := app.ReadOptional(ctx, ex, siteFile(p, alias))
	if err != nil || cur == nil || bytes.Equal(cur, aliasStub(alias, domain)) {
		return err
	}
	return provision.Errorf(provision.ErrInvalidContext,
		"remove the alias from the other site first, or pick another alias",
		"%s is already a site or an alias of another site on platform %s", alias, p.Root).With(entities.Do("site.edit", "OTHER", "remove-alias="+alias))
}

// removeAliasStub removes the file of alias if it is an alias of domain.
func removeAliasStub(ctx context.Context, ex exec.Executor, p app.Platform, alias, domain string) (bool, error) {
	if _, err := entities.NormalizeDomain("alias", alias); err != nil {
		return false, nil // not one of ours
	}
	f := siteFile(p, alias)
	cur, err := app.ReadOptional(ctx, ex, f)
	if err != nil || !bytes.Equal(cur, aliasStub(alias, domain)) {
		return false, err
	}
	if err := ex.Remove(ctx, f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove %s on %s: %w", f, ex.Host(), err)
	}
	return true, nil
}

// UploadsDir is the directory of a site's uploads.
func UploadsDir(p app.Platform, domain string) string {
	return path.Join(p.Root, "wp-content/uploads", domain)
}

// ensureUploads makes the site's uploads directory, owned by the web
// server user, unless it exists; it reports whether it made it.
func ensureUploads(ctx context.Context, ex exec.Executor, p app.Platform, domain string, o app.Owner) (bool, error) {
	dir := UploadsDir(p, domain)
	if _, err := ex.Stat(ctx, dir); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("stat %s on %s: %w", dir, ex.Host(), err)
	}
	if err := ex.MkdirAll(ctx, dir, 0o775); err != nil {
		return false, fmt.Errorf("create %s on %s: %w", dir, ex.Host(), err)
	}
	if err := ex.Chown(ctx, dir, o.WebUser, o.WebGroup); err != nil {
		return true, fmt.Errorf("give %s to %s on %s: %w", dir, o.WebUser, ex.Host(), err)
	}
	return true, nil
}

// removeSite removes a WordPress site's configuration, its
// aliases' files and its uploads.
func removeSite(ctx context.Context, ex exec.Executor, p app.Platform, domain string) error {
	file := siteFile(p, domain)
	old, err := app.ReadOptional(ctx, ex, file)
	if err != nil {
		return err
	}
	for _, a := range app.SplitList(app.PHPDefines(old)["AEGIR_ALIASES"]) {
		if _, err := removeAliasStub(ctx, ex, p, a, domain); err != nil {
			return err
		}
	}
	if err := ex.RemoveAll(ctx, UploadsDir(p, domain)); err != nil {
		return err
	}
	return ex.RemoveAll(ctx, file)
}

// SitesPath is where a WordPress platform keeps the configuration
// of its sites, relative to the platform root.
const SitesPath = "wp-content/aegir-sites"
