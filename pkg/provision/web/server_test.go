package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/web"
)

// The same suite runs against a private nginx and a private apache, each
// with its own private php-fpm pool.
func TestNginx(t *testing.T)  { t.Parallel(); runSuite(t, web.Nginx) }
func TestApache(t *testing.T) { t.Parallel(); runSuite(t, web.Apache) }

// harness is one private web server with aegir's Server in front of it.
type harness struct {
	t       *testing.T
	typ     string
	srv     *testenv.Web
	fpm     *testenv.PHPFPM
	root    string // document root of the test sites
	tmpl    string // template overrides dir
	counter string // the reload command appends a line here
	env     *engine.Env
	cfg     web.Config
	s       *web.Server
}

func newHarness(t *testing.T, typ string) *harness {
	h := &harness{t: t, typ: typ, fpm: testenv.StartPHPFPM(t), root: testenv.PublicDir(t), tmpl: t.TempDir()}
	h.srv = startWeb(t, typ, "")
	h.counter = filepath.Join(t.TempDir(), "reloads")
	write(t, filepath.Join(h.root, "index.php"), `<?php echo "site-php host=", $_SERVER['HTTP_HOST'], " uri=", $_SERVER['REQUEST_URI'], " https=", empty($_SERVER['HTTPS']) ? "no" : "yes";`)
	write(t, filepath.Join(h.root, "hello.txt"), "static hello\n")
	write(t, filepath.Join(h.root, ".git", "config"), "[core] secret\n")
	write(t, filepath.Join(h.root, "sites", "default", "settings.php"), `<?php echo "settings leaked";`)
	write(t, filepath.Join(h.root, "sites", "default", "private", "secret.txt"), "private file\n")
	h.env = &engine.Env{
		Log:     provision.LoggerFunc(func(level, msg string) { t.Logf("%s: %s", level, msg) }),
		Reloads: engine.NewReloadSet(),
	}
	h.cfg = web.Config{
		Type: typ, ConfigDir: h.srv.ConfigDir, HTTPPort: h.srv.Port, HTTPSPort: h.srv.HTTPSPort, ListenIP: "127.0.0.1",
		TestCmd:    h.srv.TestCmd,
		RestartCmd: "echo reload >> " + exec.Quote(h.counter) + " && " + h.srv.ReloadCmd,
		PHPFPM:     h.fpm.Socket, TemplatesDir: h.tmpl, WebUser: "www-data",
	}
	h.s = h.server(h.cfg, h.env)
	return h
}

// startWeb starts a private web server of type typ that includes
// configDir (empty: a new one).
func startWeb(t *testing.T, typ, configDir string) *testenv.Web {
	if typ == web.Nginx {
		return testenv.StartNginx(t, configDir)
	}
	return testenv.StartApache(t, configDir)
}

func (h *harness) server(cfg web.Config, env *engine.Env) *web.Server {
	s, err := web.New(exec.NewLocal(), cfg, env)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) reloads() int {
	b, err := os.ReadFile(h.counter)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Count(string(b), "reload\n")
}

// reply is one HTTP answer.
type reply struct {
	code int
	body string
	hdr  http.Header
}

func (r reply) String() string {
	return fmt.Sprintf("%d %q (Location %q)", r.code, r.body, r.hdr.Get("Location"))
}

var client = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// get asks the server for host's path over HTTP (or HTTPS, with roots).
func (h *harness) get(host, path string, roots *x509.CertPool) (reply, error) {
	url := h.srv.URL() + path
	c := client
	if roots != nil {
		url = "https://127.0.0.1:" + strconv.Itoa(h.srv.HTTPSPort) + path
		c = &http.Client{Timeout: client.Timeout, CheckRedirect: client.CheckRedirect, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: host, RootCAs: roots},
		}}
	}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return reply{}, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(b), hdr: resp.Header}, err
}

