package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/provision/db"
)

// hostEnv is one aegir home with a private web server and php-fpm and the
// system MariaDB, ready for sites.
type hostEnv struct {
	home string
	web  *testenv.Web
	fpm  string // php-fpm's socket
}

// newHostEnv makes the hostEnv with a web server of kind; each of ini
// sets a PHP setting of its php-fpm (testenv.StartPHPFPM).
func newHostEnv(t *testing.T, kind string, ini ...string) *hostEnv {
	t.Helper()
	return startHost(t, kind, func(t testing.TB) *testenv.PHPFPM { return testenv.StartPHPFPM(t, ini...) }, nil)
}

// startHost starts the web server kind and a php-fpm (start) for a new
// home, lets config add to its configuration, and adds the server web1.
func startHost(t *testing.T, kind string, start func(testing.TB) *testenv.PHPFPM, config func(home string, fpm *testenv.PHPFPM)) *hostEnv {
	t.Helper()
	home := newHome(t)
	cfgDir := filepath.Join(home, "config", "web1")
	var w *testenv.Web
	if kind == "apache" {
		w = testenv.StartApache(t, cfgDir)
	} else {
		w = testenv.StartNginx(t, cfgDir)
	}
	fpm := start(t)
	if config != nil {
		config(home, fpm)
	}
	must(t, home, "server", "add", "web1", "--host", "localhost", "-q",
		"--http", kind, "--http-port", itoa(w.Port), "--https-port", itoa(w.HTTPSPort),
		"--http-listen-ip", "127.0.0.1", "--http-test-cmd", w.TestCmd, "--http-restart-cmd", w.ReloadCmd, "--php-fpm", fpm.Socket,
		"--db", "mariadb", "--db-host", "127.0.0.1")
	return &hostEnv{home: home, web: w, fpm: fpm.Socket}
}

// get fetches path from the web server as Host host, once, without
// following redirects: when a command returns, the site answers as it
// says (its reload waited for, php-fpm's compiled settings refreshed),
// so there is nothing to wait for. An answer that is not what ok expects
// is logged; the caller judges it.
func (h *hostEnv) get(t *testing.T, host, path string, ok func(code int, body string, hdr http.Header) bool) (int, string, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", h.web.URL()+path, nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Logf("GET %s%s: %v", host, path, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !ok(resp.StatusCode, string(b), resp.Header) {
		t.Logf("GET %s%s: %d %.200q (Location %q), not the answer expected", host, path, resp.StatusCode, b, resp.Header.Get("Location"))
	}
	return resp.StatusCode, string(b), resp.Header
}

