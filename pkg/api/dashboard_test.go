package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: base}
}

func (b *browser) do(t *testing.T, method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return m[1]
}

// login signs in with token on the dashboard and returns the sites page.
func (b *browser) login(t *testing.T, token string) string {
	t.Helper()
	_, page := b.do(t, "GET", "/", nil, nil)
	resp, body := b.do(t, "POST", "/login", url.Values{"token": {token}, "csrf": {csrfOf(t, page)}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	resp, page = b.do(t, "GET", "/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="sites"`) {
		t.Fatalf("the sites page: %d %s", resp.StatusCode, page)
	}
	return page
}

// The dashboard's sign-in: the session cookie is HttpOnly and
// SameSite=Strict and names no token; a client's user sees its client's
// sites only, and another client's site is 404 to its buttons; a backup
// from the page queues a task; a form without the session's CSRF token,
// or from another origin, is refused and changes nothing; a revoked token
// ends the session; signing out ends it.
func TestDashboardSession(t *testing.T) {
	e := newAPIEnv(t, 100)
	ctx := context.Background()
	b := newBrowser(t, e.url)

	resp, page := b.do(t, "GET", "/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="login"`) || strings.Contains(page, "a.acme.test") {
		t.Fatalf("GET / signed out: %d %s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", resp.Header)
	}
	// A wrong token: the form again, 401.
	resp, body := b.do(t, "POST", "/login", url.Values{"token": {"aegir_nope"}, "csrf": {csrfOf(t, page)}}, nil)
	if resp.StatusCode != 401 || !strings.Contains(body, "the token is not valid") {
		t.Fatalf("a wrong token: %d %s", resp.StatusCode, body)
	}
	// Without the sign-in form's CSRF token: refused.
	resp, body = b.do(t, "POST", "/login", url.Values{"token": {e.tokens["ann"]}, "csrf": {"forged"}}, nil)
	if resp.StatusCode != 403 || len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != "aegir_login" {
		t.Fatalf("sign in with a forged CSRF token: %d %v %s", resp.StatusCode, resp.Cookies(), body)
	}

	_, page = b.do(t, "GET", "/", nil, nil)
	resp, _ = b.do(t, "POST", "/login", url.Values{"token": {e.tokens["ann"]}, "csrf": {csrfOf(t, page)}}, nil)
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "aegir_session" {
			sess = c
		}
	}
	if resp.StatusCode != 303 || sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure ||
		strings.Contains(sess.Value, e.tokens["ann"]) || strings.Contains(resp.Header.Get("Location"), "aegir_") {
		t.Fatalf("sign in: %d %+v %v", resp.StatusCode, sess, resp.Header)
	}
	resp, page = b.do(t, "GET", "/", nil, nil)
	for _, d := range []string{"a.acme.test", "a2.acme.test"} {
		if !strings.Contains(page, `data-domain="`+d+`"`) {
			t.Fatalf("ann's page lacks %s:\n%s", d, page)
		}
	}
	if resp.StatusCode != 200 || strings.Contains(page, "b.other.test") || strings.Contains(page, "c.none.test") || strings.Contains(page, e.tokens["ann"]) {
		t.Fatalf("ann's page: %d\n%s", resp.StatusCode, page)
	}
	csrf := csrfOf(t, page)

	queued := func() int {
		ts, err := e.st.ListTasks(ctx, store.TaskFilter{Status: entities.TaskQueued, TargetKind: entities.TargetSite})
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	// Another client's site, one of no client: 404, nothing queued.
	for _, d := range []string{"b.other.test", "c.none.test", "nope.test"} {
		resp, body := b.do(t, "POST", "/sites/"+d+"/backup", url.Values{"csrf": {csrf}}, nil)
		if resp.StatusCode != 404 || !strings.Contains(body, `site \"`+d+`\" not found`) && !strings.Contains(body, "site &#34;"+d+"&#34; not found") {
			t.Fatalf("ann backs up %s: %d %s", d, resp.StatusCode, body)
		}
	}
	// A forged form and one from another origin: 403, nothing queued.
	for _, c := range []struct {
		csrf string
		hdr  map[string]string
	}{{"", nil}, {"forged", nil}, {csrf, map[string]string{"Origin": "http://evil.example"}}, {csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}}} {
		if resp, body := b.do(t, "POST", "/sites/a.acme.test/backup", url.Values{"csrf": {c.csrf}}, c.hdr); resp.StatusCode != 403 {
			t.Fatalf("backup with csrf %q %v: %d %s", c.csrf, c.hdr, resp.StatusCode, body)
		}
	}
	if n := queued(); n != 0 {
		t.Fatalf("refused forms queued %d tasks", n)
	}
	resp, body = b.do(t, "POST", "/sites/a.acme.test/backup", url.Values{"csrf": {csrf}}, map[string]string{"Origin": e.url})
	if resp.StatusCode != 303 || queued() != 1 {
		t.Fatalf("backup: %d %s; %d queued", resp.StatusCode, body, queued())
	}
	_, page = b.do(t, "GET", "/", nil, nil)
	if !regexp.MustCompile(`The backup of a.acme.test is queued as task \d+`).MatchString(page) || !strings.Contains(page, "site.backup #") {
		t.Fatalf("after the backup:\n%s", page)
	}
	// Busy: the page says why, 409.
	if resp, body := b.do(t, "POST", "/sites/a.acme.test/backup", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != 409 || !strings.Contains(body, "is busy") {
		t.Fatalf("a second backup: %d %s", resp.StatusCode, body)
	}
	log, err := e.st.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var audited bool
	for _, l := range log {
		audited = audited || l.User == "ann" && l.Path == "/sites/a.acme.test/backup" && l.Status == 303 && l.TaskID != 0
	}
	if !audited {
		t.Fatalf("the backup is not in the audit log: %+v", log)
	}

	// A read token signs in, sees, and may not back up.
	rb := newBrowser(t, e.url)
	page = rb.login(t, e.tokens["annread"])
	if strings.Contains(page, `do-backup`) || !strings.Contains(page, "read only") {
		t.Fatalf("a read token's page:\n%s", page)
	}
	if resp, _ := rb.do(t, "POST", "/sites/a2.acme.test/backup", url.Values{"csrf": {csrfOf(t, page)}}, nil); resp.StatusCode != 403 || queued() != 1 {
		t.Fatalf("a read token's backup: %d", resp.StatusCode)
	}

	// Revoking the token ends its session.
	toks, _ := e.st.ListTokens(ctx, "ann")
	for _, tk := range toks {
		if tk.Scope == "read" {
			if _, err := e.st.RevokeToken(ctx, tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, page := rb.do(t, "GET", "/", nil, nil); resp.StatusCode != 401 || !strings.Contains(page, "was revoked") || !strings.Contains(page, `id="login"`) {
		t.Fatalf("a revoked token's session: %d %s", resp.StatusCode, page)
	}
	if resp, page := rb.do(t, "GET", "/", nil, nil); resp.StatusCode != 200 || !strings.Contains(page, `id="login"`) {
		t.Fatalf("after the revoked session: %d %s", resp.StatusCode, page)
	}

	// Signing out ends the session: its cookie no longer signs in.
	resp, _ = b.do(t, "POST", "/logout", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != 303 {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	again := newBrowser(t, e.url)
	u, _ := url.Parse(e.url)
	again.c.Jar.SetCookies(u, []*http.Cookie{{Name: "aegir_session", Value: sess.Value}})
	if _, page := again.do(t, "GET", "/", nil, nil); !strings.Contains(page, `id="login"`) {
		t.Fatalf("the session's cookie after sign out:\n%s", page)
	}
}

// A session lasts no longer than its token.
func TestDashboardSessionEndsWithToken(t *testing.T) {
	e := newAPIEnv(t, 100)
	b := newBrowser(t, e.url)
	b.login(t, e.tokens["olga"]) // valid for an hour
	e.advance(59 * time.Minute)
	if _, page := b.do(t, "GET", "/", nil, nil); !strings.Contains(page, "b.other.test") {
		t.Fatalf("a minute before the token expires:\n%s", page)
	}
	e.advance(2 * time.Minute)
	if _, page := b.do(t, "GET", "/", nil, nil); !strings.Contains(page, `id="login"`) {
		t.Fatalf("after the token expired:\n%s", page)
	}
}

// A site's row: its health, its certificate's days left (few: a warning)
// and its last backup.
func TestDashboardSiteRow(t *testing.T) {
	e := newAPIEnv(t, 100)
	ctx := context.Background()
	v, err := e.st.GetSite(ctx, "a.acme.test")
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock()
	notAfter := now.Add(10*24*time.Hour + time.Hour)
	if err := e.st.SaveCert(ctx, &entities.Certificate{SiteID: v.ID, Names: []string{v.Domain}, Issuer: "test", Source: "acme", NotAfter: &notAfter}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SaveSiteHealth(ctx, v.ID, entities.SiteHealth{Status: "error", HTTPCode: 502, Checked: now, Error: "bad gateway"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AddBackup(ctx, v.ID, "/backups/a.tar.gz", 1000, "", now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	page := newBrowser(t, e.url).login(t, e.tokens["ann"])
	row := page[strings.Index(page, `<tr data-domain="a.acme.test">`):]
	row = row[:strings.Index(row, "</tr>")]
	for _, want := range []string{`class="health bad">error 502: bad gateway<`, `class="cert warn">10 days left<`,
		now.Add(-3 * time.Hour).UTC().Format("2006-01-02 15:04 UTC"), "(3 h ago)"} {
		if !strings.Contains(row, want) {
			t.Errorf("the row lacks %s:\n%s", want, row)
		}
	}
	if strings.Contains(page, "/backups/a.tar.gz") {
		t.Errorf("the page shows the backup's path on the master")
	}
}

// Over TLS the dashboard's cookies are Secure too.
func TestDashboardCookiesSecureOverTLS(t *testing.T) {
	e := newAPIEnv(t, 100)
	srv := httptest.NewTLSServer(e.h)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL)
	b.c.Transport = srv.Client().Transport
	resp, page := b.do(t, "GET", "/", nil, nil)
	if len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("the sign-in form's cookie over TLS: %+v", resp.Cookies())
	}
	resp, body := b.do(t, "POST", "/login", url.Values{"token": {e.tokens["ann"]}, "csrf": {csrfOf(t, page)}}, nil)
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "aegir_session" {
			sess = c
		}
	}
	if resp.StatusCode != 303 || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign in over TLS: %d %+v %s", resp.StatusCode, sess, body)
	}
	if _, page := b.do(t, "GET", "/", nil, nil); !strings.Contains(page, `data-domain="a.acme.test"`) {
		t.Fatalf("the sites page over TLS:\n%s", page)
	}
}

// Many browsers at once (go test -race sees the sessions' map and the
// limiters shared): each signs in, reads its page and signs out, and each
// sees its own user's sites.
func TestDashboardConcurrentSessions(t *testing.T) {
	e := newAPIEnv(t, 1000)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			who, want, not := "ann", "a.acme.test", "b.other.test"
			if i%2 == 1 {
				who, want, not = "olga", "b.other.test", "a.acme.test"
			}
			b := newBrowser(t, e.url)
			_, page := b.do(t, "GET", "/", nil, nil)
			m := csrfField.FindStringSubmatch(page)
			if m == nil {
				errs <- "no CSRF field"
				return
			}
			if resp, _ := b.do(t, "POST", "/login", url.Values{"token": {e.tokens[who]}, "csrf": {m[1]}}, nil); resp.StatusCode != 303 {
				errs <- fmt.Sprintf("%s signs in: %d", who, resp.StatusCode)
				return
			}
			for j := 0; j < 5; j++ {
				if _, page = b.do(t, "GET", "/", nil, nil); !strings.Contains(page, `data-domain="`+want+`"`) || strings.Contains(page, not) {
					errs <- fmt.Sprintf("%s's page %d:\n%s", who, j, page)
					return
				}
			}
			m = csrfField.FindStringSubmatch(page)
			if resp, _ := b.do(t, "POST", "/logout", url.Values{"csrf": {m[1]}}, nil); resp.StatusCode != 303 {
				errs <- fmt.Sprintf("%s signs out: %d", who, resp.StatusCode)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
