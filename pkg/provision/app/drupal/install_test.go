package drupal

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	"github.com/aegir-project/aegir/pkg/provision/app/wordpress"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// standInRecorder is the body of a stand-in install_drupal(): it records
// what it received and how it was called into rec/record.json, then does
// what rec/mode says (nothing, throw, print an HTML page and exit 0, or
// die of a fatal error).
const standInRecorder = `
  $root = getcwd();
  $mode = trim((string) @file_get_contents($root . '/rec/mode'));
  $pw = function_exists('posix_getpwuid') ? posix_getpwuid(posix_geteuid()) : array('name' => '');
  file_put_contents($root . '/rec/record.json', json_encode(array(
    'args' => func_num_args(),
    'loader' => $loader,
    'settings' => $settings,
    'maintenance_mode' => defined('MAINTENANCE_MODE') ? MAINTENANCE_MODE : NULL,
    'drupal_root' => defined('DRUPAL_ROOT') ? DRUPAL_ROOT : NULL,
    'server_software_set' => isset($_SERVER['SERVER_SOFTWARE']),
    'server_software_key' => array_key_exists('SERVER_SOFTWARE', $_SERVER),
    'http_host' => $_SERVER['HTTP_HOST'],
    'script_name' => $_SERVER['SCRIPT_NAME'],
    'cwd' => $root,
    'user' => $pw['name'],
    'settings_php' => is_readable($root . '/sites/' . $_SERVER['HTTP_HOST'] . '/settings.php'),
  )));
  switch ($mode) {
    case 'throw':
      throw new Exception('SQLSTATE[HY000] [2002] Connection refused');
    case 'html':
      echo '<html><head><title>Error</title><style>h1{}</style></head><body><h1>Error</h1><p>The website encountered an unexpected error.</p></body></html>';
      exit(0);
    case 'fatal':
      undefined_function_xyz();
    case 'oom':
      ini_set('memory_limit', '16M');
      $a = str_repeat('x', 64 * 1024 * 1024);
  }
`

// standInDrupal7 and standInDrupal10 are the core files of stand-in trees
// whose installer records what it gets.
var (
	standInDrupal7 = map[string]string{
		"includes/install.core.inc": "<?php\nfunction install_drupal($settings = array()) {\n  $loader = NULL;\n" + standInRecorder + "}\n",
	}
	standInDrupal10 = map[string]string{
		"autoload.php":                   "<?php\nclass StandInClassLoader {}\nreturn new StandInClassLoader();\n",
		"core/includes/install.core.inc": "<?php\nfunction install_drupal($class_loader, $settings = [], $callback = NULL) {\n  $loader = get_class($class_loader);\n" + standInRecorder + "}\n",
	}
)

// record is what a stand-in installer recorded.
type record struct {
	Args              int
	Loader            *string
	Settings          map[string]any
	MaintenanceMode   *string `json:"maintenance_mode"`
	DrupalRoot        *string `json:"drupal_root"`
	ServerSoftwareSet bool    `json:"server_software_set"`
	ServerSoftwareKey bool    `json:"server_software_key"`
	HTTPHost          string  `json:"http_host"`
	ScriptName        string  `json:"script_name"`
	Cwd, User         string
	SettingsPHP       bool `json:"settings_php"`
}