// expect waits (a reload takes effect a moment after the signal) until
// host's path answers as ok says, and fails the test after 5 s.
func (h *harness) expect(host, path string, roots *x509.CertPool, ok func(reply) bool) reply {
	h.t.Helper()
	var r reply
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if r, err = h.get(host, path, roots); err == nil && ok(r) {
			return r
		}
	}
	h.t.Fatalf("%s GET %s%s: got %v, err %v", h.typ, host, path, r, err)
	return r
}

func answers(code int, body string) func(reply) bool {
	return func(r reply) bool { return r.code == code && strings.Contains(r.body, body) }
}

func (h *harness) writeSite(site web.Site, wantChanged bool) {
	h.t.Helper()
	changed, err := h.s.WriteSite(context.Background(), site)
	if err != nil {
		h.t.Fatalf("WriteSite(%s): %v", site.Domain, err)
	}
	if changed != wantChanged {
		h.t.Fatalf("WriteSite(%s): changed = %v, want %v", site.Domain, changed, wantChanged)
	}
}

func runSuite(t *testing.T, typ string) {
	h := newHarness(t, typ)
	ctx := context.Background()
	port := strconv.Itoa(h.srv.Port)
	site := web.Site{Domain: "a.test", Aliases: []string{"www.a.test"}, Root: h.root}

	t.Run("verify writes the include file and checks the server", func(t *testing.T) {
		st, err := h.s.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version == "" || !st.Changed || st.PHPFPM != h.fpm.Socket {
			t.Errorf("status %+v: want a version, changed, php-fpm %s", st, h.fpm.Socket)
		}
		inc, err := os.ReadFile(filepath.Join(h.srv.ConfigDir, map[string]string{web.Nginx: "nginx.conf", web.Apache: "apache.conf"}[typ]))
		if err != nil || !strings.Contains(string(inc), filepath.Join(h.srv.ConfigDir, "vhost.d")+"/*.conf") {
			t.Errorf("include file: %v\n%s", err, inc)
		}
		if st.IncludeLine != h.s.IncludeLine() || !strings.Contains(st.IncludeLine, st.IncludeFile) {
			t.Errorf("include line %q", st.IncludeLine)
		}
		if st, err := h.s.Verify(ctx); err != nil || st.Changed {
			t.Errorf("second verify: %+v, %v; want unchanged", st, err)
		}
		if n := h.reloads(); n != 1 {
			t.Errorf("reloads = %d, want 1 (only the first verify wrote a file)", n)
		}
	})

	t.Run("verify warns when the web user cannot read the ACME challenge dir", func(t *testing.T) {
		var mu sync.Mutex
		var warnings []string
		env := &engine.Env{Log: provision.LoggerFunc(func(level, msg string) {
			mu.Lock()
			defer mu.Unlock()
			if level == provision.LevelWarning {
				warnings = append(warnings, msg)
			}
		})}
		cfg := h.cfg
		cfg.ConfigDir = filepath.Join(t.TempDir(), "config", "web1") // t.TempDir is 0700
		// A web server that includes that dir: the reload waits for it.
		srv := startWeb(t, typ, cfg.ConfigDir)
		cfg.HTTPPort, cfg.HTTPSPort, cfg.TestCmd, cfg.RestartCmd = srv.Port, srv.HTTPSPort, srv.TestCmd, srv.ReloadCmd
		if _, err := h.server(cfg, env).Verify(ctx); err != nil {
			t.Fatal(err)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "www-data cannot enter "+cfg.ConfigDir+"/acme-challenge") {
			t.Errorf("warnings = %q", warnings)
		}
	})

	t.Run("a server that does not serve aegir's files fails the reload's wait, clearly", func(t *testing.T) {
		cfg := h.cfg
		cfg.ConfigDir = filepath.Join(testenv.PublicDir(t), "config", "web9") // not included
		cfg.ReloadTimeout = 2 * time.Second
		start := time.Now()
		_, err := h.server(cfg, h.env).WriteSite(ctx, web.Site{Domain: "lost.test", Root: h.root})
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrCommand ||
			!strings.Contains(pe.Error(), typ+" of server web9 (localhost) does not serve aegir's configuration on 127.0.0.1:"+port+": 2s after the reload") ||
			!strings.Contains(pe.Error(), "without aegir's reload probe") || !strings.Contains(pe.Hint, "includes "+cfg.ConfigDir) {
			t.Fatalf("got %v (hint %q); want a command error that names the server and the include", err, hintOf(err))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the wait took %s, beyond its 2 s timeout", d)
		}
	})

	t.Run("site and alias serve PHP through php-fpm", func(t *testing.T) {
		before := h.reloads()
		h.writeSite(site, true)
		if n := h.reloads(); n != before+1 {
			t.Errorf("reloads = %d, want %d", n, before+1)
		}
		// The port goes along in HTTP_HOST, as Drupal needs on a port
		// that is not 80.
		h.expect("a.test", "/", nil, answers(200, "site-php host=a.test:"+port+" uri=/ https=no"))
		h.expect("www.a.test", "/node/1?x=1", nil, answers(200, "site-php host=www.a.test:"+port+" uri=/node/1?x=1"))
		h.expect("a.test", "/hello.txt", nil, answers(200, "static hello"))
		for _, p := range []string{"/.git/config", "/sites/default/settings.php", "/sites/default/private/secret.txt"} {
			r := h.expect("a.test", p, nil, func(r reply) bool { return r.code == 403 || r.code == 404 })
			if strings.Contains(r.body, "secret") || strings.Contains(r.body, "leaked") {
				t.Errorf("%s leaked: %v", p, r)
			}
		}
		write(t, filepath.Join(h.s.ACMEChallengeDir(), "tok123"), "tok123.key")
		h.expect("a.test", "/.well-known/acme-challenge/tok123", nil, answers(200, "tok123.key"))
		if got, _ := h.s.Sites(ctx); strings.Join(got, ",") != "a.test" {
			t.Errorf("Sites() = %v", got)
		}
	})

	t.Run("unchanged site: no write, no reload", func(t *testing.T) {
		before := h.reloads()
		h.writeSite(web.Site{Domain: "A.test", Aliases: []string{"www.a.test", "www.a.test"}, Root: h.root}, false)
		if n := h.reloads(); n != before {
			t.Errorf("reloads = %d, want %d", n, before)
		}
	})

	t.Run("redirect: the alias answers 301 to the domain", func(t *testing.T) {
		red := site
		red.Redirect = true
		h.writeSite(red, true)
		r := h.expect("www.a.test", "/x/y?z=1", nil, func(r reply) bool { return r.code == 301 })
		if loc := r.hdr.Get("Location"); loc != "http://a.test:"+port+"/x/y?z=1" {
			t.Errorf("Location = %q", loc)
		}
		h.expect("a.test", "/", nil, answers(200, "site-php host=a.test:"))
		h.expect("www.a.test", "/.well-known/acme-challenge/tok123", nil, answers(200, "tok123.key"))
	})

	t.Run("disabled: a 503 page instead of the site", func(t *testing.T) {
		dis := site
		dis.Disabled = true
		h.writeSite(dis, true)
		for _, host := range []string{"a.test", "www.a.test"} {
			for _, p := range []string{"/", "/hello.txt", "/index.php"} {
				r := h.expect(host, p, nil, answers(503, "Site disabled"))
				if !strings.Contains(r.body, "a.test") || strings.Contains(r.body, "site-php") || strings.Contains(r.body, "static hello") {
					t.Errorf("%s%s: %v", host, p, r)
				}
			}
		}
		h.expect("a.test", "/.well-known/acme-challenge/tok123", nil, answers(200, "tok123.key"))
		h.writeSite(site, true)
		h.expect("a.test", "/", nil, answers(200, "site-php host=a.test:"))
	})

	t.Run("an override that renders invalid config is rejected; the old config keeps serving", func(t *testing.T) {
		name := map[string]string{web.Nginx: "nginx-site.conf.tmpl", web.Apache: "apache-site.conf.tmpl"}[typ]
		embedded, err := web.Template(name)
		if err != nil {
			t.Fatal(err)
		}
		override := filepath.Join(h.tmpl, name)
		write(t, override, string(embedded)+"\nAegirNotADirective on;\n")
		defer os.Remove(override)
		file := h.s.SiteFile("a.test")
		good, _ := os.ReadFile(file)
		before := h.reloads()

		_, err = h.s.WriteSite(ctx, site)
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrConfigTest {
			t.Fatalf("WriteSite with a broken override: %v; want a config_test error", err)
		}
		if !strings.Contains(pe.Error(), "AegirNotADirective") || !strings.Contains(pe.Hint, override) {
			t.Errorf("the error should show the test's output and the hint the override:\n%s\nhint: %s", pe.Error(), pe.Hint)
		}
		if now, _ := os.ReadFile(file); !bytes.Equal(now, good) {
			t.Errorf("the vhost was not put back:\n%s", now)
		}
		if n := h.reloads(); n != before {
			t.Errorf("reloads = %d, want %d", n, before)
		}
		h.expect("a.test", "/", nil, answers(200, "site-php host=a.test:"))

		// A new site with the broken override: its file is removed again.
		if _, err := h.s.WriteSite(ctx, web.Site{Domain: "new.test", Root: h.root}); err == nil {
			t.Fatal("WriteSite(new.test) with a broken override succeeded")
		}
		if _, err := os.Stat(h.s.SiteFile("new.test")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("new.test's vhost left behind: %v", err)
		}
	})

	t.Run("config broken elsewhere: the hint says so", func(t *testing.T) {
		broken := filepath.Join(h.srv.ConfigDir, "vhost.d", "zz-broken.test.conf")
		write(t, broken, "AegirNotADirective on;\n")
		_, err := h.s.WriteSite(ctx, web.Site{Domain: "b.test", Root: h.root})
		os.Remove(broken)
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrConfigTest || !strings.Contains(pe.Hint, "even without this change") {
			t.Fatalf("got %v (hint %q); want a config_test error whose hint blames the existing config", err, hintOf(err))
		}
		if _, err := os.Stat(h.s.SiteFile("b.test")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("b.test's vhost left behind: %v", err)
		}
	})

	t.Run("a test command that is not there: missing_binary, nothing kept", func(t *testing.T) {
		cfg := h.cfg
		cfg.TestCmd = "aegir-no-such-program -t"
		_, err := h.server(cfg, h.env).WriteSite(ctx, web.Site{Domain: "c.test", Root: h.root})
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrMissingBinary {
			t.Fatalf("got %v; want a missing_binary error", err)
		}
		if _, err := os.Stat(h.s.SiteFile("c.test")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("c.test's vhost left behind: %v", err)
		}
	})

	t.Run("https on, then required", func(t *testing.T) {
		roots, cert, key := selfSigned(t, testenv.PublicDir(t), "a.test", "www.a.test")
		tlsSite := site
		tlsSite.HTTPS, tlsSite.CertFile, tlsSite.KeyFile = web.HTTPSOn, cert, key
		h.writeSite(tlsSite, true)
		tlsPort := strconv.Itoa(h.srv.HTTPSPort)
		h.expect("a.test", "/", roots, answers(200, "site-php host=a.test:"+tlsPort+" uri=/ https=yes"))
		h.expect("a.test", "/", nil, answers(200, "https=no"))

		tlsSite.HTTPS = web.HTTPSRequired
		h.writeSite(tlsSite, true)
		r := h.expect("a.test", "/p?q=1", nil, func(r reply) bool { return r.code == 301 })
		if loc := r.hdr.Get("Location"); loc != "https://a.test:"+tlsPort+"/p?q=1" {
			t.Errorf("Location = %q", loc)
		}
		h.expect("a.test", "/.well-known/acme-challenge/tok123", nil, answers(200, "tok123.key"))
		r = h.expect("www.a.test", "/", roots, answers(200, "site-php host=www.a.test:"+tlsPort))
		if r.hdr.Get("Strict-Transport-Security") == "" {
			t.Errorf("no HSTS header with HTTPS required: %v", r.hdr)
		}
		h.writeSite(site, true)
		h.expect("a.test", "/", nil, answers(200, "https=no"))
	})

	t.Run("every variant passes the server's own config test", func(t *testing.T) {
		roots, cert, key := selfSigned(t, testenv.PublicDir(t), "v.test", "www.v.test")
		base := web.Site{Domain: "v.test", Aliases: []string{"www.v.test", "*.w.test"}, Root: h.root, CertFile: cert, KeyFile: key}
		for _, v := range []struct {
			redirect, disabled bool
			https, app         string
		}{
			{true, false, web.HTTPSOn, web.WordPress},
			{true, true, web.HTTPSRequired, web.Drupal},
			{false, true, web.HTTPSOff, web.WordPress},
			{true, false, web.HTTPSRequired, web.Drupal},
		} {
			site := base
			site.Redirect, site.Disabled, site.HTTPS, site.AppType = v.redirect, v.disabled, v.https, v.app
			if _, err := h.s.WriteSite(ctx, site); err != nil {
				t.Fatalf("%+v: %v", v, err)
			}
		}
		// The last one: HTTP and HTTPS aliases go to the HTTPS domain.
		tlsURL := "https://v.test:" + strconv.Itoa(h.srv.HTTPSPort)
		// Wait for the reload of the last variant: earlier ones redirect elsewhere.
		toTLS := func(r reply) bool { return r.code == 301 && r.hdr.Get("Location") == tlsURL+"/a?b=c" }
		r := h.expect("www.v.test", "/a?b=c", nil, toTLS)
		r2 := h.expect("www.v.test", "/a?b=c", roots, toTLS)
		for _, r := range []reply{r, r2} {
			if loc := r.hdr.Get("Location"); loc != tlsURL+"/a?b=c" {
				t.Errorf("Location = %q, want %s/a?b=c", loc, tlsURL)
			}
		}
		if _, err := h.s.RemoveSite(ctx, "v.test"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("parallel writes share one reload", func(t *testing.T) {
		env := &engine.Env{Log: h.env.Log, Reloads: engine.NewReloadSet()}
		env.Reloads.Gather = 2 * time.Second // every request below arrives within it
		before := h.reloads()
		domains := []string{"p1.test", "p2.test", "p3.test"}
		var wg sync.WaitGroup
		errs := make([]error, len(domains))
		for i, d := range domains {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = h.server(h.cfg, env).WriteSite(ctx, web.Site{Domain: d, Root: h.root})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", domains[i], err)
			}
		}
		if n := h.reloads(); n != before+1 {
			t.Errorf("reloads = %d, want %d (one for the three sites)", n, before+1)
		}
		for _, d := range domains {
			h.expect(d, "/", nil, answers(200, "site-php host="+d+":"))
			if _, err := h.s.RemoveSite(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("remove: the domain no longer answers with the site", func(t *testing.T) {
		changed, err := h.s.RemoveSite(ctx, "a.test")
		if err != nil || !changed {
			t.Fatalf("RemoveSite: %v, %v", changed, err)
		}
		r := h.expect("a.test", "/", nil, func(r reply) bool { return r.code == 404 })
		if strings.Contains(r.body, "site-php") {
			t.Errorf("removed site still answers: %v", r)
		}
		if _, err := os.Stat(h.s.SiteFile("a.test")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("vhost file still there: %v", err)
		}
		before := h.reloads()
		if changed, err := h.s.RemoveSite(ctx, "a.test"); err != nil || changed {
			t.Errorf("second RemoveSite: %v, %v; want unchanged", changed, err)
		}
		if n := h.reloads(); n != before {
			t.Errorf("reloads = %d, want %d", n, before)
		}
	})
}

func hintOf(err error) string {
	var pe *provision.Error
	if errors.As(err, &pe) {
		return pe.Hint
	}
	return ""
}

// selfSigned writes a certificate for names and its key under dir and
// returns a pool that trusts it.
func selfSigned(t *testing.T, dir string, names ...string) (*x509.CertPool, string, string) {
	t.Helper()
	certPEM, keyPEM, _ := testenv.SelfSigned(t, names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(t, certFile, string(certPEM))
	write(t, keyFile, string(keyPEM))
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool, certFile, keyFile
}

// The first request after a change sees it: a site disabled then enabled
// again 20 times, each time one GET as soon as WriteSite returns, with no
// retry (issue 15: 6 of 20 such first requests saw the new page).
func TestFirstRequestSeesTheChange(t *testing.T) {
	for _, typ := range []string{web.Nginx, web.Apache} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, typ)
			site := web.Site{Domain: "first.test", Root: h.root}
			h.writeSite(site, true)
			h.expect("first.test", "/hello.txt", nil, answers(200, "static hello"))
			const n = 20
			seen := 0
			var waits time.Duration
			for i := 0; i < n; i++ {
				site.Disabled = !site.Disabled
				start := time.Now()
				h.writeSite(site, true)
				waits += time.Since(start)
				want := answers(200, "static hello")
				if site.Disabled {
					want = answers(503, "Site disabled")
				}
				if r, err := h.get("first.test", "/hello.txt", nil); err == nil && want(r) {
					seen++
				} else {
					t.Logf("change %d (disabled %v): the first request got %v, %v", i+1, site.Disabled, r, err)
				}
			}
			t.Logf("%s: %d of %d first requests saw the change; WriteSite took %s on average", typ, seen, n, waits/n)
			if seen != n {
				t.Errorf("%d of %d first requests saw the change, want all", seen, n)
			}
		})
	}
}

// TestProbeIsNeverTheDefault: on a web server whose own default comes
// after aegir's include and is no default_server (nginx's conf.d/
// default.conf, apache's 000-default after a conf-enabled/aegir.conf), a
// name no virtual host has is answered by the system's default before any
// site, and again after the last site is gone, not by the reload probe;
// with a site, the reload still waits for the probe.
func TestProbeIsNeverTheDefault(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{web.Nginx, web.Apache} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := testenv.StartNginxIncludeFirst
			want := answers(404, "no site")
			if typ == web.Apache {
				srv, want = testenv.StartApacheIncludeFirst, answers(200, "system default")
			}
			h := newHarness(t, typ)
			h.srv = srv(t, "")
			h.cfg.ConfigDir, h.cfg.HTTPPort, h.cfg.HTTPSPort, h.cfg.TestCmd = h.srv.ConfigDir, h.srv.Port, h.srv.HTTPSPort, h.srv.TestCmd
			h.cfg.RestartCmd = h.srv.ReloadCmd
			h.s = h.server(h.cfg, h.env)
			unknown := func(when string) {
				t.Helper()
				r, err := h.get("unknown.test", "/", nil)
				if err != nil || !want(r) {
					t.Errorf("%s: unknown.test answered %v, %v; want the system's default", when, r, err)
				}
			}
			if _, err := h.s.Verify(ctx); err != nil {
				t.Fatal(err)
			}
			unknown("after server verify")
			site := web.Site{Domain: "a.test", Root: h.root}
			if _, err := h.s.WriteSite(ctx, site); err != nil {
				t.Fatal(err)
			}
			if r, err := h.get("a.test", "/hello.txt", nil); err != nil || !answers(200, "static hello")(r) {
				t.Errorf("a.test right after its write: %v, %v", r, err)
			}
			if _, err := h.s.RemoveSite(ctx, site.Domain); err != nil {
				t.Fatal(err)
			}
			unknown("after the last site's removal")
			if _, err := os.Stat(filepath.Join(h.cfg.ConfigDir, "probe.conf")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("probe.conf without sites: %v", err)
			}
		})
	}
}

