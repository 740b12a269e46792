package wordpress

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// TestVerifyWordPress sees a copy of WordPress of its own, with Debian's
// own wp-config.php, which the dispatcher replaces (the shared copy
// other tests use has the dispatcher already).
func TestVerifyWordPress(t *testing.T) {
	ctx := apptest.Ctx(t)
	root := apptest.WPPlatformOwn(t)
	var log apptest.Log
	keep := app.KeptDir(t.TempDir())
	p, err := app.Verify(ctx, aexec.NewLocal(), root, app.VerifyOptions{Type: entities.PlatformWordPress, WebUser: "www-data", Keep: keep, Log: log.Logf})
	if err != nil {
		t.Fatalf("Verify: %v\n%s", err, log.String())
	}
	if p.Type != entities.PlatformWordPress || p.Version == "" {
		t.Errorf("platform %+v", p)
	}
	// The dispatcher replaced Debian's wp-config.php, which is kept
	// outside the docroot, readable by aegir's user only.
	cfg, _ := os.ReadFile(filepath.Join(root, "wp-config.php"))
	if !strings.Contains(string(cfg), dispatcherMark) {
		t.Errorf("wp-config.php is not the dispatcher:\n%s", cfg)
	}
	kept := app.KeptFile(keep, root, "wp-config.php")
	orig, err := os.ReadFile(kept)
	if err != nil || !strings.Contains(string(orig), "/etc/wordpress/config-") {
		t.Errorf("Debian's wp-config.php was not kept: %v", err)
	}
	if fi, err := os.Stat(kept); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept copy: %v %v, want mode 0600", err, fi)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "wp-config*")); len(left) != 2 {
		t.Errorf("files wp-config* in the docroot: %v, want wp-config.php and wp-config-sample.php", left)
	}
	for _, f := range []string{"index.php", ".htaccess"} {
		if _, err := os.Stat(filepath.Join(root, SitesPath, f)); err != nil {
			t.Errorf("sites dir: %v", err)
		}
	}
	if !strings.Contains(log.String(), "php-cli 8.") {
		t.Errorf("log does not name php-cli's version:\n%s", log.String())
	}
	// A second verify changes nothing.
	changed, err := EnsurePlatform(ctx, aexec.NewLocal(), p, keep, nil)
	if err != nil || changed {
		t.Errorf("second EnsurePlatform: changed %v, %v", changed, err)
	}
	// Through the code path of remote servers too.
	if _, err := app.Verify(ctx, apptest.Remoteish{Executor: aexec.NewLocal()}, root, app.VerifyOptions{WebUser: "www-data", Keep: keep}); err != nil {
		t.Errorf("Verify (remote path): %v", err)
	}
}