// standInSite builds a stand-in Drupal platform with a site's settings
// and directories in place, as the install task prepares them.
func standInSite(t *testing.T, files, standIn map[string]string, docroot, domain string) (app.Platform, app.DB) {
	t.Helper()
	tree := map[string]string{}
	for k, v := range files {
		tree[k] = v
	}
	for k, v := range standIn {
		tree[k] = v
	}
	root := apptest.BuildDrupal(t, tree, docroot)
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	p, err := app.Detect(ctx, ex, root)
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(p.Docroot, "rec")
	if err := os.MkdirAll(rec, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(rec, 0o777); err != nil {
		t.Fatal(err)
	}
	db := app.DB{Type: "mariadb", Name: "standin", User: "standin", Password: `db'pa\ss"` + app.NewPassword(), Host: "127.0.0.1", Port: 3306}
	own := app.Owner{WebUser: "www-data", WebGroup: "www-data"}
	if _, err := WriteSettings(ctx, ex, p, Settings{Domain: domain, DB: db}, own); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareSite(ctx, ex, p, domain, own); err != nil {
		t.Fatal(err)
	}
	return p, db
}

func readRecord(t *testing.T, p app.Platform) record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.Docroot, "rec/record.json"))
	if err != nil {
		t.Fatalf("the stand-in installer did not run: %v", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return r
}

// get walks a decoded JSON value by keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestInstallDrupalContract(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		standIn map[string]string
		docroot string
	}{
		{"drupal7", apptest.Drupal7Files, standInDrupal7, ""},
		{"drupal10-web", apptest.Drupal10Files, standInDrupal10, "web"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			domain := "d-install.test"
			p, db := standInSite(t, c.files, c.standIn, c.docroot, domain)
			var log apptest.Log
			pass := `adm'in\pa"ss ?> $x` + app.NewPassword()
			err := Install(apptest.Ctx(t), aexec.NewLocal(), p, InstallOptions{
				Domain: domain, SiteName: `Site "one" \ 'two'`, SiteMail: "site@example.com", AdminName: "boss", AdminMail: "boss@example.com",
				AdminPassword: pass, DB: db, User: "www-data", Log: log.Logf,
			})
			if err != nil {
				t.Fatalf("Install: %v\n%s", err, log.String())
			}
			r := readRecord(t, p)
			// SERVER_SOFTWARE NULL: Drupal knows it runs from the command
			// line, and code that reads it finds no undefined key.
			if r.User != "www-data" || r.Cwd != p.Docroot || r.HTTPHost != domain || r.ServerSoftwareSet || !r.ServerSoftwareKey || !r.SettingsPHP {
				t.Errorf("installer ran as %q in %q for host %q (SERVER_SOFTWARE set: %v, there: %v, settings.php readable: %v)",
					r.User, r.Cwd, r.HTTPHost, r.ServerSoftwareSet, r.ServerSoftwareKey, r.SettingsPHP)
			}
			s := r.Settings
			form := get(s, "forms", "install_configure_form")
			checks := map[string][2]any{
				"profile":   {get(s, "parameters", "profile"), "standard"},
				"site name": {get(form, "site_name"), `Site "one" \ 'two'`},
				"site mail": {get(form, "site_mail"), "site@example.com"},
				"account":   {get(form, "account", "name"), "boss"},
				"mail":      {get(form, "account", "mail"), "boss@example.com"},
				"pass1":     {get(form, "account", "pass", "pass1"), pass},
				"pass2":     {get(form, "account", "pass", "pass2"), pass},
				"op":        {get(form, "op"), "Save and continue"},
				"driver":    {get(s, "forms", "install_settings_form", "driver"), "mysql"},
				"db name":   {get(s, "forms", "install_settings_form", "mysql", "database"), db.Name},
				"db pass":   {get(s, "forms", "install_settings_form", "mysql", "password"), db.Password},
				"db port":   {get(s, "forms", "install_settings_form", "mysql", "port"), "3306"},
			}
			if p.Major == 7 {
				checks["args"] = [2]any{float64(r.Args), float64(1)}
				checks["locale"] = [2]any{get(s, "parameters", "locale"), "en"}
				checks["maintenance"] = [2]any{deref(r.MaintenanceMode), "install"}
				checks["DRUPAL_ROOT"] = [2]any{deref(r.DrupalRoot), p.Docroot}
				checks["script"] = [2]any{r.ScriptName, "/install.php"}
				checks["update status"] = [2]any{mustJSON(get(form, "update_status_module")), `{"1":null,"2":null}`}
			} else {
				checks["args"] = [2]any{float64(r.Args), float64(2)}
				checks["class loader"] = [2]any{deref(r.Loader), "StandInClassLoader"}
				checks["langcode"] = [2]any{get(s, "parameters", "langcode"), "en"}
				checks["update status"] = [2]any{get(form, "enable_update_status_module"), false}
				checks["update mail"] = [2]any{get(form, "enable_update_status_emails"), false}
			}
			for what, c := range checks {
				if c[0] != c[1] {
					t.Errorf("%s: installer got %#v, want %#v", what, c[0], c[1])
				}
			}
			if strings.Contains(log.String(), pass) || strings.Contains(log.String(), db.Password) {
				t.Errorf("a password is in the log:\n%s", log.String())
			}
		})
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestInstallDrupal7UpdateStatusOn(t *testing.T) {
	p, db := standInSite(t, apptest.Drupal7Files, standInDrupal7, "", "upd.test")
	if err := Install(apptest.Ctx(t), aexec.NewLocal(), p, InstallOptions{Domain: "upd.test", DB: db, UpdateStatus: true, User: "www-data"}); err != nil {
		t.Fatal(err)
	}
	r := readRecord(t, p)
	form := get(r.Settings, "forms", "install_configure_form")
	if got := mustJSON(get(form, "update_status_module")); got != `{"1":1,"2":2}` {
		t.Errorf("update_status_module = %s", got)
	}
	// Defaults: site name and mails from the domain, admin "admin", a
	// generated password of 24 characters.
	if get(form, "site_name") != "upd.test" || get(form, "site_mail") != "admin@upd.test" || get(form, "account", "name") != "admin" ||
		len(get(form, "account", "pass", "pass1").(string)) != 24 {
		t.Errorf("defaults: %v", form)
	}
}

