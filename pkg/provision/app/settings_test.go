package app

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// tricky are values that break naive quoting in PHP, SQL or the shell.
var tricky = []string{
	"", "plain", "it's", `back\slash`, `trailing\`, `\'`, `\\'`, `'; system('id'); '`, `$HOME ${x} {$y}`,
	"new\nline", "?> <?php echo 1; ?>", `"double"`, "tab\tand unicode: é ü 日本", `\n is not a newline`,
}

func TestPHPString(t *testing.T) {
	var lits []string
	for _, s := range tricky {
		lits = append(lits, PHPString(s))
		if got := unquotePHP(PHPString(s)[1 : len(PHPString(s))-1]); got != s {
			t.Errorf("unquotePHP(PHPString(%q)) = %q", s, got)
		}
	}
	file := filepath.Join(t.TempDir(), "lits.php")
	code := "<?php\n$v = array(\n" + strings.Join(lits, ",\n") + "\n);\necho json_encode($v);\n"
	if err := os.WriteFile(file, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	phpLint(t, file)
	out, err := exec.Command("php", file).Output()
	if err != nil {
		t.Fatalf("php: %v", err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(tricky) {
		t.Fatalf("got %d values", len(got))
	}
	for i := range tricky {
		if got[i] != tricky[i] {
			t.Errorf("PHP read %s as %q, want %q", lits[i], got[i], tricky[i])
		}
	}
	if err := checkPHPValue("x", "a\x00b"); err == nil {
		t.Error("a NUL byte was accepted")
	}
}

// includeSettings includes a settings.php with php-cli (as Drupal does,
// with $app_root and $site_path set) and returns what it set.
func includeSettings(t *testing.T, file string) map[string]any {
	t.Helper()
	phpLint(t, file)
	out := phpEval(t, filepath.Dir(file), `$app_root = getcwd(); $site_path = "sites/x"; $databases = array(); $settings = array(); $conf = array(); $config = array();
		include getenv("SETTINGS");
		$hosts = array();
		foreach (isset($settings["trusted_host_patterns"]) ? $settings["trusted_host_patterns"] : array() as $p) {
			foreach (array("d1.example.com", "WWW.D1.example.com", "alias.test", "d1xexample.com", "evil.d1.example.com", "d1.example.com.evil") as $h) {
				if (preg_match("{" . $p . "}i", $h)) { $hosts[] = $h; }
			}
		}
		echo json_encode(array("databases" => $databases, "settings" => $settings, "conf" => $conf, "config" => $config,
			"salt" => isset($drupal_hash_salt) ? $drupal_hash_salt : null, "trusted" => $hosts));`, "SETTINGS="+file)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return m
}

func TestDrupalSettings(t *testing.T) {
	cases := []struct {
		major     int
		dbType    string
		driver    string
		namespace string
	}{
		{7, "mariadb", "mysql", ""},
		{7, "postgresql", "pgsql", ""},
		{9, "mysql", "mysql", `Drupal\Core\Database\Driver\mysql`},
		{10, "mariadb", "mysql", `Drupal\mysql\Driver\Database\mysql`},
		{11, "postgresql", "pgsql", `Drupal\pgsql\Driver\Database\pgsql`},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.major)+"-"+c.dbType, func(t *testing.T) {
			s := DrupalSettings{Major: c.major, Domain: "d1.example.com", Aliases: []string{"www.d1.example.com", "alias.test"},
				DB:       DB{Type: c.dbType, Name: "db_1", User: "u'1", Password: `pa'ss\word"$x?>`, Host: "db.internal", Port: 3307},
				HashSalt: `salt'\`}
			b, err := RenderDrupalSettings(s)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "settings.php")
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
			writeTree(t, dir, map[string]string{"local.settings.php": "<?php\n$conf['local'] = 'yes';\n$settings['local'] = 'yes';\n"})
			m := includeSettings(t, file)
			db := m["databases"].(map[string]any)["default"].(map[string]any)["default"].(map[string]any)
			want := map[string]any{"driver": c.driver, "database": "db_1", "username": "u'1", "password": `pa'ss\word"$x?>`, "host": "db.internal", "port": float64(3307), "prefix": ""}
			if c.namespace != "" {
				want["namespace"] = c.namespace
			}
			if c.major >= 10 {
				want["autoload"] = "core/modules/" + c.driver + "/src/Driver/Database/" + c.driver + "/"
			}
			if c.major >= 8 && c.driver == "mysql" {
				want["collation"] = "utf8mb4_general_ci"
			}
			for k, v := range want {
				if db[k] != v {
					t.Errorf("$databases[default][default][%s] = %#v, want %#v", k, db[k], v)
				}
			}
			if len(db) != len(want) {
				t.Errorf("$databases has keys %v", db)
			}
			if drupalHashSalt(b) != `salt'\` {
				t.Errorf("hash salt read back as %q", drupalHashSalt(b))
			}
			paths := SitePaths("d1.example.com")
			if c.major == 7 {
				conf := m["conf"].(map[string]any)
				if m["salt"] != `salt'\` || conf["file_public_path"] != paths.Public || conf["file_private_path"] != paths.Private ||
					conf["file_temporary_path"] != paths.Temp || conf["announcements_feed_enable_by_default_opt_out"] != true || conf["local"] != "yes" {
					t.Errorf("Drupal 7 settings: salt %v conf %v", m["salt"], conf)
				}
				return
			}
			st := m["settings"].(map[string]any)
			if st["hash_salt"] != `salt'\` || st["file_public_path"] != paths.Public || st["file_private_path"] != paths.Private ||
				st["file_temp_path"] != paths.Temp || st["config_sync_directory"] != paths.ConfigSync || st["local"] != "yes" {
				t.Errorf("settings: %v", st)
			}
			trusted, _ := json.Marshal(m["trusted"])
			if string(trusted) != `["d1.example.com","WWW.D1.example.com","alias.test"]` {
				t.Errorf("trusted_host_patterns %v let these hosts in: %s", st["trusted_host_patterns"], trusted)
			}
		})
	}
}

func TestDrupalSettingsRefused(t *testing.T) {
	ok := DrupalSettings{Major: 10, Domain: "a.test", DB: DB{Type: "mariadb", Name: "a", User: "a", Password: "p", Host: "localhost"}}
	if _, err := RenderDrupalSettings(ok); err != nil {
		t.Fatal(err)
	}
	bad := []func(s *DrupalSettings){
		func(s *DrupalSettings) { s.Major = 6 },
		func(s *DrupalSettings) { s.Domain = "../etc" },
		func(s *DrupalSettings) { s.Domain = "A.test" },
		func(s *DrupalSettings) { s.Aliases = []string{"x y.test"} },
		func(s *DrupalSettings) { s.DB.Type = "oracle" },
		func(s *DrupalSettings) { s.DB.Name = "" },
		func(s *DrupalSettings) { s.DB.Password = "a\x00b" },
		func(s *DrupalSettings) { s.DB.Port = 70000 },
	}
	for i, f := range bad {
		s := ok
		f(&s)
		if _, err := RenderDrupalSettings(s); err == nil {
			t.Errorf("case %d: %+v was accepted", i, s)
		}
	}
}

func fileGroup(t *testing.T, p string) (string, string, os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	return u.Username, g.Name, fi.Mode()
}

func TestWriteDrupalSettings(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	root := buildDrupal(t, drupal10Files, "web")
	p, err := Detect(ctx, ex, root)
	if err != nil {
		t.Fatal(err)
	}
	s := DrupalSettings{Domain: "w1.test", DB: DB{Type: "mariadb", Name: "w1", User: "w1", Password: "secret", Host: "localhost"}}
	own := Owner{WebUser: "www-data", WebGroup: "www-data"}
	changed, err := WriteDrupalSettings(ctx, ex, p, s, own)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	file := filepath.Join(root, "web/sites/w1.test/settings.php")
	first, _ := os.ReadFile(file)
	salt := drupalHashSalt(first)
	if len(salt) < 40 {
		t.Errorf("hash salt %q", salt)
	}
	if _, grp, mode := fileGroup(t, file); grp != "www-data" || mode.Perm() != 0o440 {
		t.Errorf("settings.php: group %s mode %s", grp, mode)
	}
	// Written again from the same record: same salt, nothing changes.
	changed, err = WriteDrupalSettings(ctx, ex, p, s, own)
	if err != nil || changed {
		t.Fatalf("second write: changed %v, %v", changed, err)
	}
	// A changed alias changes the file, and keeps the salt.
	s.Aliases = []string{"www.w1.test"}
	if changed, err = WriteDrupalSettings(ctx, ex, p, s, own); err != nil || !changed {
		t.Fatalf("third write: changed %v, %v", changed, err)
	}
	third, _ := os.ReadFile(file)
	if drupalHashSalt(third) != salt || !strings.Contains(string(third), `^www\\.w1\\.test$`) {
		t.Errorf("after an alias change: salt %q, file:\n%s", drupalHashSalt(third), third)
	}
	// Its directories, owned by the web server user.
	if _, err := PrepareDrupalSite(ctx, ex, p, "w1.test", own); err != nil {
		t.Fatal(err)
	}
	paths := SitePaths("w1.test")
	for _, d := range []string{paths.Public, paths.Private, paths.Temp, paths.ConfigSync} {
		usr, grp, mode := fileGroup(t, filepath.Join(p.Docroot, d))
		if usr != "www-data" || grp != "www-data" || !mode.IsDir() {
			t.Errorf("%s: %s:%s %s", d, usr, grp, mode)
		}
	}
	// The web server user can write to the files directory.
	if out, err := exec.Command("runuser", "-u", "www-data", "--", "touch", filepath.Join(p.Docroot, paths.Public, "x")).CombinedOutput(); err != nil {
		t.Errorf("www-data cannot write to the files directory: %v %s", err, out)
	}
	// The site's code (as www-data) puts a symbolic link where a private
	// directory was: the next preparation leaves the link (and says so),
	// and the directory it points at keeps its owner and mode.
	secret := t.TempDir()
	if err := os.Chmod(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(p.Docroot, paths.Temp)
	for _, argv := range [][]string{{"rm", "-r", temp}, {"ln", "-s", secret, temp}} {
		if out, err := exec.Command("runuser", append([]string{"-u", "www-data", "--"}, argv...)...).CombinedOutput(); err != nil {
			t.Fatalf("as www-data, %v: %v %s", argv, err, out)
		}
	}
	if skipped, err := PrepareDrupalSite(ctx, ex, p, "w1.test", own); err != nil || len(skipped) != 1 || skipped[0] != temp {
		t.Fatalf("a private directory swapped for a link: skipped %v, %v; want only %s skipped", skipped, err, temp)
	}
	if usr, _, mode := fileGroup(t, secret); usr != "root" || mode.Perm() != 0o700 {
		t.Fatalf("the link's target became %s %s", usr, mode)
	}
	if err := RemoveSite(ctx, ex, p, "w1.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.Docroot, "sites/w1.test")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("site directory still there: %v", err)
	}
	// Not a Drupal platform, or a bad domain: refused before writing.
	if _, err := WriteDrupalSettings(ctx, ex, Platform{Type: WordPress, Root: root}, s, own); err == nil {
		t.Error("wrote Drupal settings into a WordPress platform")
	}
	s.Domain = "../../x.test"
	if _, err := WriteDrupalSettings(ctx, ex, p, s, own); err == nil {
		t.Error("accepted a domain with ..")
	}
}

func TestWordPressSiteConfig(t *testing.T) {
	s := WordPressSite{Domain: "c1.test", Aliases: []string{"www.c1.test"}, URL: "https://c1.test:8443/",
		DB:          DB{Type: "mariadb", Name: "c1", User: "c1", Password: `pa'ss\word"$x?>`, Host: "127.0.0.1", Port: 3306},
		TablePrefix: "c1_", Salts: map[string]string{"AUTH_KEY": `a'b\`}}
	b, err := RenderWordPressSite(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c1.test.php")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	phpLint(t, file)
	// Loaded on its own (a direct request), it does nothing.
	if out := phpEval(t, dir, `include getenv("F"); echo "LEAK";`, "F="+file); strings.Contains(out, "LEAK") {
		t.Errorf("the site config ran without the dispatcher: %q", out)
	}
	out := phpEval(t, dir, `define("AEGIR_WP_DISPATCH", 1); include getenv("F");
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
	for _, k := range WordPressSalts {
		v := m.Keys[k]
		if k == "AUTH_KEY" && v != `a'b\` || k != "AUTH_KEY" && len(v) != 64 || seen[v] {
			t.Errorf("%s = %q", k, v)
		}
		seen[v] = true
	}
	if got := phpDefines(b); got["AUTH_KEY"] != `a'b\` || got["DB_PASSWORD"] != s.DB.Password {
		t.Errorf("phpDefines read back %v", got)
	}

	bad := []func(s *WordPressSite){
		func(s *WordPressSite) { s.DB.Type = "postgresql" },
		func(s *WordPressSite) { s.TablePrefix = "x'; --" },
		func(s *WordPressSite) { s.URL = "ftp://c1.test" },
		func(s *WordPressSite) { s.URL = "http://c1.test/?x=1" },
		func(s *WordPressSite) { s.Aliases = []string{"c1.test"} },
		func(s *WordPressSite) { s.Domain = "c1.test/../x" },
	}
	for i, f := range bad {
		c := s
		f(&c)
		if _, err := RenderWordPressSite(c); err == nil {
			t.Errorf("case %d: %+v was accepted", i, c)
		}
	}
}

