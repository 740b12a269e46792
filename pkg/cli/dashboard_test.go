package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/store"
)

// chromiumPath is Debian's chromium (scripts/deps.sh installs it). The
// browser tests skip without it, except in CI (CI=true), where they fail.
const chromiumPath = "/usr/bin/chromium"

// browserTab starts a headless chromium for the test and returns a tab's
// context, and shot, which saves a screenshot of the tab to a file the
// test keeps (outside its temporary directory) and returns its path.
func browserTab(t *testing.T) (context.Context, func() string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: %s is missing (scripts/deps.sh installs it): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing (scripts/deps.sh installs it)", chromiumPath)
	}
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		// Chromium's children may still write in the profile for a moment
		// after it stops; t.TempDir's RemoveAll would fail.
		for i := 0; i < 50; i++ {
			if err := os.RemoveAll(profile); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// The first action starts the browser and lives as long as it: no
	// timeout on it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	shot := func() string {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			return "(no screenshot: " + err.Error() + ")"
		}
		name := filepath.Join(os.TempDir(), fmt.Sprintf("aegir-%s-%d.png", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			return "(no screenshot: " + err.Error() + ")"
		}
		return name
	}
	return ctx, shot
}

// The dashboard in Chromium over a real WordPress site: a client's user
// signs in with its token (typed into the form, never in a URL), sees its
// client's site with its status and health and not another client's,
// starts a backup there that the dispatcher runs (the page then shows
// it), and gets a one-time login link; the session cookie is HttpOnly
// and SameSite=Strict. A failed step saves a screenshot and names it.
func TestDashboardInChromium(t *testing.T) {
	tab, shot := browserTab(t)
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	mine := testsite.Domain(t, "dash")
	theirs := testsite.Domain(t, "dashother")
	must(t, h.home, "client", "add", "acme", "-q")
	must(t, h.home, "client", "add", "other", "-q")
	must(t, h.home, "user", "add", "ann", "--client", "acme", "-q")
	must(t, h.home, "site", "install", mine, "--platform", "wp", "--client", "acme", "--title", "Dashboard site", "-q")
	// The other client's site is a record only: its install is cancelled.
	id := strings.TrimSpace(must(t, h.home, "site", "install", theirs, "--platform", "wp", "--client", "other", "--queue", "-q"))
	must(t, h.home, "task", "cancel", id, "-q")
	tok := token(t, h.home, "ann", "write")
	url := serve(t, h.home)

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v; screenshot: %s", what, err, shot())
		}
	}
	text := func(sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("the text of %s: %v; screenshot: %s", sel, err, shot())
		}
		return s
	}
	html := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatalf("the page: %v; screenshot: %s", err, shot())
		}
		return s
	}
	failf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"; screenshot: %s", append(args, shot())...)
	}
	row := fmt.Sprintf(`tr[data-domain="%s"]`, mine)

	step("sign in", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), tok), chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("sites")))
	page := html()
	if !strings.Contains(page, mine) || strings.Contains(page, theirs) || strings.Contains(page, tok) {
		failf("ann's sites page: want %s and not %s nor the token:\n%s", mine, theirs, page)
	}
	if st, health := text(row+" .status"), text(row+" .health"); st != entities.SiteInstalled || !strings.HasPrefix(health, "ok 200") {
		failf("%s: status %q health %q, want installed and ok 200", mine, st, health)
	}
	if b := text(row + " .backup"); b != "none" {
		failf("last backup before any: %q", b)
	}
	loc, err := chromedp.Run(tab, chromedp.Location())
	if err != nil || loc != url+"/" {
		failf("the location after sign-in: %q %v", loc, err)
	}
	cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{url + "/"}})
	if err != nil {
		failf("cookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "aegir_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || strings.Contains(session.Value, tok) {
		failf("the session cookie: %+v", session)
	}
	// document.cookie does not show it (HttpOnly).
	if jc, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(jc, "aegir_session") {
		failf("document.cookie: %q %v", jc, err)
	}

	// A backup: queued from the page, run by the dispatcher, shown.
	step("back up", chromedp.Click(chromedp.CSS(row+" button.do-backup")), chromedp.WaitVisible(chromedp.ID("flash")))
	m := regexp.MustCompile(`queued as task (\d+)`).FindStringSubmatch(text("#flash"))
	if m == nil {
		failf("the backup's message: %q", text("#flash"))
	}
	must(t, h.home, "hosting", "dispatch", "-q")
	var task entities.Task
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "show", m[1], "--format", "json")), &task); err != nil || task.Type != entities.TaskSiteBackup || task.Status != entities.TaskSuccess {
		failf("task %s: %+v %v", m[1], task, err)
	}
	var backups []entities.Backup
	if err := json.Unmarshal([]byte(must(t, h.home, "backup", "list", "--site", mine, "--format", "json")), &backups); err != nil || len(backups) != 1 || backups[0].Size == 0 {
		failf("backups of %s: %+v %v", mine, backups, err)
	}
	step("reload", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("sites")))
	if b := text(row + " .backup"); !strings.Contains(b, backups[0].Created.UTC().Format("2006-01-02 15:04")) {
		failf("last backup on the page: %q, want %s", b, backups[0].Created.UTC())
	}
	// (The dispatch ran the statistics queue after the backup: the last
	// task may be either.)
	if tk := text(row + " .task"); !strings.HasSuffix(tk, " success") {
		failf("last task on the page: %q", tk)
	}

	// A one-time login link, on the page that answers.
	step("login link", chromedp.Click(chromedp.CSS(row+" button.do-login-link")), chromedp.WaitVisible(chromedp.ID("login-link")))
	href, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS("#login-link a"), "href"))
	if err != nil || !strings.HasPrefix(href.Value, "http://"+mine) {
		failf("the login link: %+v %v", href, err)
	}
	secret := href.Value[strings.LastIndexAny(href.Value, "#=/")+1:]

	// Nothing kept the token or the link's secret: not the audit log's
	// paths, not the state.
	st, err := store.Open(context.Background(), filepath.Join(h.home, "aegir.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var signIn, backedUp bool
	for _, e := range log {
		if strings.Contains(e.Path, "aegir_") || strings.Contains(e.Path, secret) {
			t.Fatalf("the audit log has a secret: %+v", e)
		}
		signIn = signIn || e.Method == "POST" && e.Path == "/login" && e.User == "ann" && e.Status == 303
		backedUp = backedUp || e.Path == "/sites/"+mine+"/backup" && strconv.FormatInt(e.TaskID, 10) == m[1]
	}
	if !signIn || !backedUp {
		t.Fatalf("the audit log lacks the sign-in or the backup: %+v", log)
	}
	if state, err := os.ReadFile(filepath.Join(h.home, "aegir.db")); err != nil || strings.Contains(string(state), secret) || strings.Contains(string(state), tok) {
		t.Fatalf("the state holds the token or the link's secret (%v)", err)
	}

	// Signing out: the page asks for a token again.
	step("sign out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")))
	step("signed out", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("token")))
}
