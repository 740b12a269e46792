package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
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
