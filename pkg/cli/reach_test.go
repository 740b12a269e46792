package cli_test

import (
	"net/http"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// A database server whose --db-host is its own loopback address cannot
// serve a site on another machine: install and migrate refuse it with the
// address and the fix, exit 2, nothing recorded; an address the web
// server reaches is taken.
func TestLoopbackDBServerRefusedForAnotherWebServer(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	must(t, h.home, "platform", "add", "wp", "--server", "web1", "--root", testenv.WordPressPlatform(t), "-q")
	// Remote database servers, only recorded (their verify is queued).
	must(t, h.home, "server", "add", "db3", "--host", "db3.example.org", "--ssh-user", "aegir", "--db", "mariadb", "--db-host", "127.0.0.1", "--queue")
	must(t, h.home, "server", "add", "db4", "--host", "db4.example.org", "--ssh-user", "aegir", "--db", "mariadb", "--db-host", "192.0.2.4", "--queue")

	refused := func(what string, args ...string) {
		t.Helper()
		_, errs, code := aegir(t, h.home, args...)
		if code != cli.ExitUsage {
			t.Fatalf("%s: exit %d, want %d\n%s", what, code, cli.ExitUsage, errs)
		}
		for _, want := range []string{"--db-server", "db3", "127.0.0.1", "web1", "aegir server edit db3 --db-host ADDRESS"} {
			if !strings.Contains(errs, want) {
				t.Errorf("%s: the refusal does not say %q:\n%s", what, want, errs)
			}
		}
	}
	refused("install", "site", "install", "far.test", "--platform", "wp", "--db-server", "db3")
	if _, _, code := aegir(t, h.home, "site", "show", "far.test"); code == 0 {
		t.Error("the refused install recorded the site")
	}
	// db4's address is the web server's to reach: recorded and queued.
	must(t, h.home, "site", "install", "near.test", "--platform", "wp", "--db-server", "db4", "--queue")

	domain := testsite.Domain(t, "reach")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "-q")
	refused("migrate", "site", "migrate", domain, "--platform", "wp", "--db-server", "db3")
	refused("clone", "site", "clone", domain, "other-"+domain, "--db-server", "db3")
	if rec := siteRecord(t, h.home, domain); rec["db_server"] != "web1" {
		t.Errorf("the refused migrate changed the site: %v", rec)
	}
}

// A server whose host key is not known is refused with a hint that names
// the command that records it; that command logs the fingerprint it
// recorded.
func TestAcceptHostKeyHintAndLog(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	a := testenv.StartSSHD(t)
	_, errs, code := aegir(t, home, "server", "add", "db8", "--host", a.Host, "--ssh-user", a.User, "--ssh-port", itoa(a.Port), "--ssh-key", a.KeyFile,
		"--db", "mariadb", "--db-host", "127.0.0.1")
	if code != cli.ExitFailed {
		t.Fatalf("unknown host key: exit %d, want 1\n%s", code, errs)
	}
	if !strings.Contains(errs, "hint: ") || !strings.Contains(errs, "record it: aegir server edit db8 --accept-host-key") {
		t.Errorf("the refusal's hint does not name the command:\n%s", errs)
	}
	fp := ssh.FingerprintSHA256(a.HostKey)
	_, errs, code = aegir(t, home, "server", "edit", "db8", "--accept-host-key")
	if code != 0 {
		t.Fatalf("server edit --accept-host-key: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "recorded the SSH host key of [127.0.0.1]:"+itoa(a.Port)) || !strings.Contains(errs, fp) {
		t.Errorf("the fingerprint recorded (%s) is not in the log:\n%s", fp, errs)
	}
	// Known now: nothing recorded again.
	if _, errs = must2(t, home, "server", "verify", "db8"); strings.Contains(errs, "recorded the SSH host key") {
		t.Errorf("a known key was recorded again:\n%s", errs)
	}
}

// must2 is must returning standard error too.
func must2(t *testing.T, home string, args ...string) (string, string) {
	t.Helper()
	out, errs, code := aegir(t, home, args...)
	if code != 0 {
		t.Fatalf("aegir %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out, errs
}

// A database port that accepts and never answers: server verify ends
// within the connect timeout with an error that names the server, for
// each database type, and the dispatcher's worker is free again.
func TestServerVerifySilentDatabase(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"mariadb", "postgresql"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			home := newHome(t)
			addr := testenv.Silent(t)
			name := "mute-" + typ[:2]
			start := time.Now()
			_, errs, code := aegir(t, home, "server", "add", name, "--host", "localhost", "--db", typ, "--db-host", "127.0.0.1", "--db-port", itoa(addr.Port))
			took := time.Since(start)
			if code != cli.ExitFailed {
				t.Fatalf("verify of a silent database: exit %d, want 1\n%s", code, errs)
			}
			if took > 25*time.Second {
				t.Errorf("verify of a silent database took %s, want the connect timeout (10s)", took)
			}
			for _, want := range []string{name, "127.0.0.1:" + itoa(addr.Port), "did not answer within 10s"} {
				if !strings.Contains(errs, want) {
					t.Errorf("the error does not say %q:\n%s", want, errs)
				}
			}
			if sv := serverServices(t, home, name); sv["db"].Status != "error" {
				t.Errorf("db service status %q, want error", sv["db"].Status)
			}
		})
	}
}

