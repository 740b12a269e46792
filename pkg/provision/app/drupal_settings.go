package app

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// DB is how a site reaches its database.
type DB struct {
	Type     string // mariadb, mysql or postgresql
	Name     string
	User     string
	Password string // secret
	Host     string
	Port     int // 0: the driver's default
}

// driver is the Drupal name of the database driver: mysql or pgsql.
func (d DB) driver() (string, error) {
	switch d.Type {
	case "mariadb", "mysql", "":
		return "mysql", nil
	case "postgresql", "pgsql", "postgres":
		return "pgsql", nil
	}
	return "", fmt.Errorf("unknown database type %q (want mariadb, mysql or postgresql)", d.Type)
}

func (d DB) check() error {
	if _, err := d.driver(); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"database name", d.Name}, {"database user", d.User}, {"database host", d.Host}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{{"database name", d.Name}, {"database user", d.User}, {"database password", d.Password}, {"database host", d.Host}} {
		if err := checkPHPValue(f.name, f.v); err != nil {
			return err
		}
	}
	if d.Port < 0 || d.Port > 65535 {
		return fmt.Errorf("database port %d is not a port number", d.Port)
	}
	return nil
}

// DrupalSettings is what a Drupal site's settings.php says.
type DrupalSettings struct {
	Major   int    // Drupal major version: 7, 8, 9, 10, 11
	Domain  string // the site's domain, also its directory under sites/
	Aliases []string
	DB      DB
	// HashSalt is the site's private salt. Empty: the one in the existing
	// settings.php (WriteDrupalSettings) or a new random one.
	HashSalt string
}

// DrupalPaths are a site's directories, relative to the docroot.
type DrupalPaths struct {
	Public     string // sites/DOMAIN/files
	Private    string // sites/DOMAIN/private/files
	Temp       string // sites/DOMAIN/private/temp
	ConfigSync string // sites/DOMAIN/private/config/sync (8+)
}

// SitePaths returns the directories of the site at domain.
func SitePaths(domain string) DrupalPaths {
	site := path.Join("sites", domain)
	return DrupalPaths{
		Public:     path.Join(site, "files"),
		Private:    path.Join(site, "private/files"),
		Temp:       path.Join(site, "private/temp"),
		ConfigSync: path.Join(site, "private/config/sync"),
	}
}

func (s DrupalSettings) check() error {
	if s.Major < 7 {
		return fmt.Errorf("Drupal %d is not supported (7 and later are)", s.Major)
	}
	if err := checkDomains(s.Domain, s.Aliases); err != nil {
		return err
	}
	if err := checkPHPValue("hash salt", s.HashSalt); err != nil {
		return err
	}
	return s.DB.check()
}

