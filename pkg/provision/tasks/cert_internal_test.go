package tasks

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// The names an ACME order asks for (wildcards left out, with a warning),
// and which certificate files a vhost may name: only the site's own, on
// its own web server (not those of the place a migrate came from).
func TestCertNamesAndOwnFiles(t *testing.T) {
	var log []string
	var fixes [][]entities.Action
	env := &engine.Env{Log: provision.FixLoggerFunc(func(level, msg string, fix ...entities.Action) {
		log, fixes = append(log, level+": "+msg), append(fixes, fix)
	})}
	c := &provision.Job{Site: provision.SiteSpec{Domain: "a.test", Aliases: []string{"www.a.test", "*.b.test"}, Web: provision.WebSpec{ServerRef: provision.ServerRef{Name: "web1"}, Home: "/srv/aegir"}}}
	s := &site{c: c, env: env}
	if got := strings.Join(s.certNames(true), " "); got != "a.test www.a.test" {
		t.Errorf("ACME names %q", got)
	}
	if len(log) != 1 || !strings.HasPrefix(log[0], "warning: alias *.b.test is a wildcard") || len(fixes[0]) != 1 ||
		fixes[0][0].Verb != "site.cert" || fixes[0][0].Target != "a.test" || len(fixes[0][0].Args) != 2 || fixes[0][0].Args[0].Name != "cert" {
		t.Errorf("log %q, fix %+v", log, fixes)
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
		c.Site.HTTPS.CertFile, c.Site.HTTPS.KeyFile = tc.cert, tc.key
		if got := s.certFile(); got != tc.want {
			t.Errorf("certFile(%s, %s) = %q, want %q", tc.cert, tc.key, got, tc.want)
		}
	}
}

// Which certificate of a certificate directory unpacked from a backup is
// put back: the pair good for the domain now, the one valid the longest;
// none when the directory is missing (fs.ErrNotExist) or only holds
// pairs that are expired, for another domain or mismatched (the error
// names each file and why).
func TestFindCertInBackup(t *testing.T) {
	ctx := context.Background()
	ex := exec.NewLocal()
	dir := t.TempDir()
	now := time.Now()
	write := func(id string, cert, key []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "cert-"+id+".pem"), cert, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key-"+id+".pem"), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := findCert(ctx, ex, filepath.Join(dir, "none"), "a.test", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: %v, want fs.ErrNotExist", err)
	}
	if _, _, err := findCert(ctx, ex, dir, "a.test", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty directory: %v, want fs.ErrNotExist", err)
	}
	c, k, _ := testenv.SelfSigned(t, []string{"a.test"}, now.Add(-90*24*time.Hour), now.Add(-time.Hour))
	write("expired", c, k)
	c, k, _ = testenv.SelfSigned(t, []string{"b.test"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	write("other", c, k)
	c, _, _ = testenv.SelfSigned(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	_, k, _ = testenv.SelfSigned(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	write("mismatch", c, k)
	_, _, err := findCert(ctx, ex, dir, "a.test", "")
	for _, want := range []string{"cert-expired.pem: the certificate expired", "cert-other.pem: the certificate does not cover a.test", "cert-mismatch.pem: the key does not match"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no good pair: %v, want it to say %q", err, want)
		}
	}
	c, k, short := testenv.SelfSigned(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	write("short", c, k)
	c, k, long := testenv.SelfSigned(t, []string{"a.test", "www.a.test"}, now.Add(-time.Hour), now.Add(48*time.Hour))
	write("long", c, k)
	info, id, err := findCert(ctx, ex, dir, "a.test", "")
	if err != nil || id != "long" || info.Serial != long || info.Serial == short {
		t.Fatalf("findCert = %s %s %v, want the pair valid longest (long, serial %s)", id, info.Serial, err, long)
	}
	// The one in service when the backup was made wins while it is good.
	if info, id, err := findCert(ctx, ex, dir, "a.test", "cert-short.pem"); err != nil || id != "short" || info.Serial != short {
		t.Fatalf("findCert with short in service = %s %v, want short", id, err)
	}
	if _, id, err := findCert(ctx, ex, dir, "a.test", "cert-expired.pem"); err != nil || id != "long" {
		t.Fatalf("findCert with an expired one in service = %s %v, want the longest good one", id, err)
	}
}