// A site whose database server cannot be reached: delete stops before it
// removes anything and says to use --force; --force removes the virtual
// host and the files, records the site deleted and lists the SQL that
// finishes the work by hand; then the database server can be deleted.
func TestSiteDeleteForceWithUnreachableDatabase(t *testing.T) {
	t.Parallel()
	h, root, domain := siteOnOwnDBServer(t, "gone")
	rec := siteRecord(t, h.home, domain)
	dbName, dbUser := rec["db_name"].(string), rec["db_user"].(string)
	vhost := filepath.Join(h.home, "config", "web1", "vhost.d", domain+".conf")
	uploads := filepath.Join(root, "wp-content", "uploads", domain)
	for _, p := range []string{vhost, uploads} {
		if !exists(p) {
			t.Fatalf("%s missing after the install", p)
		}
	}
	// The database server goes away.
	aegir(t, h.home, "server", "edit", "db5", "--db-port", itoa(testenv.FreePort(t)), "-q")

	_, errs, code := aegir(t, h.home, "site", "delete", domain, "--no-backup")
	if code != cli.ExitFailed || !strings.Contains(errs, "nothing was removed") || !strings.Contains(errs, "aegir site delete "+domain+" --force") {
		t.Fatalf("delete with the database unreachable: exit %d, want 1 and a hint to --force\n%s", code, errs)
	}
	if !exists(vhost) || siteRecord(t, h.home, domain)["status"] != "installed" {
		t.Fatalf("the refused delete removed something: vhost %v, site %v", exists(vhost), siteRecord(t, h.home, domain)["status"])
	}

	_, errs, code = aegir(t, h.home, "site", "delete", domain, "--no-backup", "--force")
	if code != 0 {
		t.Fatalf("delete --force: exit %d\n%s", code, errs)
	}
	for _, p := range []string{vhost, uploads} {
		if exists(p) {
			t.Errorf("%s is still there after delete --force", p)
		}
	}
	if _, _, code := aegir(t, h.home, "site", "show", domain); code == 0 {
		if st := siteRecord(t, h.home, domain)["status"]; st != "deleted" {
			t.Errorf("site status after delete --force: %v, want deleted", st)
		}
	}
	// The task log lists the commands that finish the work.
	out := must(t, h.home, "task", "list", "--site", domain, "--format", "csv", "--fields", "id,type,status")
	lines := strings.Split(strings.TrimSpace(out), "\n") // newest first, after the header
	last := strings.Split(lines[1], ",")[0]
	log := must(t, h.home, "task", "log", last)
	for _, want := range []string{"DROP DATABASE IF EXISTS `" + dbName + "`;", "DROP USER IF EXISTS `" + dbUser + "`@`127.0.0.1`;", "db5", "to finish by hand"} {
		if !strings.Contains(log, want) {
			t.Errorf("the task log (%s) does not say %q:\n%s\n%s", last, want, out, log)
		}
	}
	// The database is still there (it was not reached), and the server
	// that holds it can be deleted now.
	if n, _ := strings1(mariadb(t), "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", dbName); len(n) != 1 {
		t.Errorf("database %s: %v, want it left as it was", dbName, n)
	}
	must(t, h.home, "server", "delete", "db5", "-q")
}