// dispatch runs the platform's wp-config.php for a host with a stand-in
// wp-settings.php (ABSPATH points elsewhere) that prints the site it got.
func dispatch(t *testing.T, root, host string) (string, error) {
	t.Helper()
	stub := t.TempDir()
	writeTree(t, stub, map[string]string{"wp-settings.php": "<?php\necho AEGIR_SITE . ' ' . DB_NAME . ' ' . $table_prefix;\n"})
	cmd := exec.Command("php", "-r", `$_SERVER["HTTP_HOST"] = getenv("H"); define("ABSPATH", getenv("STUB") . "/"); require "wp-config.php";`)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "H="+host, "STUB="+stub)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestWordPressDispatcher(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	root := wpPlatform(t)
	p, err := Verify(ctx, ex, root, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	phpLint(t, filepath.Join(root, "wp-config.php"))
	own := Owner{WebGroup: "www-data"}
	db := DB{Type: "mariadb", Name: "disp_a", User: "disp_a", Password: "x", Host: "localhost"}
	site := WordPressSite{Domain: "disp-a.test", Aliases: []string{"www.disp-a.test", "old.disp-a.test"}, DB: db, TablePrefix: "da_"}
	t.Cleanup(func() { RemoveSite(ctx, ex, p, "disp-a.test") })
	if changed, err := WriteWordPressSite(ctx, ex, p, site, own); err != nil || !changed {
		t.Fatalf("WriteWordPressSite: %v, %v", changed, err)
	}
	for _, f := range []string{"disp-a.test.php", "www.disp-a.test.php", "old.disp-a.test.php"} {
		phpLint(t, filepath.Join(p.SitesDir(), f))
	}
	if _, grp, mode := fileGroup(t, filepath.Join(p.SitesDir(), "disp-a.test.php")); grp != "www-data" || mode.Perm() != 0o440 {
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
	if changed, err := WriteWordPressSite(ctx, ex, p, site, own); err != nil || changed {
		t.Fatalf("second write: changed %v, %v", changed, err)
	}
	// An alias dropped: its file goes.
	site.Aliases = []string{"www.disp-a.test"}
	if changed, err := WriteWordPressSite(ctx, ex, p, site, own); err != nil || !changed {
		t.Fatalf("third write: changed %v, %v", changed, err)
	}
	if out, err := dispatch(t, root, "old.disp-a.test"); err == nil {
		t.Errorf("the dropped alias still answers: %q", out)
	}
	// Another site cannot take an alias or the domain of this one.
	other := WordPressSite{Domain: "disp-b.test", DB: db}
	for _, alias := range []string{"www.disp-a.test", "disp-a.test"} {
		other.Aliases = []string{alias}
		_, err := WriteWordPressSite(ctx, ex, p, other, own)
		var pe *provision.Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "already a site or an alias") {
			t.Errorf("alias %s taken from another site: %v", alias, err)
		}
	}
	if _, err := os.Stat(filepath.Join(p.SitesDir(), "disp-b.test.php")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused site's config was written: %v", err)
	}
	// Removed: no file of the site is left.
	if err := RemoveSite(ctx, ex, p, "disp-a.test"); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(p.SitesDir(), "*disp-a*"))
	if len(left) != 0 {
		t.Errorf("left after RemoveSite: %v", left)
	}
}