// A settings file rewritten under a running php-fpm: its opcache runs the
// compiled old one (here for as long as the test: revalidate_freq is an
// hour instead of Debian's 2 s) until RefreshPHP, after which the very
// next request runs the new one, on nginx and apache; a file no longer
// there is fine too; nothing of aegir's script is left behind.
func TestRefreshPHP(t *testing.T) {
	for _, typ := range []string{web.Nginx, web.Apache} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, typ)
			refreshScenario(t, h, func(cfg web.Config, env *engine.Env) *web.Server { return h.server(cfg, env) })
		})
	}
}

// The same through SSH, logged in as testenv's unprivileged test user,
// who may not open php-fpm's socket (www-data's, mode 0660): the request
// goes through php-cli run as www-data (sudo -n -u www-data).
func TestRefreshPHPOverSSH(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	ex, err := exec.DialSSH(context.Background(), exec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile,
		KnownHostsFile: srv.KnownHostsFile, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	t.Cleanup(func() { ex.Close() })
	h := newHarness(t, web.Nginx)
	refreshScenario(t, h, func(cfg web.Config, env *engine.Env) *web.Server {
		// The site's directory is the SSH user's, as a deploy user's is.
		dir := filepath.Join(h.root, "sites", "o.test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := osexec.Command("chown", srv.User, dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
		s, err := web.New(ex, cfg, env)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// refreshScenario: a settings file rewritten under a running php-fpm is
// run as it was (compiled) until RefreshPHP of the Server that server
// makes, after which the very next request runs the new one.
func refreshScenario(t *testing.T, h *harness, server func(web.Config, *engine.Env) *web.Server) {
	h.fpm = testenv.StartPHPFPM(t, "opcache.revalidate_freq=3600")
	h.cfg.PHPFPM = h.fpm.Socket
	h.s = h.server(h.cfg, h.env)
	ctx := context.Background()
	h.writeSite(web.Site{Domain: "o.test", Root: h.root}, true)
	var mu sync.Mutex
	var logs []string
	env := &engine.Env{Log: provision.LoggerFunc(func(level, msg string) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, level+": "+msg)
	})}
	s := server(h.cfg, env)

	dir := filepath.Join(h.root, "sites", "o.test")
	conf := filepath.Join(dir, "settings.php")
	opc := filepath.Join(h.root, "opc.php")
	write(t, opc, `<?php echo "conf=", require __DIR__ . '/sites/o.test/settings.php';`)
	old := time.Now().Add(-time.Hour) // opcache caches no file younger than 2 s
	setConf := func(v string) {
		write(t, conf, `<?php return "`+v+`";`)
		for _, f := range []string{opc, conf} {
			if err := os.Chtimes(f, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	setConf("v1")
	h.expect("o.test", "/opc.php", nil, answers(200, "conf=v1"))

	setConf("v2")
	if r, err := h.get("o.test", "/opc.php", nil); err != nil || r.body != "conf=v1" {
		t.Fatalf("before RefreshPHP: %v, %v; want the cached conf=v1 (else this test proves nothing)", r, err)
	}
	s.RefreshPHP(ctx, time.Now(), conf, filepath.Join(dir, "gone.php"))
	mu.Lock()
	log := strings.Join(logs, "\n")
	mu.Unlock()
	if r, err := h.get("o.test", "/opc.php", nil); err != nil || r.body != "conf=v2" {
		t.Fatalf("the first request after RefreshPHP: %v, %v; want conf=v2\n%s", r, err, log)
	}
	if !strings.Contains(log, " forgot its compiled "+conf) {
		t.Errorf("RefreshPHP did not say it made php-fpm forget the files:\n%s", log)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".aegir-opcache-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// When php-fpm cannot be asked (nothing listens at its address),
// RefreshPHP says so and waits until opcache would look at the files
// again on its own, counted from when they were written.
func TestRefreshPHPUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, web.Nginx)
	var logs []string
	h.env.Log = provision.LoggerFunc(func(level, msg string) { logs = append(logs, level+": "+msg) })
	h.cfg.PHPFPM = filepath.Join(t.TempDir(), "none.sock")
	s := h.server(h.cfg, h.env)
	conf := filepath.Join(h.root, "settings.php")
	write(t, conf, "<?php\n")
	s.RefreshPHP(context.Background(), time.Now().Add(-web.OpcacheSettle), conf)
	if got := strings.Join(logs, "\n"); !strings.Contains(got, "cannot make php-fpm on localhost forget its compiled copy of "+conf) || !strings.Contains(got, "waiting 0s") {
		t.Errorf("log:\n%s", got)
	}
	if left, _ := filepath.Glob(filepath.Join(h.root, ".aegir-opcache-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// BenchmarkRefreshPHP is the cost RefreshPHP adds to a task that
// rewrote a site's settings: one FastCGI request to the local php-fpm
// that drops one file from its opcache (docs/benchmarks.md, Opcache).
func BenchmarkRefreshPHP(b *testing.B) {
	h, conf := benchFPM(b)
	ctx := context.Background()
	for b.Loop() {
		h.s.RefreshPHP(ctx, time.Now(), conf)
	}
}

// BenchmarkPHPFPMReload is what the other way would cost a task: php-fpm
// reloaded (SIGUSR2 to its master, as systemctl reload does) until a
// request is answered by a new worker; every site on the server then
// compiles its code again.
func BenchmarkPHPFPMReload(b *testing.B) {
	h, _ := benchFPM(b)
	pidFile := filepath.Join(h.fpm.Dir, "php-fpm.pid")
	worker := func() string {
		r, err := h.get("o.test", "/pid.php", nil)
		if err != nil || r.code != 200 {
			return ""
		}
		return r.body
	}
	for b.Loop() {
		before := worker()
		pid, err := os.ReadFile(pidFile)
		if err != nil {
			b.Fatal(err)
		}
		if out, err := osexec.Command("kill", "-USR2", strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
			b.Fatalf("kill: %v %s", err, out)
		}
		for w := worker(); w == "" || w == before; w = worker() {
			time.Sleep(time.Millisecond)
		}
	}
}

// benchFPM is a harness on nginx whose site o.test has a settings file
// and a page that says which php-fpm worker answers.
func benchFPM(b *testing.B) (*harness, string) {
	h := &harness{typ: web.Nginx, fpm: testenv.StartPHPFPM(b), root: testenv.PublicDir(b), tmpl: b.TempDir()}
	h.srv = testenv.StartNginx(b, "")
	h.env = &engine.Env{Reloads: engine.NewReloadSet()}
	h.cfg = web.Config{Type: web.Nginx, ConfigDir: h.srv.ConfigDir, HTTPPort: h.srv.Port, HTTPSPort: h.srv.HTTPSPort, ListenIP: "127.0.0.1",
		TestCmd: h.srv.TestCmd, RestartCmd: h.srv.ReloadCmd, PHPFPM: h.fpm.Socket, TemplatesDir: h.tmpl, WebUser: "www-data"}
	s, err := web.New(exec.NewLocal(), h.cfg, h.env)
	if err != nil {
		b.Fatal(err)
	}
	h.s = s
	if _, err := s.WriteSite(context.Background(), web.Site{Domain: "o.test", Root: h.root}); err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(h.root, "sites", "o.test", "settings.php")
	for p, body := range map[string]string{conf: `<?php return "v1";`, filepath.Join(h.root, "pid.php"): `<?php echo getmypid();`} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return h, conf
}
