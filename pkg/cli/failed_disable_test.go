package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// A site disable (or enable) whose reload fails leaves the site as its
// record says: once any task on the server reloads it (here the
// server verify of the edit that fixes the restart command), the site
// still answers as installed, not with the "site disabled" page that
// the failed task had written; site disable again then disables it.
func TestFailedDisableKeepsTheServedState(t *testing.T) {
	t.Parallel()
	h, domain, path, content := wordPressOnNginx(t, "fd")

	must(t, h.home, "server", "edit", "web1", "--http-restart-cmd", "echo cannot reload >&2; false", "-q")
	if _, errs, code := aegir(t, h.home, "site", "disable", domain); code == 0 || !strings.Contains(errs, "reloading nginx") {
		t.Fatalf("site disable with a failing restart command: exit %d\n%s", code, errs)
	}
	must(t, h.home, "server", "edit", "web1", "--http-restart-cmd", h.web.ReloadCmd, "-q")
	if reloadPending(t, h.home) {
		t.Fatal("server verify did not do the pending reload")
	}
	var s struct{ Status string }
	if err := json.Unmarshal([]byte(must(t, h.home, "site", "show", domain, "--format", "json")), &s); err != nil {
		t.Fatal(err)
	}
	if c, b := h.getOnce(t, domain, path); s.Status != "installed" || c != 200 || b != content {
		t.Fatalf("after the failed disable and a reload: aegir says %q, the site answers %d %.80q", s.Status, c, b)
	}

	must(t, h.home, "site", "disable", domain, "-q")
	if c, b := h.getOnce(t, domain, path); c != 503 || !strings.Contains(b, "disabled") {
		t.Fatalf("site disable once the restart command works: %d %.80q", c, b)
	}
}

// The hint of a php-fpm that does not answer names the server to edit.
func TestPHPFPMHintNamesTheServer(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	_, errs, code := aegir(t, h.home, "server", "edit", "web1", "--php-fpm", h.fpm+".gone")
	if code != 1 || !strings.Contains(errs, "php-fpm does not answer at "+h.fpm+".gone") || !strings.Contains(errs, "aegir server edit web1 --php-fpm") {
		t.Fatalf("server edit to a php-fpm socket that does not exist: exit %d\n%s", code, errs)
	}
}

// A delete whose backup cannot reach the site's database server (with
// --force or not) names the command that goes on, --no-backup --force:
// --no-backup alone would stop at the same server.
func TestSiteDeleteBackupUnreachableHint(t *testing.T) {
	t.Parallel()
	h, _, domain := siteOnOwnDBServer(t, "unbk")
	aegir(t, h.home, "server", "edit", "db5", "--db-port", itoa(testenv.FreePort(t)), "-q")
	want := "aegir site delete " + domain + " --no-backup --force"
	for _, args := range [][]string{{"site", "delete", domain}, {"site", "delete", domain, "--force"}} {
		_, errs, code := aegir(t, h.home, args...)
		if code != cli.ExitFailed || !strings.Contains(errs, "nothing was removed") || !strings.Contains(errs, want) {
			t.Errorf("%s with the database unreachable: exit %d, want 1 and the hint %q\n%s", strings.Join(args, " "), code, want, errs)
		}
	}
	must(t, h.home, "site", "delete", domain, "--no-backup", "--force", "-q")
	if _, _, code := aegir(t, h.home, "site", "show", domain); code != cli.ExitNotFound {
		t.Errorf("site show after the hinted command: exit %d, want the site gone (3)", code)
	}
}

// siteOnOwnDBServer is a WordPress site (its domain begins with prefix)
// on the platform wp at root, whose database is on a server of its own,
// db5, on this machine.
func siteOnOwnDBServer(t *testing.T, prefix string) (h *hostEnv, root, domain string) {
	t.Helper()
	h = newHostEnv(t, "nginx")
	root = testenv.WordPressPlatform(t)
	must(t, h.home, "platform", "add", "wp", "--server", "web1", "--root", root, "-q")
	must(t, h.home, "server", "add", "db5", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1", "-q")
	domain = testsite.Unique(prefix)
	testsite.DropDBsOf(t, domain)
	must(t, h.home, "site", "install", domain, "--platform", "wp", "--db-server", "db5", "-q")
	return h, root, domain
}

// A password file whose mode changed after server add is refused at its
// next use too, with the chmod that fixes it, and taken again once fixed.
func TestAdminPasswordFileModeAtUse(t *testing.T) {
	home := newHome(t)
	pw := filepath.Join(t.TempDir(), "db-admin.pw")
	if err := os.WriteFile(pw, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, home, "server", "add", "db1", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1", "--db-admin-password-file", pw, "-q")
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, home, "server", "verify", "db1"); code == 0 || !strings.Contains(errs, "chmod 600 "+pw) {
		t.Fatalf("server verify with the password file made 0644: exit %d, want a refusal with the chmod\n%s", code, errs)
	}
	if err := os.Chmod(pw, 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, home, "server", "verify", "db1", "-q")
}
