package app

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
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// WordPressSalts are the names of the secret keys and salts of a
// WordPress site's configuration.
var WordPressSalts = []string{
	"AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
	"AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
}

// WordPressSite is what a WordPress site's configuration says.
type WordPressSite struct {
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
	DB          DB
	TablePrefix string // empty: wp_
	// Salts maps each of WordPressSalts to its value. Missing ones are
	// taken from the existing configuration (WriteWordPressSite) or made
	// afresh with crypto/rand.
	Salts map[string]string
}

var tablePrefixRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

func (s WordPressSite) check() error {
	if err := checkDomains(s.Domain, s.Aliases); err != nil {
		return err
	}
	if _, err := siteURL(s.Domain, s.URL); err != nil {
		return err
	}
	if s.HTTPSURL != "" {
		if u, err := siteURL(s.Domain, s.HTTPSURL); err != nil {
			return err
		} else if !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("site HTTPS URL %q must be https://", s.HTTPSURL)
		}
	}
	if drv, err := s.DB.driver(); err != nil {
		return err
	} else if drv != "mysql" {
		return errors.New("WordPress needs MariaDB or MySQL; it does not run on PostgreSQL")
	}
	if s.TablePrefix != "" && !tablePrefixRe.MatchString(s.TablePrefix) {
		return fmt.Errorf("table prefix %q may hold only letters, digits and '_'", s.TablePrefix)
	}
	for k, v := range s.Salts {
		if err := checkPHPValue(k, v); err != nil {
			return err
		}
	}
	return s.DB.check()
}

// dbHost is DB_HOST: host, or host:port.
func (d DB) dbHost() string {
	if d.Port == 0 {
		return d.Host
	}
	return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
}

// RenderWordPressSite renders the configuration of one WordPress site, which
// the platform's dispatcher (wp-config.php) loads for the site's domain and
// aliases: database constants, keys and salts, table prefix, the site's
// address, its own uploads directory (wp-content/uploads/DOMAIN), and no
// changes to the shared code from the site's dashboard (DISALLOW_FILE_MODS:
// the platform's code is shared by all of its sites). Loaded any other way
// than through the dispatcher, it answers 404 and does nothing.
func RenderWordPressSite(s WordPressSite) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("wordpress site config: %w", err)
	}
	home, _ := siteURL(s.Domain, s.URL)
	prefix := s.TablePrefix
	if prefix == "" {
		prefix = "wp_"
	}
	aliases := append([]string(nil), s.Aliases...)
	sort.Strings(aliases)
	var b bytes.Buffer
	def := func(name, v string) { fmt.Fprintf(&b, "define(%s, %s);\n", PHPString(name), v) }
	b.WriteString("<?php\n\n")
	fmt.Fprintf(&b, "// Settings of %s, written by aegir. Do not edit: aegir writes this file\n", s.Domain)
	b.WriteString("// again on every verify.\n\n")
	b.WriteString("if (!defined('AEGIR_WP_DISPATCH')) {\n  http_response_code(404);\n  exit;\n}\n\n")
	def("AEGIR_SITE", PHPString(s.Domain))
	def("AEGIR_ALIASES", PHPString(strings.Join(aliases, ",")))
	b.WriteString("\n")
	def("DB_NAME", PHPString(s.DB.Name))
	def("DB_USER", PHPString(s.DB.User))
	def("DB_PASSWORD", PHPString(s.DB.Password))
	def("DB_HOST", PHPString(s.DB.dbHost()))
	def("DB_CHARSET", "'utf8mb4'")
	def("DB_COLLATE", "''")
	b.WriteString("\n")
	for _, k := range WordPressSalts {
		v := s.Salts[k]
		if v == "" {
			v = newSalt()
		}
		def(k, PHPString(v))
	}
	fmt.Fprintf(&b, "\n$table_prefix = %s;\n\n", PHPString(prefix))
	homeValue := PHPString(home)
	if s.HTTPSURL != "" {
		tls, _ := siteURL(s.Domain, s.HTTPSURL)
		homeValue = "(isset($_SERVER['HTTPS']) && $_SERVER['HTTPS'] !== '' && strtolower($_SERVER['HTTPS']) !== 'off' ? " +
			PHPString(tls) + " : " + PHPString(home) + ")"
	}
	def("WP_HOME", homeValue)
	def("WP_SITEURL", homeValue)
	def("UPLOADS", PHPString("wp-content/uploads/"+s.Domain))
	def("WP_AUTO_UPDATE_CORE", "false")
	def("AUTOMATIC_UPDATER_DISABLED", "true")
	def("DISALLOW_FILE_EDIT", "true")
	def("DISALLOW_FILE_MODS", "true")
	return b.Bytes(), nil
}

