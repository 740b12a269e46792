package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

type healthRec struct {
	Status   string
	HTTPCode int `json:"http_code"`
	TimeMS   int64
	Checked  string
	Error    string
}

func siteHealth(t *testing.T, home, domain string) healthRec {
	t.Helper()
	var rec struct{ Health *healthRec }
	if err := json.Unmarshal([]byte(must(t, home, "site", "show", domain, "--format", "json")), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Health == nil {
		t.Fatalf("site show %s has no health", domain)
	}
	return *rec.Health
}

// timedVerify runs site verify and reports its exit, log and time.
func timedVerify(t *testing.T, home, domain string) (string, int, time.Duration) {
	t.Helper()
	start := time.Now()
	_, errs, code := aegir(t, home, "-v", "site", "verify", domain)
	return errs, code, time.Since(start)
}

func sitePackageCount(t *testing.T, home, domain string) int {
	t.Helper()
	var pkgs []struct{ Name string }
	if err := json.Unmarshal([]byte(must(t, home, "package", "list", "--site", domain, "--format", "json")), &pkgs); err != nil {
		t.Fatal(err)
	}
	return len(pkgs)
}

// Verify is a health check: a healthy site answers 200 through its web
// server and is recorded ok; a site whose database user was dropped
// answers 500 until verify makes the user and its grants again; a wrong
// php-fpm address makes verify fail, exit 1, with the reason and the fix,
// and site list shows error 502; a disabled site answering 503 is
// healthy. The log of a PHP step that met WordPress's error page carries
// a one-line summary of it, not its HTML.
func TestSiteVerifyHealth(t *testing.T) {
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "hv")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "-q")
	dbUser := siteRecord(t, h.home, domain)["db_name"].(string)
	title := "<title>" + domain + "</title>"
	serves := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }

	// Healthy: fast, ok 200.
	var times []time.Duration
	for i := 0; i < 3; i++ {
		errs, code, took := timedVerify(t, h.home, domain)
		if code != 0 {
			t.Fatalf("verify of a healthy site: exit %d\n%s", code, errs)
		}
		times = append(times, took)
		if i == 0 && (!strings.Contains(errs, "logs in to "+dbUser) || !strings.Contains(errs, "php-fpm answers at") || !strings.Contains(errs, "answers HTTP 200")) {
			t.Errorf("verify log lacks its checks:\n%s", errs)
		}
	}
	t.Logf("site verify of a healthy site, with its health check: %v", times)
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 200 || hl.Checked == "" || hl.Error != "" {
		t.Fatalf("health of a healthy site: %+v", hl)
	}
	if out := must(t, h.home, "site", "list", "--no-color"); !strings.Contains(out, "ok 200") {
		t.Fatalf("site list lacks the health ok 200:\n%s", out)
	}

	// The database user dropped: the site answers 500 and a PHP step meets
	// WordPress's error page.
	if _, err := mariadb(t).Exec("DROP USER `" + dbUser + "`@`127.0.0.1`"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := h.get(t, domain, "/", func(code int, _ string, _ http.Header) bool { return code == 500 }); code != 500 {
		t.Fatalf("site without its database user: %d, want 500", code)
	}
	_, errs, code := aegir(t, h.home, "site", "login-reset", domain)
	if code != cli.ExitFailed {
		t.Fatalf("login-reset without the database user: exit %d\n%s", code, errs)
	}
	var tasks []struct{ ID int }
	_ = json.Unmarshal([]byte(must(t, h.home, "task", "list", "--site", domain, "--type", "site.login-reset", "--format", "json")), &tasks)
	if len(tasks) == 0 {
		t.Fatal("no login-reset task")
	}
	log := must(t, h.home, "task", "log", fmt.Sprint(tasks[0].ID))
	if strings.Contains(strings.ToLower(log), "<html") || strings.Contains(strings.ToLower(log), "<!doctype") || strings.Contains(log, "</") {
		t.Errorf("the task log holds HTML:\n%s", log)
	}
	if !strings.Contains(log, "HTML page: ") || !strings.Contains(log, "Error establishing a database connection") {
		t.Errorf("the task log lacks the page's one-line summary:\n%s", log)
	}
	errs, code, took := timedVerify(t, h.home, domain)
	if code != 0 || !strings.Contains(errs, "again from the site's record") {
		t.Fatalf("verify of a site without its database user: exit %d\n%s", code, errs)
	}
	t.Logf("site verify that made the database user again: %s", took)
	if !dbUserExists(t, dbUser) {
		t.Fatal("verify did not make the database user again")
	}
	if code, body, _ := h.get(t, domain, "/", serves); !serves(code, body, nil) {
		t.Fatalf("the site after verify: %d %.200s", code, body)
	}
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 200 {
		t.Fatalf("health after the user was made again: %+v", hl)
	}

	// php-fpm's address wrong: 502, verify fails with the reason and the fix.
	_, _, _ = aegir(t, h.home, "server", "edit", "web1", "--php-fpm", "/run/aegir-test-none/php-fpm.sock", "-q")
	errs, code, took = timedVerify(t, h.home, domain)
	if code != cli.ExitFailed {
		t.Fatalf("verify with a wrong php-fpm address: exit %d, want 1\n%s", code, errs)
	}
	t.Logf("site verify of a site answering 502: %s", took)
	for _, want := range []string{"php-fpm does not answer at /run/aegir-test-none/php-fpm.sock", "502", "--php-fpm"} {
		if !strings.Contains(errs, want) {
			t.Errorf("verify with a wrong php-fpm address: the log lacks %q:\n%s", want, errs)
		}
	}
	if hl := siteHealth(t, h.home, domain); hl.Status != "error" || hl.HTTPCode != 502 || !strings.Contains(hl.Error, "php-fpm") {
		t.Fatalf("health with a wrong php-fpm address: %+v", hl)
	}
	if out := must(t, h.home, "site", "list", "--no-color"); !strings.Contains(out, "error 502") {
		t.Fatalf("site list lacks the health error 502:\n%s", out)
	}
	must(t, h.home, "server", "edit", "web1", "--php-fpm", h.fpm, "-q")
	if errs, code, _ := timedVerify(t, h.home, domain); code != 0 {
		t.Fatalf("verify with php-fpm's address put right: exit %d\n%s", code, errs)
	}

	// Disabled: 503 is what it should answer, as disable itself records.
	must(t, h.home, "site", "disable", domain, "-q")
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 503 {
		t.Fatalf("health after disable: %+v", hl)
	}
	errs, code, _ = timedVerify(t, h.home, domain)
	if code != 0 || !strings.Contains(errs, "answers HTTP 503") {
		t.Fatalf("verify of a disabled site: exit %d\n%s", code, errs)
	}
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 503 {
		t.Fatalf("health of a disabled site: %+v", hl)
	}
	must(t, h.home, "site", "enable", domain, "-q")
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 200 {
		t.Fatalf("health after enable: %+v", hl)
	}
	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
}

