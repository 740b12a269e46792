package drupal

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// includeSettings includes a settings.php with php-cli (as Drupal does,
// with $app_root and $site_path set) and returns what it set.
func includeSettings(t *testing.T, file string) map[string]any {
	t.Helper()
	apptest.PHPLint(t, file)
	out := apptest.PHPEval(t, filepath.Dir(file), `$app_root = getcwd(); $site_path = "sites/x"; $databases = array(); $settings = array(); $conf = array(); $config = array();
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
			s := Settings{Major: c.major, Domain: "d1.example.com", Aliases: []string{"www.d1.example.com", "alias.test"},
				DB:       app.DB{Type: c.dbType, Name: "db_1", User: "u'1", Password: `pa'ss\word"$x?>`, Host: "db.internal", Port: 3307},
				HashSalt: `salt'\`}
			b, err := RenderSettings(s)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "settings.php")
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
			apptest.WriteTree(t, dir, map[string]string{"local.settings.php": "<?php\n$conf['local'] = 'yes';\n$settings['local'] = 'yes';\n"})
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
			if hashSalt(b) != `salt'\` {
				t.Errorf("hash salt read back as %q", hashSalt(b))
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
	ok := Settings{Major: 10, Domain: "a.test", DB: app.DB{Type: "mariadb", Name: "a", User: "a", Password: "p", Host: "localhost"}}
	if _, err := RenderSettings(ok); err != nil {
		t.Fatal(err)
	}
	bad := []func(s *Settings){
		func(s *Settings) { s.Major = 6 },
		func(s *Settings) { s.Domain = "../etc" },
		func(s *Settings) { s.Domain = "A.test" },
		func(s *Settings) { s.Aliases = []string{"x y.test"} },
		func(s *Settings) { s.DB.Type = "oracle" },
		func(s *Settings) { s.DB.Name = "" },
		func(s *Settings) { s.DB.Password = "a\x00b" },
		func(s *Settings) { s.DB.Port = 70000 },
	}
	for i, f := range bad {
		s := ok
		f(&s)
		if _, err := RenderSettings(s); err == nil {
			t.Errorf("case %d: %+v was accepted", i, s)
		}
	}
}

func TestWriteDrupalSettings(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	root := apptest.BuildDrupal(t, apptest.Drupal10Files, "web")
	p, err := app.Detect(ctx, ex, root)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{Domain: "w1.test", DB: app.DB{Type: "mariadb", Name: "w1", User: "w1", Password: "secret", Host: "localhost"}}
	own := app.Owner{WebUser: "www-data", WebGroup: "www-data"}
	changed, err := WriteSettings(ctx, ex, p, s, own)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	file := filepath.Join(root, "web/sites/w1.test/settings.php")
	first, _ := os.ReadFile(file)
	salt := hashSalt(first)
	if len(salt) < 40 {
		t.Errorf("hash salt %q", salt)
	}
	if _, grp, mode := apptest.FileGroup(t, file); grp != "www-data" || mode.Perm() != 0o440 {
		t.Errorf("settings.php: group %s mode %s", grp, mode)
	}
	// Written again from the same record: same salt, nothing changes.
	changed, err = WriteSettings(ctx, ex, p, s, own)
	if err != nil || changed {
		t.Fatalf("second write: changed %v, %v", changed, err)
	}
	// A changed alias changes the file, and keeps the salt.
	s.Aliases = []string{"www.w1.test"}
	if changed, err = WriteSettings(ctx, ex, p, s, own); err != nil || !changed {
		t.Fatalf("third write: changed %v, %v", changed, err)
	}
	third, _ := os.ReadFile(file)
	if hashSalt(third) != salt || !strings.Contains(string(third), `^www\\.w1\\.test$`) {
		t.Errorf("after an alias change: salt %q, file:\n%s", hashSalt(third), third)
	}
	// Its directories, owned by the web server user.
	if _, err := PrepareSite(ctx, ex, p, "w1.test", own); err != nil {
		t.Fatal(err)
	}
	paths := SitePaths("w1.test")
	for _, d := range []string{paths.Public, paths.Private, paths.Temp, paths.ConfigSync} {
		usr, grp, mode := apptest.FileGroup(t, filepath.Join(p.Docroot, d))
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
	if skipped, err := PrepareSite(ctx, ex, p, "w1.test", own); err != nil || len(skipped) != 1 || skipped[0] != temp {
		t.Fatalf("a private directory swapped for a link: skipped %v, %v; want only %s skipped", skipped, err, temp)
	}
	if usr, _, mode := apptest.FileGroup(t, secret); usr != "root" || mode.Perm() != 0o700 {
		t.Fatalf("the link's target became %s %s", usr, mode)
	}
	if err := app.RemoveSite(ctx, ex, p, "w1.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.Docroot, "sites/w1.test")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("site directory still there: %v", err)
	}
	// Not a Drupal platform, or a bad domain: refused before writing.
	if _, err := WriteSettings(ctx, ex, app.Platform{Type: entities.PlatformWordPress, Root: root}, s, own); err == nil {
		t.Error("wrote Drupal settings into a WordPress platform")
	}
	s.Domain = "../../x.test"
	if _, err := WriteSettings(ctx, ex, p, s, own); err == nil {
		t.Error("accepted a domain with ..")
	}
}
