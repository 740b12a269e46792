package tasks

import (
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
)

// The names an ACME order asks for (wildcards left out, with a warning),
// and which certificate files a vhost may name: only the site's own, on
// its own web server (not those of the place a migrate came from).
func TestCertNamesAndOwnFiles(t *testing.T) {
	var log []string
	env := &provision.Env{Log: provision.LoggerFunc(func(level, msg string) { log = append(log, level+": "+msg) })}
	c := &provision.Context{SiteDomain: "a.test", SiteAliases: []string{"www.a.test", "*.b.test"}, WebServer: "web1", WebRemoteHome: "/srv/aegir"}
	s := &site{c: c, env: env}
	if got := strings.Join(s.certNames(true), " "); got != "a.test www.a.test" {
		t.Errorf("ACME names %q", got)
	}
	if len(log) != 1 || !strings.HasPrefix(log[0], "warning: alias *.b.test is a wildcard") || !strings.Contains(log[0], "aegir site cert a.test") {
		t.Errorf("log %q", log)
	}
	if got := strings.Join(s.certNames(false), " "); got != "a.test www.a.test *.b.test" {
		t.Errorf("names a brought certificate must cover: %q", got)
	}

	if s.certDir() != "/srv/aegir/config/web1/ssl/a.test" {
		t.Fatalf("cert dir %s", s.certDir())
	}
	for _, tc := range []struct{ cert, key, want string }{
		{"/srv/aegir/config/web1/ssl/a.test/cert-1.pem", "/srv/aegir/config/web1/ssl/a.test/key-1.pem", "/srv/aegir/config/web1/ssl/a.test/cert-1.pem"},
		{"/srv/aegir/config/web2/ssl/a.test/cert-1.pem", "/srv/aegir/config/web2/ssl/a.test/key-1.pem", ""},     // another server
		{"/srv/aegir/config/web1/ssl/old.test/cert-1.pem", "/srv/aegir/config/web1/ssl/old.test/key-1.pem", ""}, // another domain
		{"/srv/aegir/config/web1/ssl/a.test.evil/cert-1.pem", "/srv/aegir/config/web1/ssl/a.test.evil/key-1.pem", ""},
		{"/srv/aegir/config/web1/ssl/a.test/cert-1.pem", "", ""}, // no key
	} {
		c.SiteCertFile, c.SiteKeyFile = tc.cert, tc.key
		if got := s.certFile(); got != tc.want {
			t.Errorf("certFile(%s, %s) = %q, want %q", tc.cert, tc.key, got, tc.want)
		}
	}
}