func TestInstallDrupalFailures(t *testing.T) {
	cases := []struct {
		mode, msg, hint string
	}{
		{"throw", "the Drupal installer failed: SQLSTATE[HY000] [2002] Connection refused", "database"},
		{"html", "stopped before the step finished: Error The website encountered an unexpected error.", "task log"},
		{"fatal", "the Drupal installer failed: Call to undefined function undefined_function_xyz()", "task log"},
		{"oom", "PHP error: Allowed memory size of 16777216 bytes exhausted", "memory_limit"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			p, db := standInSite(t, apptest.Drupal7Files, standInDrupal7, "", "fail.test")
			apptest.WriteTree(t, p.Docroot, map[string]string{"rec/mode": c.mode})
			var log apptest.Log
			err := Install(apptest.Ctx(t), aexec.NewLocal(), p, InstallOptions{Domain: "fail.test", DB: db, User: "www-data", Log: log.Logf})
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrInstall || !strings.Contains(pe.Msg, c.msg) || !strings.Contains(pe.Hint, c.hint) {
				t.Fatalf("install that fails with %s: %#v\n%s", c.mode, err, log.String())
			}
			if !strings.HasPrefix(pe.Msg, "Drupal install of fail.test: ") {
				t.Errorf("message %q", pe.Msg)
			}
		})
	}
	t.Run("not-a-docroot", func(t *testing.T) {
		p, db := standInSite(t, apptest.Drupal10Files, nil, "", "bare.test")
		os.Remove(filepath.Join(p.Docroot, "autoload.php"))
		err := Install(apptest.Ctx(t), aexec.NewLocal(), p, InstallOptions{Domain: "bare.test", DB: db})
		if err == nil || !strings.Contains(err.Error(), "not a Drupal 8+ docroot") {
			t.Fatalf("install without autoload.php: %v", err)
		}
	})
	t.Run("bad-input", func(t *testing.T) {
		p, db := standInSite(t, apptest.Drupal10Files, standInDrupal10, "", "ok.test")
		for _, o := range []InstallOptions{
			{Domain: "ok.test", DB: db, Profile: "../x"}, {Domain: "ok.test", DB: db, Locale: "en;rm"},
			{Domain: "ok.test", DB: db, SiteMail: "x"}, {Domain: "ok.test", DB: db, AdminName: "a\nb"},
			{Domain: "ok.test"}, {Domain: "ok.test/..", DB: db},
		} {
			err := Install(apptest.Ctx(t), aexec.NewLocal(), p, o)
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext {
				t.Errorf("%+v: %v", o, err)
			}
		}
		if _, err := os.Stat(filepath.Join(p.Docroot, "rec/record.json")); !errors.Is(err, os.ErrNotExist) {
			t.Error("the installer ran on bad input")
		}
	})
}