// The package inventory is current: right after install, restore, clone
// and migrate the site's packages are listed, without a verify.
func TestSitePackagesAfterChanges(t *testing.T) {
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	root2 := testenv.WordPressPlatform(t)
	must(t, h.home, "platform", "add", "wp2", "--server", "web1", "--root", root2, "-q")
	domain, clone := testsite.Unique("pk"), testsite.Unique("pc")
	testsite.DropDBsOf(t, domain)
	testsite.DropDBsOf(t, clone)
	forget := func(d string) {
		stateExec(t, h.home, `DELETE FROM package_instances WHERE site_id = (SELECT id FROM sites WHERE domain = ? AND status <> 'deleted')`, d)
	}

	must(t, h.home, "site", "install", domain, "--platform", "wp", "-q")
	if n := sitePackageCount(t, h.home, domain); n < 3 {
		t.Fatalf("packages of %s after install: %d", domain, n)
	}
	must(t, h.home, "site", "backup", domain, "-q")
	forget(domain)
	must(t, h.home, "-y", "site", "restore", domain, "-q")
	if n := sitePackageCount(t, h.home, domain); n < 3 {
		t.Fatalf("packages after restore: %d", n)
	}
	must(t, h.home, "site", "clone", domain, clone, "-q")
	if n := sitePackageCount(t, h.home, clone); n < 3 {
		t.Fatalf("packages of the clone: %d", n)
	}
	forget(domain)
	must(t, h.home, "site", "migrate", domain, "--platform", "wp2", "-q")
	if n := sitePackageCount(t, h.home, domain); n < 3 {
		t.Fatalf("packages after migrate: %d", n)
	}
	var pkgs []struct{ Name, Type, Site string }
	_ = json.Unmarshal([]byte(must(t, h.home, "package", "list", "--site", domain, "--format", "json")), &pkgs)
	for _, p := range pkgs {
		if p.Site != domain {
			t.Errorf("package %+v listed for %s", p, domain)
		}
	}
	for _, d := range []string{domain, clone} {
		must(t, h.home, "site", "delete", d, "--no-backup", "-q")
	}
}

