package web

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.ConfigDir == "" {
		cfg.ConfigDir = "/var/aegir/config/web1"
	}
	s, err := New(exec.NewLocal(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func code(err error) string {
	var pe *provision.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestInvalidInputIsRefused(t *testing.T) {
	good := Site{Domain: "a.test", Root: "/var/www/a"}
	sites := map[string]func(*Site){
		"traversal domain":   func(s *Site) { s.Domain = "../../etc/passwd" },
		"domain with slash":  func(s *Site) { s.Domain = "a.test/../x" },
		"domain with space":  func(s *Site) { s.Domain = "a b.test" },
		"domain with ;":      func(s *Site) { s.Domain = "a.test;" },
		"one label":          func(s *Site) { s.Domain = "localhost" },
		"ip address":         func(s *Site) { s.Domain = "10.0.0.1" },
		"wildcard domain":    func(s *Site) { s.Domain = "*.a.test" },
		"bad alias":          func(s *Site) { s.Aliases = []string{"ok.test", "x.test{"} },
		"relative root":      func(s *Site) { s.Root = "var/www" },
		"root with ..":       func(s *Site) { s.Root = "/var/www/../../etc" },
		"root with ;":        func(s *Site) { s.Root = "/var/www;include /etc" },
		"root with space":    func(s *Site) { s.Root = "/var/my www" },
		"root /":             func(s *Site) { s.Root = "/" },
		"newline in cert":    func(s *Site) { s.HTTPS, s.CertFile, s.KeyFile = HTTPSOn, "/c.pem\n}", "/k.pem" },
		"unknown https mode": func(s *Site) { s.HTTPS = "maybe" },
		"unknown app type":   func(s *Site) { s.AppType = "joomla" },
	}
	s := newServer(t, Config{Type: Nginx, PHPFPM: "127.0.0.1:9000"})
	for name, mod := range sites {
		site := good
		mod(&site)
		if _, err := s.RenderSite(context.Background(), site); code(err) != provision.ErrInvalidContext {
			t.Errorf("%s: got %v, want an invalid_context error", name, err)
		}
		if _, err := s.WriteSite(context.Background(), site); code(err) != provision.ErrInvalidContext {
			t.Errorf("%s: WriteSite: got %v, want an invalid_context error", name, err)
		}
	}
	if _, err := s.RemoveSite(context.Background(), "../x.test"); code(err) != provision.ErrInvalidContext {
		t.Errorf("RemoveSite(../x.test): %v", err)
	}
	configs := map[string]Config{
		"unknown type":        {Type: "lighttpd", ConfigDir: "/a"},
		"relative config dir": {Type: Nginx, ConfigDir: "config/web1"},
		"php-fpm with ;":      {Type: Nginx, ConfigDir: "/a", PHPFPM: "evil;host:9000"},
		"php-fpm no port":     {Type: Nginx, ConfigDir: "/a", PHPFPM: "127.0.0.1"},
		"php-fpm bad socket":  {Type: Nginx, ConfigDir: "/a", PHPFPM: "unix:/run/my php.sock"},
		"listen ip":           {Type: Apache, ConfigDir: "/a", ListenIP: "example.com"},
		"port":                {Type: Apache, ConfigDir: "/a", HTTPPort: 70000},
		"two-line command":    {Type: Apache, ConfigDir: "/a", TestCmd: "apache2ctl -t\nrm -rf /"},
	}
	for name, cfg := range configs {
		if _, err := New(exec.NewLocal(), cfg, nil); code(err) != provision.ErrInvalidContext {
			t.Errorf("%s: got %v, want an invalid_context error", name, err)
		}
	}
}

func TestSiteIsNormalized(t *testing.T) {
	s := newServer(t, Config{Type: Nginx, PHPFPM: "/run/php/x.sock"})
	b, err := s.RenderSite(context.Background(), Site{Domain: "A.Test.", Aliases: []string{"WWW.a.test", "www.a.test", "*.a.test", "a.test"}, Root: "/var/www/a"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "server_name a.test www.a.test *.a.test;") {
		t.Errorf("want one server_name line with each name once:\n%s", b)
	}
}

func TestPortsInTheVhost(t *testing.T) {
	for _, tc := range []struct {
		typ, ip        string
		port           int
		listen, passes string
		portInHost     bool
	}{
		{Nginx, "", 80, "listen 80;", "fastcgi_param HTTP_HOST", false},
		{Nginx, "127.0.0.1", 8080, "listen 127.0.0.1:8080;", "fastcgi_param HTTP_HOST $host:$server_port;", true},
		{Nginx, "::1", 8080, "listen [::1]:8080;", "fastcgi_param HTTP_HOST", true},
		{Apache, "", 80, "<VirtualHost *:80>", "ProxyFCGISetEnvIf", false},
		{Apache, "::1", 8080, "<VirtualHost [::1]:8080>", `ProxyFCGISetEnvIf "true" HTTP_HOST "%{SERVER_NAME}:%{SERVER_PORT}"`, true},
	} {
		s := newServer(t, Config{Type: tc.typ, HTTPPort: tc.port, ListenIP: tc.ip, PHPFPM: "127.0.0.1:9000"})
		b, err := s.RenderSite(context.Background(), Site{Domain: "a.test", Root: "/var/www/a"})
		if err != nil {
			t.Fatal(err)
		}
		out := string(b)
		if !strings.Contains(out, tc.listen) || strings.Contains(out, tc.passes) != tc.portInHost {
			t.Errorf("%s on %s:%d: want %q, and %q present = %v:\n%s", tc.typ, tc.ip, tc.port, tc.listen, tc.passes, tc.portInHost, out)
		}
	}
}

func TestPHPFPMIsDetected(t *testing.T) {
	dir := t.TempDir()
	defer func(d string) { phpRunDir = d }(phpRunDir)
	phpRunDir = dir
	s := newServer(t, Config{Type: Apache})
	if _, err := s.RenderSite(context.Background(), Site{Domain: "a.test", Root: "/var/www/a"}); code(err) != provision.ErrMissingBinary {
		t.Fatalf("no socket: got %v, want a missing_binary error", err)
	}
	// Real sockets, and a plain file that is not one.
	for _, n := range []string{"php7.4-fpm.sock", "php8.10-fpm.sock", "php8.9-fpm.sock"} {
		l, err := net.Listen("unix", filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "php9.0-fpm.sock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := s.RenderSite(context.Background(), Site{Domain: "a.test", Root: "/var/www/a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `SetHandler "proxy:unix:` + dir + `/php8.10-fpm.sock|fcgi://localhost"`; !strings.Contains(string(b), want) {
		t.Errorf("want the newest socket: %s\n%s", want, b)
	}
}

func TestTemplateOverrides(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, Config{Type: Nginx, PHPFPM: "127.0.0.1:9000", TemplatesDir: dir})
	site := Site{Domain: "a.test", Root: "/var/www/a", Disabled: true}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The disabled page: quotes and "$" cannot break out of nginx's string.
	write("site-disabled.html.tmpl", `<p class="x">{{.Domain}} costs $5; \ "}</p>`)
	b, err := s.RenderSite(context.Background(), site)
	if err != nil {
		t.Fatal(err)
	}
	if want := `return 503 "<p class=\"x\">a.test costs &#36;5; \\ \"}</p>";`; !strings.Contains(string(b), want) {
		t.Errorf("want %s in:\n%s", want, b)
	}
	write("nginx-site.conf.tmpl", "# mine {{.Domain}}\n")
	if b, err = s.RenderSite(context.Background(), site); err != nil || string(b) != "# mine a.test\n" {
		t.Errorf("override not used: %q, %v", b, err)
	}
	write("nginx-site.conf.tmpl", "{{.NoSuchField}}")
	_, err = s.RenderSite(context.Background(), site)
	if code(err) != provision.ErrConfigTest || !strings.Contains(err.Error(), filepath.Join(dir, "nginx-site.conf.tmpl")) {
		t.Errorf("broken override: got %v; want a config_test error naming the file", err)
	}
	if len(TemplateNames()) != 5 {
		t.Errorf("TemplateNames() = %v", TemplateNames())
	}
}

func TestDefaultCommandsOfASystemInstall(t *testing.T) {
	for typ, want := range map[string][2]string{
		Nginx:  {"nginx -t", "nginx -s reload"},
		Apache: {"apache2ctl configtest", "apache2ctl graceful"},
	} {
		s := newServer(t, Config{Type: typ})
		test, err := s.command(context.Background(), "", s.fl.testArgs)
		if err != nil {
			t.Fatal(err)
		}
		reload, err := s.command(context.Background(), "", s.fl.reloadArgs)
		if err != nil {
			t.Fatal(err)
		}
		// Found on PATH, or under /usr/sbin when PATH lacks it.
		got := [2]string{strings.TrimPrefix(test.String(), "/usr/sbin/"), strings.TrimPrefix(reload.String(), "/usr/sbin/")}
		if got != want {
			t.Errorf("%s: default commands %q, want %q", typ, got, want)
		}
		// An administrator's command line runs through sh -c as given.
		s.cfg.TestCmd = "sudo nginx -t && echo 'ok'"
		if c, _ := s.command(context.Background(), s.cfg.TestCmd, s.fl.testArgs); c.Name != "sh" || strings.Join(c.Args, "|") != "-c|sudo nginx -t && echo 'ok'" {
			t.Errorf("custom command: %v", c)
		}
	}
}

func TestConfigFromContext(t *testing.T) {
	c := &provision.Job{Site: provision.SiteSpec{Web: provision.WebSpec{ServerRef: provision.ServerRef{Name: "web1"}, Home: "/home/aegir/.aegir", Type: "apache", Port: 8080,
		HTTPSPort: 8443, TestCmd: "t", RestartCmd: "r", PHPFPM: "127.0.0.1:9000", ListenIP: "127.0.0.1"}}, System: provision.SystemSpec{WebUser: "www-data"}}
	got := ConfigFromContext("/root/.aegir", c)
	want := Config{Type: Apache, ConfigDir: "/home/aegir/.aegir/config/web1", HTTPPort: 8080, HTTPSPort: 8443, ListenIP: "127.0.0.1",
		TestCmd: "t", RestartCmd: "r", PHPFPM: "127.0.0.1:9000", TemplatesDir: "/root/.aegir/templates", WebUser: "www-data", PHPUser: "www-data"}
	if got != want {
		t.Errorf("ConfigFromContext:\n got %+v\nwant %+v", got, want)
	}
	// A remote deploy user runs PHP itself (no sudo -u www-data).
	c.Site.Web.ServerRef = provision.ServerRef{Name: "web2", Host: "web2.example.com", SSHUser: "aegir"}
	if got := ConfigFromContext("", c); got.PHPUser != "aegir" || got.WebUser != "www-data" {
		t.Errorf("remote deploy user: PHPUser %q WebUser %q, want aegir and www-data", got.PHPUser, got.WebUser)
	}
}

// The back end takes the domains and the web user that the front end
// accepts (entities.NormalizeDomain, entities.ValidateSystemName) and
// refuses those it refuses: one rule each, not one a side.
func TestOneRuleWithTheFrontEnd(t *testing.T) {
	s := newServer(t, Config{Type: Nginx, PHPFPM: "127.0.0.1:9000"})
	for _, d := range []string{
		"a.test", "x-1.a.test", "1a.test", "a.b2", "a.x-y",
		"a.-test", "a.test-", "-a.test", "a..test", "a.123", "a_b.test",
		strings.Repeat("a", 63) + ".test", strings.Repeat("a", 64) + ".test",
		"a." + strings.Repeat("t", 63), "a." + strings.Repeat("t", 64),
		strings.Repeat("abcdefghi.", 25) + "test", strings.Repeat("abcdefghi.", 24) + "test",
	} {
		n, err := entities.NormalizeDomain("DOMAIN", d)
		front := err == nil && n == d
		_, err = s.RenderSite(context.Background(), Site{Domain: d, Root: "/var/www/a"})
		if back := err == nil; back != front {
			t.Errorf("domain %q: the front end accepts it: %v, the back end: %v (%v)", d, front, back, err)
		}
		_, err = s.RenderSite(context.Background(), Site{Domain: "a.test", Aliases: []string{"*." + d}, Root: "/var/www/a"})
		if back := err == nil; back != front && len(d) < 250 {
			t.Errorf("alias *.%s: the front end accepts %q: %v, the back end: %v (%v)", d, d, front, back, err)
		}
	}
	for _, u := range []string{"www-data", "_www", "nginx", "a.b", "u1", "WWW", "1www", "-www", "w w", strings.Repeat("w", 32), strings.Repeat("w", 33)} {
		front := entities.ValidateSystemName("web_user", u, "user") == nil
		_, err := New(exec.NewLocal(), Config{Type: Nginx, ConfigDir: "/a", WebUser: u}, nil)
		if back := err == nil; back != front {
			t.Errorf("web user %q: the front end accepts it: %v, the back end: %v (%v)", u, front, back, err)
		}
	}
}
