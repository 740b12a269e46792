package drupal

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Settings is what a Drupal site's settings.php says.
type Settings struct {
	Major   int    // Drupal major version: 7, 8, 9, 10, 11
	Domain  string // the site's domain, also its directory under sites/
	Aliases []string
	DB      app.DB
	// HashSalt is the site's private salt. Empty: the one in the existing
	// settings.php (WriteSettings) or a new random one.
	HashSalt string
}

// Paths are a site's directories, relative to the docroot.
type Paths struct {
	Public     string // sites/DOMAIN/files
	Private    string // sites/DOMAIN/private/files
	Temp       string // sites/DOMAIN/private/temp
	ConfigSync string // sites/DOMAIN/private/config/sync (8+)
}

// SitePaths returns the directories of the site at domain.
func SitePaths(domain string) Paths {
	site := path.Join("sites", domain)
	return Paths{
		Public:     path.Join(site, "files"),
		Private:    path.Join(site, "private/files"),
		Temp:       path.Join(site, "private/temp"),
		ConfigSync: path.Join(site, "private/config/sync"),
	}
}

func (s Settings) Check() error {
	if s.Major < 7 {
		return fmt.Errorf("Drupal %d is not supported (7 and later are)", s.Major)
	}
	if err := app.CheckDomains(s.Domain, s.Aliases); err != nil {
		return err
	}
	if err := app.CheckPHPValue("hash salt", s.HashSalt); err != nil {
		return err
	}
	return s.DB.Check()
}

// RenderSettings renders the settings.php of a Drupal 7 or 8+ site:
// its database, hash salt, file paths and, for 8+, trusted host patterns
// (the domain and its aliases) and the configuration sync directory. For
// Drupal 7 it also opts out of the announcements feed, whose first fetch
// would otherwise hold the installer for up to 30 s where outbound traffic
// is dropped. Drupal 7 has no trusted host setting. Every value is a PHP
// single-quoted literal (PHPString). A local.settings.php beside it, if
// present, is included last, for the administrator's own settings.
func RenderSettings(s Settings) ([]byte, error) {
	if s.HashSalt == "" {
		s.HashSalt = app.NewSalt()
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("drupal settings: %w", err)
	}
	driver, _ := s.DB.PDODriver()
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
	item := func(k, v string) string { return "  " + app.PHPString(k) + " => " + v + ",\n" }

	w("<?php\n\n")
	w("// Settings of %s, written by aegir. Do not edit: aegir writes this file\n", s.Domain)
	w("// again on every verify. Put your own settings in local.settings.php\n")
	w("// beside this file.\n\n")

	db := []string{
		item("driver", app.PHPString(driver)),
		item("database", app.PHPString(s.DB.Name)),
		item("username", app.PHPString(s.DB.User)),
		item("password", app.PHPString(s.DB.Password)),
		item("host", app.PHPString(s.DB.Host)),
	}
	if s.DB.Port != 0 {
		db = append(db, item("port", strconv.Itoa(s.DB.Port)))
	}
	db = append(db, item("prefix", "''"))
	if !d7 {
		if driver == "mysql" {
			db = append(db, item("collation", app.PHPString("utf8mb4_general_ci")))
		}
		if s.Major >= 10 {
			// Since 9.4 the core drivers live in modules; 10 dropped the
			// old namespace.
			db = append(db,
				item("namespace", app.PHPString(`Drupal\`+driver+`\Driver\Database\`+driver)),
				item("autoload", app.PHPString("core/modules/"+driver+"/src/Driver/Database/"+driver+"/")))
		} else {
			db = append(db, item("namespace", app.PHPString(`Drupal\Core\Database\Driver\`+driver)))
		}
	}
	w("$databases['default']['default'] = %s\n", arr(db))

	salt, files := "$settings['hash_salt']", []string{"$settings['file_public_path']", "$settings['file_private_path']", "$settings['file_temp_path']"}
	if d7 {
		salt, files = "$drupal_hash_salt", []string{"$conf['file_public_path']", "$conf['file_private_path']", "$conf['file_temporary_path']"}
	}
	w("%s = %s;\n\n", salt, app.PHPString(s.HashSalt))
	for i, v := range []string{paths.Public, paths.Private, paths.Temp} {
		w("%s = %s;\n", files[i], app.PHPString(v))
	}
	if d7 {
		w("\n// The installer's last cron run would wait for the announcements feed.\n")
		w("$conf['announcements_feed_enable_by_default_opt_out'] = TRUE;\n\n")
		w("$update_free_access = FALSE;\n\n")
	} else {
		w("$config['system.file']['path']['temporary'] = %s;\n", app.PHPString(paths.Temp))
		w("$settings['config_sync_directory'] = %s;\n\n", app.PHPString(paths.ConfigSync))
		hosts := make([]string, 0, len(s.Aliases)+1)
		for _, h := range append([]string{s.Domain}, s.Aliases...) {
			hosts = append(hosts, "  "+app.PHPString("^"+regexp.QuoteMeta(h)+"$")+",\n")
		}
		w("$settings['trusted_host_patterns'] = %s\n", arr(hosts))
		w("$settings['update_free_access'] = FALSE;\n")
		w("$settings['file_scan_ignore_directories'] = ['node_modules', 'bower_components'];\n\n")
	}
	w("if (file_exists(__DIR__ . '/local.settings.php')) {\n  include __DIR__ . '/local.settings.php';\n}\n")
	return b.Bytes(), nil
}

var (
	drupal7Salt = regexp.MustCompile(`\$drupal_hash_salt\s*=\s*` + app.PHPSingleQuoted + `\s*;`)
	drupal8Salt = regexp.MustCompile(`\$settings\['hash_salt'\]\s*=\s*` + app.PHPSingleQuoted + `\s*;`)
)

// hashSalt reads the hash salt of an existing settings.php; "" if it
// has none as a plain literal.
func hashSalt(settings []byte) string {
	for _, re := range []*regexp.Regexp{drupal8Salt, drupal7Salt} {
		if sub := re.FindSubmatch(settings); sub != nil {
			return app.UnquotePHP(string(sub[1]))
		}
	}
	return ""
}

// WriteSettings writes DOCROOT/sites/DOMAIN/settings.php on the
// platform's server (creating the site directory), keeping the hash salt
// of an existing file when s.HashSalt is empty. It writes only when the
// content changes and reports whether it did.
func WriteSettings(ctx context.Context, ex exec.Executor, p app.Platform, s Settings, o app.Owner) (bool, error) {
	if p.Type != entities.PlatformDrupal {
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
	old, err := app.ReadOptional(ctx, ex, file)
	if err != nil {
		return false, err
	}
	if s.HashSalt == "" {
		s.HashSalt = hashSalt(old)
	}
	b, err := RenderSettings(s)
	if err != nil {
		return false, provision.Errorf(provision.ErrInvalidContext, "check the site's record", "%v", err).With(entities.Do("site.show", s.Domain))
	}
	if err := ex.MkdirAll(ctx, dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s on %s: %w", dir, ex.Host(), err)
	}
	return app.WriteConfig(ctx, ex, file, old, b, o)
}

// PrepareSite creates the site's directories (Paths) under the
// docroot, owned by the web server user and group, mode 0770 for the
// private ones and 0775 for the public files. A directory that is a
// symbolic link (shared storage, or the site's code pointing elsewhere)
// is left as it is, with what lies under it: its path is returned among
// the skipped ones, for a warning.
func PrepareSite(ctx context.Context, ex exec.Executor, p app.Platform, domain string, o app.Owner) (skipped []string, err error) {
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