// HTTPS on, on ports that are not 80 and 443: WordPress's address follows
// the request's scheme, each with its own port, in its pages and in its
// redirects.
func TestWordPressHTTPSOnOwnPorts(t *testing.T) {
	t.Parallel()
	h := newHTTPSEnv(t, "nginx")
	must(t, h.home, "platform", "add", "wp", "--server", "web1", "--root", testenv.WordPressPlatform(t), "-q")
	domain := testsite.Domain(t, "ports")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "--https", "on", "-q")
	httpURL := "http://" + domain + ":" + itoa(h.web.Port)
	httpsURL := "https://" + domain + ":" + itoa(h.web.HTTPSPort)
	title := "<title>" + domain + "</title>"

	body, errs := h.curl(t, domain, "/", title)
	if !strings.Contains(body, title) {
		t.Fatalf("GET %s/: %.300s %s", httpsURL, body, errs)
	}
	if !strings.Contains(body, httpsURL+"/") || strings.Contains(body, domain+":"+itoa(h.web.Port)) {
		t.Errorf("the page over HTTPS does not link to %s/ only:\n%.2000s", httpsURL, body)
	}
	_, body, _ = h.get(t, domain, "/", func(code int, body string, _ http.Header) bool { return code == 200 })
	if !strings.Contains(body, httpURL+"/") || strings.Contains(body, "https://"+domain) {
		t.Errorf("the page over HTTP does not link to %s/ only:\n%.2000s", httpURL, body)
	}
	// A redirect WordPress makes (to its login page) keeps the scheme's port.
	out, err := osexec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--max-time", "10", "--noproxy", "*",
		"--cacert", h.ca.RootFile, "--resolve", domain+":"+itoa(h.web.HTTPSPort)+":127.0.0.1", httpsURL+"/wp-admin/").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "302 "+httpsURL+"/wp-login.php") {
		t.Errorf("GET %s/wp-admin/: %q, %v; want a redirect to %s/wp-login.php", httpsURL, out, err, httpsURL)
	}
	code, _, hdr := h.get(t, domain, "/wp-admin/", func(code int, _ string, _ http.Header) bool { return code == 302 })
	if loc := hdr.Get("Location"); code != 302 || !strings.HasPrefix(loc, httpURL+"/wp-login.php") {
		t.Errorf("GET %s/wp-admin/: %d %q; want a redirect to %s/wp-login.php", httpURL, code, loc, httpURL)
	}
}

// A remote server added with no service yet is still reached: an unknown
// host key is refused, --accept-host-key records it (in the state, shown
// by the log), and a server that cannot be reached does not verify.
func TestServerWithoutServicesIsReached(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	a := testenv.StartSSHD(t)
	ssh0 := []string{"--host", a.Host, "--ssh-user", a.User, "--ssh-port", itoa(a.Port), "--ssh-key", a.KeyFile}
	_, errs, code := aegir(t, home, append([]string{"server", "add", "bare1"}, ssh0...)...)
	if code != cli.ExitFailed || !strings.Contains(errs, "host key") {
		t.Fatalf("a server with no service and an unknown host key: exit %d, want 1 and the host key named\n%s", code, errs)
	}
	_, errs = must2(t, home, "server", "edit", "bare1", "--accept-host-key")
	if !strings.Contains(errs, "recorded the SSH host key of [127.0.0.1]:"+itoa(a.Port)) || !strings.Contains(errs, "has no services") {
		t.Fatalf("--accept-host-key on a server with no service: the key is not recorded, or the warning is gone:\n%s", errs)
	}
	if _, errs = must2(t, home, "server", "verify", "bare1"); !strings.Contains(errs, "reached ") {
		t.Errorf("a verify of the server does not say it reached it:\n%s", errs)
	}
	_, errs, code = aegir(t, home, "server", "add", "bare2", "--host", "127.0.0.1", "--ssh-user", a.User, "--ssh-port", itoa(testenv.FreePort(t)), "--ssh-key", a.KeyFile, "--accept-host-key")
	if code != cli.ExitFailed {
		t.Fatalf("a server with no service that cannot be reached: exit %d, want 1\n%s", code, errs)
	}
}