func TestInstallDrupalWithDrush(t *testing.T) {
	p, db := standInSite(t, apptest.Drupal10Files, standInDrupal10, "web", "dr.test")
	drush := filepath.Join(p.Root, "vendor/bin/drush")
	apptest.WriteTree(t, p.Root, map[string]string{"vendor/bin/drush": `#!/bin/sh
printf '%s\n' "$@" > "$(dirname "$0")/args.txt"
pwd >> "$(dirname "$0")/args.txt"
if [ -e "$(dirname "$0")/fail" ]; then
  echo "Failed to connect as x with password: hunter2" >&2
  exit 1
fi
echo " [success] Installation complete.  User name: admin  User password: Zk3drushSecret"
`})
	if err := os.Chmod(drush, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := app.Detect(apptest.Ctx(t), aexec.NewLocal(), p.Root)
	if err != nil || p.Drush != drush {
		t.Fatalf("drush %q, %v", p.Drush, err)
	}
	var log apptest.Log
	pass := app.NewPassword()
	o := InstallOptions{Domain: "dr.test", SiteName: "Site's name", AdminPassword: pass, DB: db, Drush: p.Drush, Log: log.Logf}
	if err := Install(apptest.Ctx(t), aexec.NewLocal(), p, o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	args, _ := os.ReadFile(filepath.Join(p.Root, "vendor/bin/args.txt"))
	want := strings.Join([]string{"--root=" + p.Docroot, "--uri=http://dr.test", "--yes", "site:install", "standard", "--sites-subdir=dr.test",
		"--locale=en", "--site-name=Site's name", "--site-mail=admin@dr.test", "--account-name=admin", "--account-mail=admin@dr.test", p.Docroot}, "\n") + "\n"
	if string(args) != want {
		t.Errorf("drush got:\n%s\nwant:\n%s", args, want)
	}
	if strings.Contains(string(args), pass) || strings.Contains(string(args), db.Password) {
		t.Error("a password is on drush's command line")
	}
	if strings.Contains(log.String(), "Zk3drushSecret") || !strings.Contains(log.String(), "Installation complete.  User name: admin  User password: ********") {
		t.Errorf("log:\n%s", log.String())
	}
	// Drupal 7 platforms get drush 8's verb.
	if c := DrushInstallCommand(app.Platform{Major: 7, Docroot: "/d"}, o); c.Args[3] != "site-install" {
		t.Errorf("drush 8 verb: %v", c.Args)
	}

	apptest.WriteTree(t, p.Root, map[string]string{"vendor/bin/fail": ""})
	err = Install(apptest.Ctx(t), aexec.NewLocal(), p, o)
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.Code != provision.ErrInstall || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "password: ********") {
		t.Errorf("failing drush: %v", err)
	}
}

// TestEmbeddedScriptsLint runs php -l on every PHP script as it runs
// (prelude, drupal-common.php and script).
func TestEmbeddedScriptsLint(t *testing.T) {
	apptest.LintScripts(t, phpFS, Scripts, PHPScript, map[string][]byte{}, "drupal-common.php")
}

// standInRequest is Symfony's Request as the stand-in Drupal 8+ cores
// need it.
const standInRequest = `namespace Symfony\Component\HttpFoundation {
  class Request {
    public $host;
    public static function createFromGlobals() {
      $r = new Request();
      $r->host = $_SERVER['HTTP_HOST'];
      return $r;
    }
  }
}
`

// Stand-in cores for the site script (login link, status): enough of
// Drupal's bootstrap for the script to call what it calls, checking the
// order (boot before preHandle, bootstrap before user functions).
var (
	standInSite7 = map[string]string{
		"includes/bootstrap.inc": `<?php
define('VERSION', '7.105');
define('DRUPAL_BOOTSTRAP_FULL', 7);
function drupal_bootstrap($phase) {
  $GLOBALS['base_url'] = 'http://' . $_SERVER['HTTP_HOST'];
  $GLOBALS['standin_phase'] = $phase;
}
function user_load($uid) {
  return $uid == 1 ? (object) array('uid' => 1, 'name' => 'admin') : FALSE;
}
function user_pass_reset_url($account) {
  if ($GLOBALS['standin_phase'] !== DRUPAL_BOOTSTRAP_FULL) {
    throw new Exception('not fully bootstrapped');
  }
  return $GLOBALS['base_url'] . '/user/reset/' . $account->uid . '/1700000000/hash7';
}
function variable_get($name, $default = NULL) {
  return $name == 'install_profile' ? 'standard' : $default;
}
function db_query($query) {
  if ($query !== 'SELECT name, type, status, schema_version FROM {system}') {
    throw new Exception('unexpected query: ' . $query);
  }
  return array(
    (object) array('name' => 'node', 'type' => 'module', 'status' => '1', 'schema_version' => '7016'),
    (object) array('name' => 'standard', 'type' => 'module', 'status' => '1', 'schema_version' => '0'),
    (object) array('name' => 'bartik', 'type' => 'theme', 'status' => '1', 'schema_version' => '-1'),
    (object) array('name' => 'views', 'type' => 'module', 'status' => '0', 'schema_version' => '-1'),
  );
}
`,
	}
	standInSite10 = map[string]string{
		"autoload.php": "<?php\n" + standInRequest + `namespace Drupal\Core {
  class DrupalKernel {
    public $booted = FALSE;
    public $request = NULL;
    public static function createFromRequest($request, $class_loader, $environment, $allow_dumping = TRUE, $app_root = NULL) {
      if (get_class($class_loader) !== 'StandInClassLoader' || $environment !== 'prod' || $app_root !== getcwd()) {
        throw new \Exception('createFromRequest got the wrong arguments');
      }
      return $GLOBALS['standin_kernel'] = new DrupalKernel();
    }
    public function boot() {
      $this->booted = TRUE;
    }
    public function preHandle($request) {
      if (!$this->booted) {
        throw new \Exception('preHandle before boot');
      }
      $this->request = $request;
    }
  }
}
namespace Drupal\user\Entity {
  class User {
    public $uid;
    public static function load($id) {
      if ($id != 1) {
        return NULL;
      }
      $u = new User();
      $u->uid = $id;
      return $u;
    }
  }
}
namespace {
  class StandInClassLoader {}
  class StandInConfig {
    public function get($key) {
      $data = array('module' => array('node' => 0, 'standard' => 1000), 'theme' => array('olivero' => 0), 'profile' => 'standard');
      return $data[$key];
    }
  }
  class StandInKeyValue {
    public function getAll() {
      return array('node' => 8500, 'standard' => 8000);
    }
  }
  class Drupal {
    const VERSION = '10.3.1';
    public static function config($name) {
      if ($name !== 'core.extension') {
        throw new Exception('unexpected config ' . $name);
      }
      return new StandInConfig();
    }
    public static function keyValue($collection) {
      if ($collection !== 'system.schema') {
        throw new Exception('unexpected collection ' . $collection);
      }
      return new StandInKeyValue();
    }
  }
  function user_pass_reset_url($account) {
    $request = $GLOBALS['standin_kernel']->request;
    if (!$request) {
      throw new Exception('the request was not handled');
    }
    return 'http://' . $request->host . '/user/reset/' . $account->uid . '/1700000000/hash10';
  }
  return new StandInClassLoader();
}
`,
	}
)

func TestDrupalSiteScript(t *testing.T) {
	cases := []struct {
		name, docroot, hash string
		files, standIn      map[string]string
		want                []Extension
	}{
		{"drupal7", "", "hash7", apptest.Drupal7Files, standInSite7, []Extension{
			{"node", "module", true, "7016"}, {"standard", "profile", true, "0"}, {"bartik", "theme", true, "-1"}, {"views", "module", false, "-1"}}},
		{"drupal10", "web", "hash10", apptest.Drupal10Files, standInSite10, []Extension{
			{"node", "module", true, "8500"}, {"standard", "profile", true, "8000"}, {"olivero", "theme", true, ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _ := standInSite(t, c.files, c.standIn, c.docroot, "site.test")
			ctx := apptest.Ctx(t)
			ex := aexec.NewLocal()
			link, err := LoginLink(ctx, ex, p, "site.test", "http://site.test:8080", "www-data", nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := "http://site.test:8080/user/reset/1/1700000000/" + c.hash + "/login"; link != want {
				t.Errorf("login link %q, want %q", link, want)
			}
			st, err := ReadStatus(ctx, ex, p, "site.test", "", "www-data", nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != p.Version || st.Profile != "standard" || mustJSON(st.Extensions) != mustJSON(c.want) {
				t.Errorf("status %+v", st)
			}
			if _, err := wordpress.ReadStatus(ctx, ex, p, "site.test", "", "", nil); err == nil {
				t.Error("WordPress status of a Drupal platform")
			}
		})
	}
}