// RenderDrupalSettings renders the settings.php of a Drupal 7 or 8+ site:
// its database, hash salt, file paths and, for 8+, trusted host patterns
// (the domain and its aliases) and the configuration sync directory. For
// Drupal 7 it also opts out of the announcements feed, whose first fetch
// would otherwise hold the installer for up to 30 s where outbound traffic
// is dropped. Drupal 7 has no trusted host setting. Every value is a PHP
// single-quoted literal (PHPString). A local.settings.php beside it, if
// present, is included last, for the administrator's own settings.
func RenderDrupalSettings(s DrupalSettings) ([]byte, error) {
	if s.HashSalt == "" {
		s.HashSalt = newSalt()
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("drupal settings: %w", err)
	}
	driver, _ := s.DB.driver()
	paths := SitePaths(s.Domain)
	d7 := s.Major == 7
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	arr := func(items []string) string {
		if d7 {
			return "array(\n" + strings.Join(items, "") + ");\n"
		}
		return "[\n" + strings.Join(items, "") + "];\n"
	}
	item := func(k, v string) string { return "  " + PHPString(k) + " => " + v + ",\n" }

	w("<?php\n\n")
	w("// Settings of %s, written by aegir. Do not edit: aegir writes this file\n", s.Domain)
	w("// again on every verify. Put your own settings in local.settings.php\n")
	w("// beside this file.\n\n")

	db := []string{
		item("driver", PHPString(driver)),
		item("database", PHPString(s.DB.Name)),
		item("username", PHPString(s.DB.User)),
		item("password", PHPString(s.DB.Password)),
		item("host", PHPString(s.DB.Host)),
	}
	if s.DB.Port != 0 {
		db = append(db, item("port", strconv.Itoa(s.DB.Port)))
	}
	db = append(db, item("prefix", "''"))
	if !d7 {
		if driver == "mysql" {
			db = append(db, item("collation", PHPString("utf8mb4_general_ci")))
		}
		if s.Major >= 10 {
			// Since 9.4 the core drivers live in modules; 10 dropped the
			// old namespace.
			db = append(db,
				item("namespace", PHPString(`Drupal\`+driver+`\Driver\Database\`+driver)),
				item("autoload", PHPString("core/modules/"+driver+"/src/Driver/Database/"+driver+"/")))
		} else {
			db = append(db, item("namespace", PHPString(`Drupal\Core\Database\Driver\`+driver)))
		}
	}
	w("$databases['default']['default'] = %s\n", arr(db))

	salt, files := "$settings['hash_salt']", []string{"$settings['file_public_path']", "$settings['file_private_path']", "$settings['file_temp_path']"}
	if d7 {
		salt, files = "$drupal_hash_salt", []string{"$conf['file_public_path']", "$conf['file_private_path']", "$conf['file_temporary_path']"}
	}
	w("%s = %s;\n\n", salt, PHPString(s.HashSalt))
	for i, v := range []string{paths.Public, paths.Private, paths.Temp} {
		w("%s = %s;\n", files[i], PHPString(v))
	}
	if d7 {
		w("\n// The installer's last cron run would wait for the announcements feed.\n")
		w("$conf['announcements_feed_enable_by_default_opt_out'] = TRUE;\n\n")
		w("$update_free_access = FALSE;\n\n")
	} else {
		w("$config['system.file']['path']['temporary'] = %s;\n", PHPString(paths.Temp))
		w("$settings['config_sync_directory'] = %s;\n\n", PHPString(paths.ConfigSync))
		hosts := make([]string, 0, len(s.Aliases)+1)
		for _, h := range append([]string{s.Domain}, s.Aliases...) {
			hosts = append(hosts, "  "+PHPString("^"+regexp.QuoteMeta(h)+"$")+",\n")
		}
		w("$settings['trusted_host_patterns'] = %s\n", arr(hosts))
		w("$settings['update_free_access'] = FALSE;\n")
		w("$settings['file_scan_ignore_directories'] = ['node_modules', 'bower_components'];\n\n")
	}
	w("if (file_exists(__DIR__ . '/local.settings.php')) {\n  include __DIR__ . '/local.settings.php';\n}\n")
	return b.Bytes(), nil
}

var (
	drupal7Salt = regexp.MustCompile(`\$drupal_hash_salt\s*=\s*` + phpSingleQuoted + `\s*;`)
	drupal8Salt = regexp.MustCompile(`\$settings\['hash_salt'\]\s*=\s*` + phpSingleQuoted + `\s*;`)
)

// drupalHashSalt reads the hash salt of an existing settings.php; "" if it
// has none as a plain literal.
func drupalHashSalt(settings []byte) string {
	for _, re := range []*regexp.Regexp{drupal8Salt, drupal7Salt} {
		if sub := re.FindSubmatch(settings); sub != nil {
			return unquotePHP(string(sub[1]))
		}
	}
	return ""
}

// Owner says who owns the files aegir writes for a site. The settings
// file belongs to aegir's user and the web server's group (mode 0440); the
// files directories belong to the web server user.
type Owner struct {
	WebUser  string // e.g. www-data; empty: leave ownership as it is
	WebGroup string // e.g. www-data; empty: leave the group as it is
}

// settingsMode is the mode of a written settings file: read-only, and
// readable by the web server through its group.
const settingsMode = 0o440

// WriteDrupalSettings writes DOCROOT/sites/DOMAIN/settings.php on the
// platform's server (creating the site directory), keeping the hash salt
// of an existing file when s.HashSalt is empty. It writes only when the
// content changes and reports whether it did.
func WriteDrupalSettings(ctx context.Context, ex exec.Executor, p Platform, s DrupalSettings, o Owner) (bool, error) {
	if p.Type != Drupal {
		return false, fmt.Errorf("drupal settings: platform %s is %s, not Drupal", p.Root, p.Type)
	}
	if s.Major == 0 {
		s.Major = p.Major
	}
	if _, err := entities.NormalizeDomain("domain", s.Domain); err != nil {
		return false, err
	}
	dir := p.SiteDir(s.Domain)
	file := path.Join(dir, "settings.php")
	old, err := readOptional(ctx, ex, file)
	if err != nil {
		return false, err
	}
	if s.HashSalt == "" {
		s.HashSalt = drupalHashSalt(old)
	}
	b, err := RenderDrupalSettings(s)
	if err != nil {
		return false, provision.Errorf(provision.ErrInvalidContext, "check the site's record (aegir site show "+s.Domain+")", "%v", err)
	}
	if err := ex.MkdirAll(ctx, dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s on %s: %w", dir, ex.Host(), err)
	}
	return writeConfig(ctx, ex, file, old, b, o)
}

// writeConfig writes a settings file with settingsMode and the web
// server's group, unless it already holds exactly b.
func writeConfig(ctx context.Context, ex exec.Executor, file string, old, b []byte, o Owner) (bool, error) {
	changed := !bytes.Equal(old, b)
	if changed {
		if err := ex.WriteFile(ctx, file, b, settingsMode); err != nil {
			return false, fmt.Errorf("write %s on %s: %w", file, ex.Host(), err)
		}
	}
	if o.WebGroup != "" {
		if err := ex.Chown(ctx, file, "", o.WebGroup); err != nil {
			return changed, fmt.Errorf("give %s to group %s on %s: %w", file, o.WebGroup, ex.Host(), err)
		}
	}
	return changed, nil
}

// PrepareDrupalSite creates the site's directories (DrupalPaths) under the
// docroot, owned by the web server user and group, mode 0770 for the
// private ones and 0775 for the public files. A directory that is a
// symbolic link (shared storage, or the site's code pointing elsewhere)
// is left as it is, with what lies under it: its path is returned among
// the skipped ones, for a warning.
func PrepareDrupalSite(ctx context.Context, ex exec.Executor, p Platform, domain string, o Owner) (skipped []string, err error) {
	if _, err := entities.NormalizeDomain("domain", domain); err != nil {
		return nil, err
	}
	paths := SitePaths(domain)
	dirs := []struct {
		rel  string
		mode fs.FileMode
	}{
		{paths.Public, 0o775},
		{path.Dir(paths.Private), 0o770},
		{paths.Private, 0o770},
		{paths.Temp, 0o770},
		{path.Dir(paths.ConfigSync), 0o770},
		{paths.ConfigSync, 0o770},
	}
	// The private directories are the web server's: the site's code may
	// put a symbolic link where one of them should be. Each is checked
	// before anything is made through it (parents first); nothing is made,
	// given away or chmodded through a link (Chown and Chmod never follow
	// one either).
	for _, d := range dirs {
		full := path.Join(p.Docroot, d.rel)
		if under(full, skipped) {
			continue
		}
		if fi, err := ex.Lstat(ctx, full); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			skipped = append(skipped, full)
			continue
		}
		if err := ex.MkdirAll(ctx, full, 0o755); err != nil {
			return skipped, fmt.Errorf("create %s on %s: %w", full, ex.Host(), err)
		}
		if o.WebUser != "" || o.WebGroup != "" {
			if err := ex.Chown(ctx, full, o.WebUser, o.WebGroup); err != nil {
				return skipped, fmt.Errorf("give %s to %s on %s: %w", full, o.WebUser, ex.Host(), err)
			}
		}
		if err := ex.Chmod(ctx, full, d.mode); err != nil {
			return skipped, fmt.Errorf("chmod %s on %s: %w", full, ex.Host(), err)
		}
	}
	return skipped, nil
}

// under reports whether p is one of dirs or lies under one.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// checkDomains checks a site's domain (normalised, RFC 1123) and its
// aliases (the same, and not the domain).
func checkDomains(domain string, aliases []string) error {
	for i, d := range append([]string{domain}, aliases...) {
		field := "domain"
		if i > 0 {
			field = "alias"
		}
		n, err := entities.NormalizeDomain(field, d)
		if err != nil {
			return err
		}
		if n != d {
			return fmt.Errorf("%s %q is not in its normal form %q", field, d, n)
		}
		if i > 0 && d == domain {
			return fmt.Errorf("alias %q is the site's own domain", d)
		}
	}
	return nil
}

// siteURL checks and normalises a site's address (no trailing slash);
// empty is http://DOMAIN.
func siteURL(domain, raw string) (string, error) {
	if raw == "" {
		return "http://" + domain, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("site URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("site URL %q must be http:// or https:// with a host and nothing but a path", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