// Server verify checks each service the way sites use it: the web
// server answers a request on its port, php-fpm answers at its address,
// the database admin logs in (and its version is recorded).
func TestServerVerifyServices(t *testing.T) {
	home := newHome(t)
	ng := testenv.StartNginx(t, filepath.Join(home, "config", "web1"))
	fpm := testenv.StartPHPFPM(t)
	_, errs, code := aegir(t, home, "server", "add", "web1", "--host", "localhost", "--http", "nginx", "--http-port", itoa(ng.Port), "--http-listen-ip", "127.0.0.1",
		"--http-test-cmd", ng.TestCmd, "--http-restart-cmd", ng.ReloadCmd, "--php-fpm", fpm.Socket, "--db", "mariadb", "--db-host", "127.0.0.1", "-v")
	if code != 0 {
		t.Fatalf("server add: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"nginx answers on 127.0.0.1:" + itoa(ng.Port), "php-fpm answers at " + fpm.Socket, "admin root can create databases"} {
		if !strings.Contains(errs, want) {
			t.Errorf("server verify log lacks %q:\n%s", want, errs)
		}
	}
	if sv := serverServices(t, home, "web1"); sv["http"].Status != "enabled" || sv["db"].Status != "enabled" || !strings.Contains(sv["db"].Version, "MariaDB") {
		t.Fatalf("services: %+v", sv)
	}

	// php-fpm not where the server says.
	_, errs, code = aegir(t, home, "server", "edit", "web1", "--php-fpm", "/run/aegir-test-none/php-fpm.sock")
	if code != cli.ExitFailed || !strings.Contains(errs, "php-fpm does not answer at /run/aegir-test-none/php-fpm.sock") || !strings.Contains(errs, "--php-fpm") {
		t.Fatalf("server verify with php-fpm's address wrong: exit %d\n%s", code, errs)
	}
	if sv := serverServices(t, home, "web1"); sv["http"].Status != "error" || !strings.Contains(sv["http"].Message, "php-fpm") {
		t.Fatalf("http service with php-fpm's address wrong: %+v", sv["http"])
	}
	must(t, home, "server", "edit", "web1", "--php-fpm", fpm.Socket, "-q")

	// A web server whose configuration tests fine but that does not run.
	if out, err := exec.Command("sh", "-c", strings.Replace(ng.ReloadCmd, "-s reload", "-s stop", 1)).CombinedOutput(); err != nil {
		t.Fatalf("stopping nginx: %v\n%s", err, out)
	}
	_, errs, code = aegir(t, home, "server", "verify", "web1")
	if code != cli.ExitFailed || !strings.Contains(errs, "does not answer on 127.0.0.1:"+itoa(ng.Port)) || !strings.Contains(errs, "hint: start nginx") {
		t.Fatalf("server verify of a web server not running: exit %d\n%s", code, errs)
	}
	if sv := serverServices(t, home, "web1"); sv["http"].Status != "error" {
		t.Fatalf("http service not running: %+v", sv["http"])
	}
}
