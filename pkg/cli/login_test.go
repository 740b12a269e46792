package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// browser is an HTTP client with a cookie jar that reaches every host
// name at the test's web server, and does not follow redirects.
func (h *hostEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	addr := net.JoinHostPort("127.0.0.1", itoa(h.web.Port))
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// authCookies are the WordPress login cookies a response sets (not its
// test cookie).
func authCookies(resp *http.Response) []string {
	var out []string
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "wordpress_") && c.Name != "wordpress_test_cookie" && c.Value != "" {
			out = append(out, c.Name)
		}
	}
	return out
}

var (
	loginLinkRe = regexp.MustCompile(`^(http://[^/]+)/wp-login\.php\?action=aegir-login#token=([A-Za-z0-9_-]{43})$`)
	// loginFormRe is the form of the page a login link opens: where it
	// posts, and the empty field its script puts the token in.
	loginFormRe   = regexp.MustCompile(`<form name="aegir-login" id="aegir-login-form" method="post" action="([^"]+)"><input type="hidden" name="token" id="aegir-login-token" value="" />`)
	loginScriptRe = regexp.MustCompile(`(?s)<script>\n(\(function \(\) \{\n.*?\n\}\)\(\);)\n</script>`)
)

// post sends a login form to url.
func post(t *testing.T, c *http.Client, url string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(url, form)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// postLoginLink posts a link's token as the button of its page does.
func postLoginLink(t *testing.T, c *http.Client, link string) (*http.Response, string) {
	t.Helper()
	m := loginLinkRe.FindStringSubmatch(link)
	return post(t, c, m[1]+"/wp-login.php?action=aegir-login", url.Values{"token": {m[2]}})
}

// checkLoginPage opens a login link as a mail scanner or a chat preview
// does, before the person it was sent to: an HTTP client sends no
// fragment, so the site never sees the token; it answers a page with a
// button and no login cookie. The page's script, run by node as a
// browser would run it on the link, puts the link's token in the form and
// takes it out of the address bar. It returns where the form posts.
func checkLoginPage(t *testing.T, h *hostEnv, link string) string {
	t.Helper()
	resp, body := fetch(t, h.browser(), link)
	m, script := loginFormRe.FindStringSubmatch(body), loginScriptRe.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || script == nil || len(authCookies(resp)) > 0 || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("the page of a login link: %d, cookies %v, Referrer-Policy %q; want 200, a form and its script, no login cookie\n%.1500s",
			resp.StatusCode, authCookies(resp), resp.Header.Get("Referrer-Policy"), body)
	}
	token, address := runLoginScript(t, script[1], link)
	if token != loginLinkRe.FindStringSubmatch(link)[2] || address != "/wp-login.php?action=aegir-login" {
		t.Fatalf("the page's script on %s: token %q in the form, address bar %q", link, token, address)
	}
	return html.UnescapeString(m[1])
}

// runLoginScript runs the script of a login link's page in node, in a
// stand-in of the browser's window on link: it returns the token it put
// in the form and the address it left in the address bar.
func runLoginScript(t *testing.T, script, link string) (token, address string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node runs the login page's script: %v; run: apt-get install nodejs", err)
	}
	l, _ := json.Marshal(link)
	prog := `const u = new URL(` + string(l) + `);
const field = {value: ''};
const window = {location: {hash: u.hash, pathname: u.pathname, search: u.search}, history: {replaceState: (s, title, to) => { window.address = to; }}};
const document = {getElementById: (id) => id === 'aegir-login-token' ? field : null};
` + script + `
console.log(JSON.stringify({token: field.value, address: window.address || ''}));`
	out, err := exec.Command(node, "-e", prog).CombinedOutput()
	var res struct{ Token, Address string }
	if err != nil || json.Unmarshal(out, &res) != nil {
		t.Fatalf("node on the login page's script: %v\n%s", err, out)
	}
	return res.Token, res.Address
}