//go:embed php/wp-config.php
var wordPressDispatcher []byte

// dispatcherMark identifies aegir's wp-config.php.
const dispatcherMark = "aegir WordPress dispatcher"

// RenderWordPressDispatcher is the platform's wp-config.php: it takes the
// request's host name (HTTP_HOST without the port, lower-cased, checked to
// be a plain domain name), loads wp-content/aegir-sites/HOST.php and then
// WordPress; an unknown or malformed host gets a 404 (exit status 1 from
// php-cli) and WordPress is not loaded.
func RenderWordPressDispatcher() []byte { return append([]byte(nil), wordPressDispatcher...) }

// EnsureWordPressPlatform makes a WordPress platform ready for aegir's
// sites: the sites directory (with an index.php and a deny-all .htaccess),
// the dispatcher as wp-config.php and aegir's login plugin
// (EnsureWordPressLoginPlugin). A wp-config.php that is not
// aegir's is kept outside the docroot, under keep (KeptDir of the
// server's aegir home), and a wp-config.php.aegir-orig that an older
// aegir left in the docroot is moved there too. It reports whether it
// changed anything.
func EnsureWordPressPlatform(ctx context.Context, ex exec.Executor, p Platform, keep string, log Logf) (bool, error) {
	if p.Type != WordPress {
		return false, fmt.Errorf("platform %s is %s, not WordPress", p.Root, p.Type)
	}
	changed, err := EnsureWordPressLoginPlugin(ctx, ex, p, log)
	if err != nil {
		return changed, err
	}
	dir := p.SitesDir()
	if _, err := ex.Stat(ctx, dir); errors.Is(err, fs.ErrNotExist) {
		if err := ex.MkdirAll(ctx, dir, 0o755); err != nil {
			return false, platformError("give aegir's user write access to "+path.Dir(dir), "create %s on %s: %v", dir, ex.Host(), err)
		}
		log.log(provision.LevelInfo, "created the sites directory %s", dir)
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
	if err := moveOutLegacyCopies(ctx, ex, p, keep, []LegacyCopy{{Path: path.Join(p.Root, "wp-config.php.aegir-orig"), Name: "wp-config.php"}}, log); err != nil {
		return changed, err
	}
	cfg := path.Join(p.Root, "wp-config.php")
	old, err := readOptional(ctx, ex, cfg)
	if err != nil {
		return changed, err
	}
	if bytes.Equal(old, wordPressDispatcher) {
		return changed, nil
	}
	if old != nil && !bytes.Contains(old, []byte(dispatcherMark)) {
		// Kept before it is replaced: never a moment without a copy.
		kept, err := keepOutside(ctx, ex, keep, p, "wp-config.php", old)
		if err != nil {
			return changed, err
		}
		log.log(provision.LevelInfo, "kept the platform's own wp-config.php as %s, outside its docroot", kept)
	}
	if err := ex.WriteFile(ctx, cfg, wordPressDispatcher, 0o644); err != nil {
		return changed, platformError("give aegir's user write access to "+p.Root, "write %s on %s: %v", cfg, ex.Host(), err)
	}
	log.log(provision.LevelInfo, "wrote aegir's dispatcher as %s", cfg)
	return true, nil
}

// wordPressSiteFile is the configuration file of domain (or alias).
func wordPressSiteFile(p Platform, domain string) string {
	return path.Join(p.SitesDir(), domain+".php")
}

// aliasStub is the file that makes alias load the configuration of domain.
func aliasStub(alias, domain string) []byte {
	return []byte("<?php\n// aegir: " + alias + " is an alias of " + domain + ".\nrequire __DIR__ . " + PHPString("/"+domain+".php") + ";\n")
}

// WriteWordPressSite writes the configuration of one site into the
// platform's sites directory, keeping the salts of an existing one, and a
// small file for each alias that loads it; files of aliases the site no
// longer has are removed. An alias that is another site's domain or alias
// on the platform is refused. With o.WebUser it also makes the site's
// uploads directory (WordPressUploadsDir), owned by the web server user.
// It reports whether any file changed.
func WriteWordPressSite(ctx context.Context, ex exec.Executor, p Platform, s WordPressSite, o Owner) (bool, error) {
	if p.Type != WordPress {
		return false, fmt.Errorf("platform %s is %s, not WordPress", p.Root, p.Type)
	}
	if _, err := entities.NormalizeDomain("domain", s.Domain); err != nil {
		return false, err
	}
	file := wordPressSiteFile(p, s.Domain)
	old, err := readOptional(ctx, ex, file)
	if err != nil {
		return false, err
	}
	prev := phpDefines(old)
	salts := map[string]string{}
	for _, k := range WordPressSalts {
		if v := s.Salts[k]; v != "" {
			salts[k] = v
		} else if v := prev[k]; v != "" {
			salts[k] = v
		}
	}
	s.Salts = salts
	b, err := RenderWordPressSite(s)
	if err != nil {
		return false, provision.Errorf(provision.ErrInvalidContext, "check the site's record (aegir site show "+s.Domain+")", "%v", err)
	}
	// Aliases first: a conflict must stop us before anything is written.
	want := map[string]bool{}
	for _, a := range s.Aliases {
		want[a] = true
		if err := checkAliasFree(ctx, ex, p, a, s.Domain); err != nil {
			return false, err
		}
	}
	changed, err := writeConfig(ctx, ex, file, old, b, o)
	if err != nil {
		return changed, err
	}
	for _, a := range s.Aliases {
		f := wordPressSiteFile(p, a)
		stub := aliasStub(a, s.Domain)
		cur, err := readOptional(ctx, ex, f)
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
	for _, a := range splitList(prev["AEGIR_ALIASES"]) {
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
func checkAliasFree(ctx context.Context, ex exec.Executor, p Platform, alias, domain string) error {
	cur, err := readOptional(ctx, ex, wordPressSiteFile(p, alias))
	if err != nil || cur == nil || bytes.Equal(cur, aliasStub(alias, domain)) {
		return err
	}
	return provision.Errorf(provision.ErrInvalidContext,
		"remove the alias from the other site first (aegir site edit OTHER --remove-alias "+alias+"), or pick another alias",
		"%s is already a site or an alias of another site on platform %s", alias, p.Root)
}

// removeAliasStub removes the file of alias if it is an alias of domain.
func removeAliasStub(ctx context.Context, ex exec.Executor, p Platform, alias, domain string) (bool, error) {
	if _, err := entities.NormalizeDomain("alias", alias); err != nil {
		return false, nil // not one of ours
	}
	f := wordPressSiteFile(p, alias)
	cur, err := readOptional(ctx, ex, f)
	if err != nil || !bytes.Equal(cur, aliasStub(alias, domain)) {
		return false, err
	}
	if err := ex.Remove(ctx, f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove %s on %s: %w", f, ex.Host(), err)
	}
	return true, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// WordPressUploadsDir is the directory of a site's uploads.
func WordPressUploadsDir(p Platform, domain string) string {
	return path.Join(p.Root, "wp-content/uploads", domain)
}

// ensureUploads makes the site's uploads directory, owned by the web
// server user, unless it exists; it reports whether it made it.
func ensureUploads(ctx context.Context, ex exec.Executor, p Platform, domain string, o Owner) (bool, error) {
	dir := WordPressUploadsDir(p, domain)
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

// RemoveSite removes what the platform holds of one site
// (Driver.RemoveSite): for Drupal the whole DOCROOT/sites/DOMAIN
// directory; for WordPress the site's configuration, its aliases' files
// and its uploads. Absent files are no error. The caller takes a backup
// first.
func RemoveSite(ctx context.Context, ex exec.Executor, p Platform, domain string) error {
	if d, err := entities.NormalizeDomain("domain", domain); err != nil || d != domain {
		return fmt.Errorf("remove site: invalid domain %q", domain)
	}
	d, err := p.driver()
	if err != nil {
		return err
	}
	return d.RemoveSite(ctx, ex, p, domain)
}

// removeWordPressSite removes a WordPress site's configuration, its
// aliases' files and its uploads.
func removeWordPressSite(ctx context.Context, ex exec.Executor, p Platform, domain string) error {
	file := wordPressSiteFile(p, domain)
	old, err := readOptional(ctx, ex, file)
	if err != nil {
		return err
	}
	for _, a := range splitList(phpDefines(old)["AEGIR_ALIASES"]) {
		if _, err := removeAliasStub(ctx, ex, p, a, domain); err != nil {
			return err
		}
	}
	if err := ex.RemoveAll(ctx, WordPressUploadsDir(p, domain)); err != nil {
		return err
	}
	return ex.RemoveAll(ctx, file)
}
