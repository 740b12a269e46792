package acme

import (
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// selfSigned makes a certificate for names valid from nb to na, and its key.
func selfSigned(t *testing.T, names []string, nb, na time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, _ := testenv.SelfSigned(t, names, nb, na)
	return c, k
}

func TestCheckPair(t *testing.T) {
	now := time.Now()
	cert, key := selfSigned(t, []string{"a.test", "*.b.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, otherKey := selfSigned(t, []string{"a.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	old, oldKey := selfSigned(t, []string{"a.test"}, now.Add(-48*time.Hour), now.Add(-time.Hour))
	for _, c := range []struct {
		name        string
		cert, key   []byte
		names       []string
		wantErrPart string
	}{
		{"ok, wildcard covers an alias", cert, key, []string{"a.test", "www.b.test"}, ""},
		{"key of another certificate", cert, otherKey, []string{"a.test"}, "does not match"},
		{"alias not covered", cert, key, []string{"a.test", "c.test"}, "does not cover c.test"},
		{"expired", old, oldKey, []string{"a.test"}, "expired"},
		{"not a certificate", []byte("hello"), key, []string{"a.test"}, "no readable certificate"},
		{"not a key", cert, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), []string{"a.test"}, "no readable private key"},
	} {
		_, err := CheckPair(c.cert, c.key, c.names, now)
		if c.wantErrPart == "" && err != nil || c.wantErrPart != "" && (err == nil || !strings.Contains(err.Error(), c.wantErrPart)) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.wantErrPart)
		}
	}
}

func TestRenewAt(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		life, before, want time.Duration // want: renewal time after nb
	}{
		{90 * day, 30 * day, 60 * day}, // Let's Encrypt: 30 days before
		{90 * day, 0, 60 * day},        // default window
		{6 * day, 30 * day, 4 * day},   // short-lived: a third of its life before
		{90 * day, 10 * day, 80 * day}, // a shorter window
		{30 * time.Minute, 30 * day, 20 * time.Minute},
	} {
		i := Info{NotBefore: nb, NotAfter: nb.Add(c.life)}
		if got := i.RenewAt(c.before).Sub(nb); got != c.want {
			t.Errorf("life %v, before %v: renew %v after issue, want %v", c.life, c.before, got, c.want)
		}
	}
}

func TestDirectoryURL(t *testing.T) {
	for in, want := range map[string]string{
		"": LetsEncrypt, "production": LetsEncrypt, "staging": LetsEncryptStaging, "Staging": LetsEncryptStaging,
		"https://ca.example.org/dir": "https://ca.example.org/dir", "http://127.0.0.1:14000/dir": "http://127.0.0.1:14000/dir",
	} {
		if got, err := DirectoryURL(in); err != nil || got != want {
			t.Errorf("DirectoryURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://ca.example.org/dir", "ftp://x/y", "letsencrypt.org", "https://"} {
		if _, err := DirectoryURL(bad); err == nil {
			t.Errorf("DirectoryURL(%q) accepted", bad)
		}
	}
	if a, b := AccountDir("/h", LetsEncrypt), AccountDir("/h", "https://127.0.0.1:14000/dir"); a != "/h/acme/acme-v02.api.letsencrypt.org_directory" || b != "/h/acme/127.0.0.1_14000_dir" {
		t.Errorf("account dirs %q %q", a, b)
	}
}