// checkLoginLink opens a fresh login link: its page (twice, as a link
// preview would first) logs nobody in; in a new browser, its button gives
// a 302 to the dashboard with the login cookies, then the dashboard
// itself. It returns the link's token.
func checkLoginLink(t *testing.T, h *hostEnv, link string) string {
	t.Helper()
	m := loginLinkRe.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("login link %q is not aegir's", link)
	}
	checkLoginPage(t, h, link)
	action := checkLoginPage(t, h, link)
	if action != m[1]+"/wp-login.php?action=aegir-login" {
		t.Fatalf("the page of a login link posts to %q", action)
	}
	b := h.browser()
	resp, body := post(t, b, action, url.Values{"token": {m[2]}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != m[1]+"/wp-admin/" || len(authCookies(resp)) == 0 {
		t.Fatalf("login link: %d, Location %q, cookies %v; want 302 to %s/wp-admin/ with login cookies\n%.500s",
			resp.StatusCode, resp.Header.Get("Location"), authCookies(resp), m[1], body)
	}
	resp, body = fetch(t, b, m[1]+"/wp-admin/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>Dashboard") || strings.Contains(body, `id="loginform"`) {
		t.Fatalf("dashboard after the login link: %d\n%.800s", resp.StatusCode, body)
	}
	return m[2]
}

// checkRefused posts the token of a login link that must not log anyone
// in, as its page's button does: 403, the reason on the page, no login
// cookie, and no way into the dashboard.
func checkRefused(t *testing.T, h *hostEnv, link, why string) {
	t.Helper()
	b := h.browser()
	resp, body := postLoginLink(t, b, link)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, why) || len(authCookies(resp)) > 0 {
		t.Fatalf("refused link: %d, cookies %v; want 403 %q and no login cookie\n%.800s", resp.StatusCode, authCookies(resp), why, body)
	}
	base := loginLinkRe.FindStringSubmatch(link)[1]
	if resp, _ := fetch(t, b, base+"/wp-admin/"); resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "wp-login.php") {
		t.Fatalf("dashboard after a refused link: %d %q, want a redirect to the login form", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A WordPress site installed with its title and admin account given,
// then logged into with aegir's one-time link through the real nginx:
// the link lands on the dashboard once; used again or expired it is
// refused; the token is kept nowhere but as a hash in the site's
// database. A verify puts the login plugin back when it was removed.
func TestSiteLoginLinkWordPress(t *testing.T) {
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "wplink")

	_, errs, code := aegir(t, h.home, "site", "install", domain, "--platform", "wp",
		"--title", `Jane's "Blog"`, "--admin-user", "jane.doe", "--admin-email", "jane@example.com")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s", code, errs)
	}
	dbName, _ := siteRecord(t, h.home, domain)["db_name"].(string)
	if !strings.Contains(errs, "to log in as jane.doe: aegir site login-reset "+domain+"\n") {
		t.Fatalf("the install does not say how to log in:\n%s", errs)
	}
	db := mariadb(t)
	var blogname, login, email string
	if err := db.QueryRow("SELECT option_value FROM `" + dbName + "`.wp_options WHERE option_name = 'blogname'").Scan(&blogname); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT user_login, user_email FROM `"+dbName+"`.wp_users WHERE ID = 1").Scan(&login, &email); err != nil {
		t.Fatal(err)
	}
	if blogname != "Jane&#039;s &quot;Blog&quot;" || login != "jane.doe" || email != "jane@example.com" {
		t.Fatalf("installed with blogname %q, admin %q <%s>", blogname, login, email)
	}

	plugin := loginPlugin(root)
	if st, err := os.Stat(plugin); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("login plugin after install: %v", err)
	}

	link := strings.TrimSpace(must(t, h.home, "site", "login-reset", domain))
	token := checkLoginLink(t, h, link)
	checkRefused(t, h, link, "not valid, or it was already used")

	// Expired: the stored expiry put in the past; the link is refused, and
	// used up all the same.
	link = strings.TrimSpace(must(t, h.home, "site", "login-reset", domain, "-q"))
	res, err := db.Exec("UPDATE `" + dbName + "`.wp_usermeta SET meta_value = CONCAT('1000000000', SUBSTRING(meta_value, LOCATE(':', meta_value))) WHERE meta_key = 'aegir_login_token'")
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("expiring the token: %v (%d rows)", err, n)
	}
	checkRefused(t, h, link, "expired")
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM `" + dbName + "`.wp_usermeta WHERE meta_key = 'aegir_login_token'").Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d tokens left after the expired one was shown (%v)", left, err)
	}
	checkRefused(t, h, strings.Replace(link, "token=", "token=x", 1)[:len(link)], "not valid")

	// Its button pressed many times at once, a link logs in once.
	many := strings.TrimSpace(must(t, h.home, "site", "login-reset", domain, "-q"))
	action := checkLoginPage(t, h, many)
	codes := make(chan int, 8)
	var wg sync.WaitGroup
	for i := 0; i < cap(codes); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.browser().PostForm(action, url.Values{"token": {loginLinkRe.FindStringSubmatch(many)[2]}})
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusFound] != 1 || got[http.StatusForbidden] != cap(codes)-1 {
		t.Fatalf("one link opened %d times at once: %v, want one 302 and the rest 403", cap(codes), got)
	}

	// The tokens are nowhere in aegir's state, logs or files, nor in the
	// platform's, nor in the site's access log (its own, under the
	// runtime directory newHome gives) or the web server's.
	tokens := [][]byte{[]byte(token), []byte(loginLinkRe.FindStringSubmatch(link)[2]), []byte(loginLinkRe.FindStringSubmatch(many)[2])}
	runtime := filepath.Join(filepath.Dir(h.home), "runtime")
	if b, err := os.ReadFile(filepath.Join(runtime, "sites", domain, "logs", "access.log")); err != nil || !bytes.Contains(b, []byte("action=aegir-login")) {
		t.Fatalf("the site's access log has no login link request: %v", err)
	}
	for _, dir := range []string{h.home, root, h.web.Dir, runtime} {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				for _, tok := range tokens {
					if bytes.Contains(b, tok) {
						t.Errorf("a login token is in %s", p)
					}
				}
			}
			return nil
		})
	}
	var tasks []struct{ ID int }
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--type", "site.login-reset", "--format", "json")), &tasks); err != nil || len(tasks) != 3 {
		t.Fatalf("login-reset tasks: %v %v", tasks, err)
	}
	for _, task := range tasks {
		logs := must(t, h.home, "task", "log", itoa(task.ID))
		for _, tok := range tokens {
			if strings.Contains(logs, string(tok)) {
				t.Errorf("a login token is in the log of task %d:\n%s", task.ID, logs)
			}
		}
		if !strings.Contains(logs, "one-time login link for user jane.doe of "+domain) {
			t.Errorf("log of task %d:\n%s", task.ID, logs)
		}
	}

	// Removed, the plugin comes back with a verify (as with a restore,
	// migrate or clone: pkg/cli/backup_test.go; a login-reset would put it
	// back too).
	removeLoginPlugin(t, root)
	must(t, h.home, "site", "verify", domain, "-q")
	checkLoginPluginBack(t, h, root, domain)

	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
}

// loginPlugin is aegir's login plugin on the WordPress platform at root.
func loginPlugin(root string) string {
	return filepath.Join(root, "wp-content", "mu-plugins", "aegir-login.php")
}

func removeLoginPlugin(t *testing.T, root string) {
	t.Helper()
	if err := os.Remove(loginPlugin(root)); err != nil {
		t.Fatal(err)
	}
}

// checkLoginPluginBack checks that the task just run put the platform's
// login plugin back (mode 0644), and that a login link of the site
// works.
func checkLoginPluginBack(t *testing.T, h *hostEnv, root, domain string) {
	t.Helper()
	if st, err := os.Stat(loginPlugin(root)); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("login plugin after the task: %v", err)
	}
	checkLoginLink(t, h, strings.TrimSpace(must(t, h.home, "site", "login-reset", domain, "-q")))
}
