package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// getOnce asks the web server for host's path once, with no retry.
func (h *hostEnv) getOnce(t *testing.T, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.web.URL()+path, nil)
	req.Host = host
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wordPressOnNginx is a WordPress site on a private nginx, with an
// uploaded file: the site's domain, and the file's path and content.
func wordPressOnNginx(t *testing.T, prefix string) (h *hostEnv, domain, path, content string) {
	t.Helper()
	h = newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain, _ = wordPressSite(t, h, "wp", root, prefix, false, "A post", prefix+".txt")
	return h, domain, "/wp-content/uploads/" + domain + "/2026/01/" + prefix + ".txt", prefix + ".txt content"
}

// reloadPending is the reload_pending flag of server web1's web service.
func reloadPending(t *testing.T, home string) bool {
	t.Helper()
	var s struct {
		Services []struct {
			Kind          string
			ReloadPending bool `json:"reload_pending"`
		}
	}
	if err := json.Unmarshal([]byte(must(t, home, "server", "show", "web1", "--format", "json")), &s); err != nil {
		t.Fatal(err)
	}
	for _, sv := range s.Services {
		if sv.Kind == "http" {
			return sv.ReloadPending
		}
	}
	t.Fatal("web1 has no http service")
	return false
}

// `site disable` then one GET at once, and `site enable` the same, 20
// times: every first request sees the change (issue 15: 6 of 20 did).
func TestSiteCommandThenFirstRequest(t *testing.T) {
	t.Parallel()
	h, domain, path, content := wordPressOnNginx(t, "fr")
	seen := 0
	for i := 0; i < 20; i++ {
		verb, code, body := "disable", 503, "disabled"
		if i%2 == 1 {
			verb, code, body = "enable", 200, content
		}
		must(t, h.home, "site", verb, domain, "-q")
		if c, b := h.getOnce(t, domain, path); c == code && strings.Contains(b, body) {
			seen++
		} else {
			t.Logf("after site %s: the first request got %d %.80q", verb, c, b)
		}
	}
	t.Logf("%d of 20 first requests saw the change", seen)
	if seen != 20 {
		t.Errorf("%d of 20 first requests saw the change, want 20", seen)
	}
}

// A reload that fails is remembered and done by the next task on the
// server: with a restart command that fails, `site edit --add-alias`
// fails at its reload; once the command is fixed, `site verify` finds
// the virtual host up to date, reloads anyway, and the alias answers.
func TestFailedReloadIsRedone(t *testing.T) {
	t.Parallel()
	h, domain, path, content := wordPressOnNginx(t, "pr")
	alias := "alias." + domain

	must(t, h.home, "server", "edit", "web1", "--http-restart-cmd", "echo cannot reload >&2; false", "-q")
	if _, errs, code := aegir(t, h.home, "site", "edit", domain, "--add-alias", alias); code == 0 || !strings.Contains(errs, "reloading nginx") {
		t.Fatalf("site edit with a failing restart command: exit %d\n%s", code, errs)
	}
	if c, b := h.getOnce(t, alias, path); c != 404 {
		t.Fatalf("the alias answers %d %.80q before any reload", c, b)
	}
	if !reloadPending(t, h.home) {
		t.Error("the failed reload is not recorded as pending")
	}

	must(t, h.home, "server", "edit", "web1", "--http-restart-cmd", h.web.ReloadCmd, "--queue", "-q")
	_, errs, code := aegir(t, h.home, "site", "verify", domain)
	if code != 0 || !strings.Contains(errs, "already up to date") || !strings.Contains(errs, "reloading now") {
		t.Fatalf("site verify after the fix: exit %d\n%s", code, errs)
	}
	if c, b := h.getOnce(t, alias, path); c != 200 || b != content {
		t.Fatalf("the alias right after site verify: %d %.80q", c, b)
	}
	if reloadPending(t, h.home) {
		t.Error("the reload is still pending after site verify reloaded")
	}
}