func mariadb(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func dbExists(t *testing.T, name string) bool {
	var n int
	if err := mariadb(t).QueryRow(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func dbUserExists(t *testing.T, name string) bool {
	var n int
	if err := mariadb(t).QueryRow(`SELECT COUNT(*) FROM mysql.user WHERE User = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func siteRecord(t *testing.T, home, domain string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(must(t, home, "site", "show", domain, "--format", "json")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The whole life of a WordPress site, on nginx and on apache: install with
// an alias, the page answers on the domain and the alias, redirect, disable,
// enable, verify (idempotent), delete: database, user, files and vhost gone.
func TestSiteLifecycleWordPress(t *testing.T) {
	for _, kind := range []string{"nginx", "apache"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newHostEnv(t, kind)
			root := h.wpPlatform(t, "wp")
			domain := testsite.Unique("wp1-" + kind)
			dbName := db.NameFor(domain, nil)
			testsite.DropDBsOf(t, domain)

			must(t, h.home, "site", "install", domain, "--platform", "wp", "--alias", "www."+domain, "-q")
			rec := siteRecord(t, h.home, domain)
			if rec["status"] != "installed" || rec["db_name"] != dbName {
				t.Fatalf("site record after install: %v", rec)
			}
			title := "<title>" + domain + "</title>"
			hasTitle := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }
			if code, body, _ := h.get(t, domain, "/", hasTitle); !hasTitle(code, body, nil) {
				t.Fatalf("GET %s: %d, want the site's title; body: %.300s", domain, code, body)
			}
			// The alias reaches the site: WordPress itself answers it, with
			// its canonical redirect to the site's address.
			canonical := "http://" + domain + ":" + itoa(h.web.Port) + "/"
			servedByWP := func(code int, body string, hdr http.Header) bool {
				return hasTitle(code, body, hdr) || (code == 301 && hdr.Get("Location") == canonical && hdr.Get("X-Redirect-By") == "WordPress")
			}
			if code, body, hdr := h.get(t, "www."+domain, "/", servedByWP); !servedByWP(code, body, hdr) {
				t.Fatalf("GET alias: %d %v, want the site; body: %.300s", code, hdr, body)
			}
			if !dbExists(t, dbName) || !dbUserExists(t, dbName) {
				t.Fatalf("database or user %s missing after install", dbName)
			}

			// A second verify changes no file and reloads nothing.
			_, errs, code := aegir(t, h.home, "site", "verify", domain)
			if code != 0 || !strings.Contains(errs, "already up to date") || strings.Contains(errs, "reload") {
				t.Fatalf("second verify: exit %d, want no change and no reload:\n%s", code, errs)
			}

			// Redirect: the alias answers 301 to the domain, keeping the path.
			must(t, h.home, "site", "edit", domain, "--redirect", "-q")
			wantLoc := "http://" + domain + ":" + itoa(h.web.Port) + "/a/b?c=1"
			redirects := func(code int, _ string, hdr http.Header) bool {
				return code == 301 && hdr.Get("Location") == wantLoc
			}
			if code, _, hdr := h.get(t, "www."+domain, "/a/b?c=1", redirects); !redirects(code, "", hdr) {
				t.Fatalf("alias with --redirect: %d Location %q, want 301 %s", code, hdr.Get("Location"), wantLoc)
			}

			// Disable: the disabled page; enable: the site again. Both name
			// the site as a person may type it: by its alias, in capitals.
			must(t, h.home, "site", "disable", "WWW."+strings.ToUpper(domain), "-q")
			disabled := func(code int, body string, _ http.Header) bool {
				return code == 503 && strings.Contains(strings.ToLower(body), "disabled")
			}
			if code, body, _ := h.get(t, domain, "/", disabled); !disabled(code, body, nil) {
				t.Fatalf("disabled site: %d %.200s", code, body)
			}
			if rec := siteRecord(t, h.home, domain); rec["status"] != "disabled" {
				t.Fatalf("status after disable: %v", rec["status"])
			}
			must(t, h.home, "site", "enable", strings.ToUpper(domain)+".", "-q")
			if code, body, _ := h.get(t, domain, "/", hasTitle); !hasTitle(code, body, nil) {
				t.Fatalf("enabled site: %d %.200s", code, body)
			}

			// Cron through the site's own URL, and statistics from its database
			// (a fresh WordPress has its admin, "Hello world!" and one comment).
			must(t, h.home, "site", "cron", domain, "-q")
			if _, errs, code := aegir(t, h.home, "site", "updatedb", domain); code != 0 || !strings.Contains(strings.ToLower(errs), "up to date") {
				t.Fatalf("updatedb on a fresh site: exit %d\n%s", code, errs)
			}
			var stats struct {
				Users, Posts, Comments int
				DBBytes                int64 `json:"db_bytes"`
				FilesBytes             int64 `json:"files_bytes"`
			}
			if err := json.Unmarshal([]byte(must(t, h.home, "site", "stats", domain, "--format", "json", "-q")), &stats); err != nil {
				t.Fatal(err)
			}
			if stats.Users != 1 || stats.Posts != 1 || stats.Comments != 1 {
				t.Fatalf("site stats: %+v, want 1 user, 1 post, 1 comment", stats)
			}
			// Disk usage, for the client's quota: the database at least one
			// 16 KiB InnoDB page a table, and at least the site's own
			// configuration file.
			if tables := dbTables(t, siteRecord(t, h.home, domain)["db_name"].(string)); tables < 10 || stats.DBBytes < tables*16<<10 {
				t.Fatalf("site stats: database %d bytes for %d tables", stats.DBBytes, tables)
			}
			if stats.FilesBytes < 1024 {
				t.Fatalf("site stats: files %d bytes, want at least the site's settings file", stats.FilesBytes)
			}
			if rec := siteRecord(t, h.home, domain); rec["last_cron"] == nil || rec["stats"] == nil {
				t.Fatalf("site show lacks last_cron or stats: %v", rec)
			}

			// Verify records which of the platform's packages the site has on.
			var pkgs []struct {
				Name, Type string
				Enabled    bool
			}
			if err := json.Unmarshal([]byte(must(t, h.home, "package", "list", "--site", domain, "--format", "json")), &pkgs); err != nil {
				t.Fatal(err)
			}
			on := map[string]bool{}
			for _, p := range pkgs {
				on[p.Type+"/"+p.Name] = p.Enabled
			}
			if !on["theme/twentytwentythree"] || on["plugin/akismet"] || len(pkgs) < 3 {
				t.Fatalf("site packages after verify: %+v", pkgs)
			}

			// A one-time login link, printed once, that lands on the dashboard.
			link := strings.TrimSpace(must(t, h.home, "site", "login-reset", domain, "-q"))
			if !strings.HasPrefix(link, "http://"+domain+":"+itoa(h.web.Port)+"/wp-login.php?action=aegir-login#token=") {
				t.Fatalf("login link %q", link)
			}
			checkLoginLink(t, h, link)
			if logs := must(t, h.home, "task", "list", "--format", "json"); strings.Contains(logs, "token=") {
				t.Fatal("the login link was stored in the task list")
			}

			// Delete: vhost, files, database and user all gone; the domain is free.
			must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
			if dbExists(t, dbName) || dbUserExists(t, dbName) {
				t.Fatal("database or user left after delete")
			}
			if _, err := os.Stat(filepath.Join(h.home, "config", "web1", "vhost.d", domain+".conf")); !os.IsNotExist(err) {
				t.Fatalf("vhost left after delete: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(root, "wp-content", "aegir-sites", domain+"*")); len(left) > 0 {
				t.Fatalf("site config left after delete: %v", left)
			}
			gone := func(code int, body string, _ http.Header) bool { return !strings.Contains(body, title) }
			if code, body, _ := h.get(t, domain, "/", gone); !gone(code, body, nil) {
				t.Fatalf("deleted site still answers: %d", code)
			}
			if out := must(t, h.home, "site", "list", "--format", "csv", "--fields", "domain"); strings.Contains(out, domain) {
				t.Fatalf("deleted site still listed:\n%s", out)
			}
		})
	}
}

// A failing install leaves nothing behind: the web server's config test
// refuses the vhost (a broken template override), after the database, the
// settings and WordPress's own install were done; all are rolled back.
func TestSiteInstallRollback(t *testing.T) {
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain := testsite.Unique("broken")
	dbName := db.NameFor(domain, nil)
	testsite.DropDBsOf(t, domain)
	if err := os.WriteFile(filepath.Join(h.home, "templates", "nginx-site.conf.tmpl"), []byte("server { this is not nginx; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := aegir(t, h.home, "site", "install", domain, "--platform", "wp")
	if code != cli.ExitFailed {
		t.Fatalf("install with a broken template: exit %d, want 1\n%s", code, errs)
	}
	for _, want := range []string{"rolling back", "rollback: drop database " + dbName, "hint: "} {
		if !strings.Contains(errs, want) {
			t.Errorf("install log lacks %q:\n%s", want, errs)
		}
	}
	if dbExists(t, dbName) || dbUserExists(t, dbName) {
		t.Error("database or user left by the failed install")
	}
	if left, _ := filepath.Glob(filepath.Join(root, "wp-content", "aegir-sites", domain+"*")); len(left) > 0 {
		t.Errorf("site config left by the failed install: %v", left)
	}
	if _, err := os.Stat(filepath.Join(h.home, "config", "web1", "vhost.d", domain+".conf")); !os.IsNotExist(err) {
		t.Errorf("vhost left by the failed install: %v", err)
	}
	// The task says why, and the site waits for a retry.
	var tasks []struct {
		ID            int
		Status, Error string
	}
	_ = json.Unmarshal([]byte(must(t, h.home, "task", "list", "--site", domain, "--format", "json")), &tasks)
	if len(tasks) == 0 || tasks[0].Status != "error" || !strings.Contains(tasks[0].Error, "config test failed") {
		t.Fatalf("install task: %+v", tasks)
	}
	// Fixed, the retry installs it.
	os.Remove(filepath.Join(h.home, "templates", "nginx-site.conf.tmpl"))
	id := strings.TrimSpace(must(t, h.home, "task", "retry", fmt.Sprint(tasks[0].ID)))
	must(t, h.home, "hosting", "dispatch")
	var task struct{ Status string }
	_ = json.Unmarshal([]byte(must(t, h.home, "task", "show", id, "--format", "json")), &task)
	if task.Status != "success" {
		t.Fatalf("retried install: %s\n%s", task.Status, must(t, h.home, "task", "log", id))
	}
	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
}

// A Drupal 10 platform built by the test, with a stand-in drush that
// records its arguments (Drupal itself cannot be fetched here): install
// goes through the platform's drush, with the site name and admin account
// that --title, --admin-user and --admin-email gave; the generated settings.php passes
// php -l and, included by php-cli, gives back the site's database.
func TestSiteInstallDrupalWithDrush(t *testing.T) {
	h := newHostEnv(t, "nginx")
	root := filepath.Join(testenv.PublicDir(t), "d10")
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("core/lib/Drupal.php", "<?php\nnamespace Drupal;\nclass Drupal {\n  const VERSION = '10.3.6';\n}\n", 0o644)
	write("core/modules/node/node.info.yml", "name: Node\ntype: module\npackage: Core\nversion: VERSION\n", 0o644)
	write("index.php", "<?php echo 'drupal ok';\n", 0o644)
	write("sites/default/default.settings.php", "<?php\n", 0o644)
	argsLog := filepath.Join(testenv.PublicDir(t), "drush-args")
	write("vendor/bin/drush", "#!/bin/sh\n# stand-in drush: records its arguments, one a line\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> "+argsLog+"\necho '[success] Installation complete.'\n", 0o755)
	if err := os.Chmod(filepath.Dir(argsLog), 0o777); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "platform", "add", "d10", "--server", "web1", "--root", root, "--drush", filepath.Join(root, "vendor/bin/drush"), "-q")
	if p := must(t, h.home, "platform", "show", "d10", "--format", "json"); !strings.Contains(p, `"core_version": "10.3.6"`) || !strings.Contains(p, `"type": "drupal"`) {
		t.Fatalf("platform after verify:\n%s", p)
	}
	domain := testsite.Domain(t, "d10-")
	must(t, h.home, "site", "install", domain, "--platform", "d10", "--profile", "minimal", "-q",
		"--title", "Jane's site", "--admin-user", "jane", "--admin-email", "jane@example.com")
	args, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"site:install", "minimal", "--sites-subdir=" + domain,
		"--site-name=Jane's site\n", "--account-name=jane\n", "--account-mail=jane@example.com\n", "--site-mail=admin@" + domain + "\n"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("drush was not given %q; it got:\n%s", want, args)
		}
	}
	rec := siteRecord(t, h.home, domain)
	pw := siteDBPassword(t, h.home, domain)
	if strings.Contains(string(args), pw) {
		t.Error("the database password reached drush's command line")
	}
	settings := filepath.Join(root, "sites", domain, "settings.php")
	if out, err := exec.Command("php", "-l", settings).CombinedOutput(); err != nil {
		t.Fatalf("php -l settings.php: %v\n%s", err, out)
	}
	out, err := exec.Command("php", "-r", `$app_root = '`+root+`'; $site_path = 'sites/`+domain+`'; include '`+settings+`'; echo json_encode($databases['default']['default']);`).CombinedOutput()
	if err != nil {
		t.Fatalf("including settings.php: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("settings.php $databases: %v: %s", err, out)
	}
	if got["database"] != rec["db_name"] || got["username"] != rec["db_name"] || got["password"] != pw || got["driver"] != "mysql" {
		t.Fatalf("settings.php $databases = %v, record %v", got, rec)
	}
	st, err := os.Stat(settings)
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("settings.php must be read-only: %v %v", err, st.Mode())
	}
	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
	if _, err := os.Stat(filepath.Join(root, "sites", domain)); !os.IsNotExist(err) {
		t.Fatalf("site dir left after delete: %v", err)
	}
}

// siteDBPassword reads a site's database password from the state file
// (it is never printed), for tests that check where it went.
func siteDBPassword(t *testing.T, home, domain string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(home, "aegir.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pw string
	if err := db.QueryRowContext(context.Background(), `SELECT db_password FROM sites WHERE domain = ? AND status <> 'deleted'`, domain).Scan(&pw); err != nil || pw == "" {
		t.Fatalf("site db password: %v", err)
	}
	return pw
}

// platform import finds the sites a platform holds and records them as
// installed sites, with their database details, and verifies each;
// importing again changes nothing.
func TestPlatformImport(t *testing.T) {
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain := testsite.Unique("import")
	testsite.DropDBsOf(t, domain) // and those its restore makes
	must(t, h.home, "site", "install", domain, "--platform", "wp", "--alias", "www."+domain, "-q")

	// A second aegir home that knows the servers and the platform but not
	// the site, with a web server that serves its own config dir (a task
	// waits until the web server serves what it wrote).
	home2 := newHome(t)
	w := testenv.StartNginx(t, filepath.Join(home2, "config", "web1"))
	h2 := &hostEnv{home: home2, web: w}
	must(t, home2, "server", "add", "web1", "--host", "localhost", "-q", "--http", "nginx", "--http-port", itoa(w.Port),
		"--http-listen-ip", "127.0.0.1", "--http-test-cmd", w.TestCmd, "--http-restart-cmd", w.ReloadCmd, "--db", "mariadb", "--db-host", "127.0.0.1", "--queue")
	must(t, home2, "platform", "add", "wp", "--server", "web1", "--root", root, "--queue")
	must(t, home2, "hosting", "dispatch")
	_, errs, code := aegir(t, home2, "platform", "import", "wp")
	if code != 0 || !strings.Contains(errs, "imported site "+domain) {
		t.Fatalf("import: exit %d\n%s", code, errs)
	}
	rec := siteRecord(t, home2, domain)
	if rec["status"] != "installed" || rec["db_name"] != db.NameFor(domain, nil) || rec["db_server"] != "web1" {
		t.Fatalf("imported site: %v", rec)
	}
	if al, _ := rec["aliases"].([]any); len(al) != 1 || al[0] != "www."+domain {
		t.Fatalf("imported aliases: %v", rec["aliases"])
	}
	if pw := siteDBPassword(t, home2, domain); pw != siteDBPassword(t, h.home, domain) {
		t.Fatal("the imported database password differs from the one the site uses")
	}
	// The verify it queued runs and keeps the site working.
	must(t, home2, "hosting", "dispatch")
	var tasks []struct{ Type, Status string }
	_ = json.Unmarshal([]byte(must(t, home2, "task", "list", "--site", domain, "--format", "json")), &tasks)
	if len(tasks) != 1 || tasks[0].Type != "site.verify" || tasks[0].Status != "success" {
		t.Fatalf("verify after import: %+v", tasks)
	}
	title := "<title>" + domain + "</title>"
	ok := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }
	if code, body, _ := h2.get(t, domain, "/", ok); !ok(code, body, nil) {
		t.Fatalf("imported site after verify: %d %.200s", code, body)
	}
	// Twice: nothing new.
	_, errs, _ = aegir(t, home2, "platform", "import", "wp")
	if !strings.Contains(errs, "already recorded") || strings.Contains(errs, "imported site") {
		t.Fatalf("second import:\n%s", errs)
	}
	if out := must(t, home2, "task", "list", "--status", "queued", "--format", "csv", "--fields", "id"); strings.TrimSpace(out) != "id" {
		t.Fatalf("second import queued tasks:\n%s", out)
	}
	// Recorded without a database password (an imported site whose
	// settings had none): a restore gives it a database user with one.
	stateExec(t, home2, `UPDATE sites SET db_password = '' WHERE domain = '`+domain+`'`)
	must(t, home2, "site", "backup", domain, "-q")
	if _, errs, code := aegir(t, home2, "-y", "site", "restore", domain); code != 0 {
		t.Fatalf("restore of a site recorded without a password: exit %d\n%s", code, errs)
	}
	if pw := siteDBPassword(t, home2, domain); len(pw) < 20 {
		t.Fatalf("password after the restore: %d characters", len(pw))
	}
	if code, body, _ := h2.get(t, domain, "/", ok); !ok(code, body, nil) {
		t.Fatalf("the restored site: %d %.200s", code, body)
	}

	// A site whose settings (its own code) name another site's database
	// is not imported: deleting it would drop that database.
	conf, err := os.ReadFile(filepath.Join(root, "wp-content", "aegir-sites", domain+".php"))
	if err != nil {
		t.Fatal(err)
	}
	thief := filepath.Join(root, "wp-content", "aegir-sites", "thief.test.php")
	if err := os.WriteFile(thief, []byte(strings.ReplaceAll(string(conf), domain, "thief.test")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, _ = aegir(t, home2, "platform", "import", "wp")
	os.Remove(thief)
	if !strings.Contains(errs, "site thief.test not imported") || !strings.Contains(errs, siteRecord(t, home2, domain)["db_name"].(string)) {
		t.Fatalf("import of a site naming another site's database:\n%s", errs)
	}
	if _, _, code := aegir(t, home2, "site", "show", "thief.test"); code != cli.ExitNotFound {
		t.Fatalf("thief.test was recorded (site show exit %d)", code)
	}
	// Nor one whose settings name the server's own database.
	sys := filepath.Join(root, "wp-content", "aegir-sites", "sys.test.php")
	cur := siteRecord(t, home2, domain)["db_name"].(string)
	if err := os.WriteFile(sys, []byte(strings.ReplaceAll(strings.ReplaceAll(string(conf), domain, "sys.test"), cur, "mysql")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, _ = aegir(t, home2, "platform", "import", "wp")
	os.Remove(sys)
	if !strings.Contains(errs, "site sys.test not imported") || !strings.Contains(errs, "mysql") {
		t.Fatalf("import of a site naming the server's own database:\n%s", errs)
	}
	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
}

// dbTables is how many tables database name has on the shared MariaDB.
func dbTables(t *testing.T, name string) int64 {
	t.Helper()
	m, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var n int64
	if err := m.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