func TestWordPressSiteConfig(t *testing.T) {
	s := SiteConfig{Domain: "c1.test", Aliases: []string{"www.c1.test"}, URL: "https://c1.test:8443/",
		DB:          app.DB{Type: "mariadb", Name: "c1", User: "c1", Password: `pa'ss\word"$x?>`, Host: "127.0.0.1", Port: 3306},
		TablePrefix: "c1_", Salts: map[string]string{"AUTH_KEY": `a'b\`}}
	b, err := RenderSiteConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c1.test.php")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	apptest.PHPLint(t, file)
	// Loaded on its own (a direct request), it does nothing.
	if out := apptest.PHPEval(t, dir, `include getenv("F"); echo "LEAK";`, "F="+file); strings.Contains(out, "LEAK") {
		t.Errorf("the site config ran without the dispatcher: %q", out)
	}
	out := apptest.PHPEval(t, dir, `define("AEGIR_WP_DISPATCH", 1); include getenv("F");
		$keys = array(); foreach (array("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT") as $k) { $keys[$k] = constant($k); }
		echo json_encode(array("db" => array(DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, DB_CHARSET), "prefix" => $table_prefix,
			"home" => WP_HOME, "siteurl" => WP_SITEURL, "uploads" => UPLOADS, "site" => AEGIR_SITE, "aliases" => AEGIR_ALIASES, "keys" => $keys, "mods" => DISALLOW_FILE_MODS));`, "F="+file)
	var m struct {
		DB                                   []string
		Prefix, Home, Siteurl, Uploads, Site string
		Aliases                              string
		Keys                                 map[string]string
		Mods                                 bool
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Join(m.DB, "|") != `c1|c1|pa'ss\word"$x?>|127.0.0.1:3306|utf8mb4` || m.Prefix != "c1_" || m.Home != "https://c1.test:8443" ||
		m.Siteurl != m.Home || m.Uploads != "wp-content/uploads/c1.test" || m.Site != "c1.test" || m.Aliases != "www.c1.test" || !m.Mods {
		t.Errorf("config read back as %+v", m)
	}
	seen := map[string]bool{}
	for _, k := range Salts {
		v := m.Keys[k]
		if k == "AUTH_KEY" && v != `a'b\` || k != "AUTH_KEY" && len(v) != 64 || seen[v] {
			t.Errorf("%s = %q", k, v)
		}
		seen[v] = true
	}
	if got := app.PHPDefines(b); got["AUTH_KEY"] != `a'b\` || got["DB_PASSWORD"] != s.DB.Password {
		t.Errorf("PHPDefines read back %v", got)
	}

	bad := []func(s *SiteConfig){
		func(s *SiteConfig) { s.DB.Type = "postgresql" },
		func(s *SiteConfig) { s.TablePrefix = "x'; --" },
		func(s *SiteConfig) { s.URL = "ftp://c1.test" },
		func(s *SiteConfig) { s.URL = "http://c1.test/?x=1" },
		func(s *SiteConfig) { s.Aliases = []string{"c1.test"} },
		func(s *SiteConfig) { s.Domain = "c1.test/../x" },
	}
	for i, f := range bad {
		c := s
		f(&c)
		if _, err := RenderSiteConfig(c); err == nil {
			t.Errorf("case %d: %+v was accepted", i, c)
		}
	}
}

// dispatch runs the platform's wp-config.php for a host with a stand-in
// wp-settings.php (ABSPATH points elsewhere) that prints the site it got.
func dispatch(t *testing.T, root, host string) (string, error) {
	t.Helper()
	stub := t.TempDir()
	apptest.WriteTree(t, stub, map[string]string{"wp-settings.php": "<?php\necho AEGIR_SITE . ' ' . DB_NAME . ' ' . $table_prefix;\n"})
	cmd := exec.Command("php", "-r", `$_SERVER["HTTP_HOST"] = getenv("H"); define("ABSPATH", getenv("STUB") . "/"); require "wp-config.php";`)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "H="+host, "STUB="+stub)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestWordPressDispatcher(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	root := apptest.WPPlatform(t)
	p, err := app.Verify(ctx, ex, root, app.VerifyOptions{Keep: app.KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	apptest.PHPLint(t, filepath.Join(root, "wp-config.php"))
	own := app.Owner{WebGroup: "www-data"}
	db := app.DB{Type: "mariadb", Name: "disp_a", User: "disp_a", Password: "x", Host: "localhost"}
	site := SiteConfig{Domain: "disp-a.test", Aliases: []string{"www.disp-a.test", "old.disp-a.test"}, DB: db, TablePrefix: "da_"}
	t.Cleanup(func() { app.RemoveSite(ctx, ex, p, "disp-a.test") })
	if changed, err := WriteSiteConfig(ctx, ex, p, site, own); err != nil || !changed {
		t.Fatalf("WriteSiteConfig: %v, %v", changed, err)
	}
	for _, f := range []string{"disp-a.test.php", "www.disp-a.test.php", "old.disp-a.test.php"} {
		apptest.PHPLint(t, filepath.Join(p.SitesDir(), f))
	}
	if _, grp, mode := apptest.FileGroup(t, filepath.Join(p.SitesDir(), "disp-a.test.php")); grp != "www-data" || mode.Perm() != 0o440 {
		t.Errorf("site config: group %s mode %s", grp, mode)
	}
	for _, host := range []string{"disp-a.test", "DISP-A.test:8080", "www.disp-a.test", "old.disp-a.test.", "Www.Disp-A.Test:443"} {
		out, err := dispatch(t, root, host)
		if err != nil || out != "disp-a.test disp_a da_" {
			t.Errorf("host %q: %q, %v", host, out, err)
		}
	}
	for _, host := range []string{"", "unknown.test", "../wp-content/aegir-sites/disp-a.test", "disp-a.test/x", "[::1]:80", "index", "disp-a.test.php"} {
		out, err := dispatch(t, root, host)
		if err == nil || !strings.Contains(out, "no site is configured for host") || strings.Contains(out, "disp_a") {
			t.Errorf("host %q answered: %q, %v", host, out, err)
		}
	}
	// Written again: the same salts, nothing changes.
	if changed, err := WriteSiteConfig(ctx, ex, p, site, own); err != nil || changed {
		t.Fatalf("second write: changed %v, %v", changed, err)
	}
	// An alias dropped: its file goes.
	site.Aliases = []string{"www.disp-a.test"}
	if changed, err := WriteSiteConfig(ctx, ex, p, site, own); err != nil || !changed {
		t.Fatalf("third write: changed %v, %v", changed, err)
	}
	if out, err := dispatch(t, root, "old.disp-a.test"); err == nil {
		t.Errorf("the dropped alias still answers: %q", out)
	}
	// Another site cannot take an alias or the domain of this one.
	other := SiteConfig{Domain: "disp-b.test", DB: db}
	for _, alias := range []string{"www.disp-a.test", "disp-a.test"} {
		other.Aliases = []string{alias}
		_, err := WriteSiteConfig(ctx, ex, p, other, own)
		var pe *provision.Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "already a site or an alias") {
			t.Errorf("alias %s taken from another site: %v", alias, err)
		}
	}
	if _, err := os.Stat(filepath.Join(p.SitesDir(), "disp-b.test.php")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused site's config was written: %v", err)
	}
	// Removed: no file of the site is left.
	if err := app.RemoveSite(ctx, ex, p, "disp-a.test"); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(p.SitesDir(), "*disp-a*"))
	if len(left) != 0 {
		t.Errorf("left after RemoveSite: %v", left)
	}
}
