package entities

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeDomain(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"Example.COM", "example.com", ""},
		{"example.com.", "example.com", ""},
		{"a-b.c-d.test", "a-b.c-d.test", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"", "", "must not be empty"},
		{"localhost", "", "at least two labels"},
		{"a..b", "", "empty label"},
		{"-a.test", "", "start or end with a hyphen"},
		{"a_b.test", "", "only letters, digits, hyphens and dots"},
		{"a/b.test", "", "only letters"},
		{"../etc.test", "", "empty label"},
		{"a.b.123", "", "last label must not be all digits"},
		{"10.0.0.1", "", "not an IP address"},
		{strings.Repeat("a", 64) + ".test", "", "at most 63"},
		{strings.Repeat("abcdefghi.", 26) + "test", "", "at most 253"},
	} {
		got, err := NormalizeDomain("domain", tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		var inv *InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.err) || inv.Field != "domain" {
			t.Errorf("NormalizeDomain(%q): %v; want an invalid domain error with %q", tc.in, err, tc.err)
		}
	}
}

func TestValidateNameAndPath(t *testing.T) {
	for _, ok := range []string{"web1", "db-2.example", "A_b"} {
		if err := ValidateName("name", ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", `a\b`, "..", "a..b", "-x", ".x", "a b", "a;b", strings.Repeat("x", 65)} {
		if err := ValidateName("name", bad); err == nil {
			t.Errorf("ValidateName(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"/var/www/p1", "/srv/a b"} {
		if err := ValidateAbsPath("--root", ok); err != nil {
			t.Errorf("ValidateAbsPath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/", "relative", "/var/../etc", "/var//www", "/var/www/", "/a/./b", "/a\nb"} {
		if err := ValidateAbsPath("--root", bad); err == nil {
			t.Errorf("ValidateAbsPath(%q) accepted", bad)
		}
	}
}

func TestValidateOthers(t *testing.T) {
	cases := []struct {
		name string
		err  error
		ok   bool
	}{
		{"host name", ValidateHost("--host", "db1"), true},
		{"host ip", ValidateHost("--host", "127.0.0.1"), true},
		{"host bad", ValidateHost("--host", "bad host!"), false},
		{"port 0", ValidatePort("--port", 0), false},
		{"port 65536", ValidatePort("--port", 65536), false},
		{"email", ValidateEmail("--email", "a@b.test"), true},
		{"email display name", ValidateEmail("--email", "A <a@b.test>"), false},
		{"user", ValidateUser("--ssh-user", "aegir"), true},
		{"user injection", ValidateUser("--ssh-user", "a;rm"), false},
		{"profile", ValidateProfile("--profile", "standard"), true},
		{"profile path", ValidateProfile("--profile", "../x"), false},
		{"language", ValidateLanguage("--language", "pt-br"), true},
		{"language bad", ValidateLanguage("--language", "EN"), false},
		{"one of", ValidateOneOf("--http", "nginx", "nginx", "apache"), true},
		{"one of bad", ValidateOneOf("--http", "iis", "nginx", "apache"), false},
		{"account", ValidateAccountName("--admin-user", "Jane Doe-2@x.test"), true},
		{"account empty", ValidateAccountName("--admin-user", ""), true},
		{"account quote", ValidateAccountName("--admin-user", "o'neil"), false},
		{"account newline", ValidateAccountName("--admin-user", "a\nb"), false},
		{"account leading space", ValidateAccountName("--admin-user", " admin"), false},
		{"account two spaces", ValidateAccountName("--admin-user", "a  b"), false},
		{"account too long", ValidateAccountName("--admin-user", strings.Repeat("a", 61)), false},
		{"account email", ValidateAccountEmail("--admin-email", "ops@example.com"), true},
		{"account email no dot", ValidateAccountEmail("--admin-email", "ops@localhost"), false},
		{"account email quoted", ValidateAccountEmail("--admin-email", `"a b"@example.com`), false},
		{"account email name", ValidateAccountEmail("--admin-email", "Ops <ops@example.com>"), false},
		{"account email too long", ValidateAccountEmail("--admin-email", strings.Repeat("a", 90)+"@example.com"), false},
		{"title", ValidateTitle("--title", `Jane's "blog" – ünïcode`), true},
		{"title newline", ValidateTitle("--title", "a\nb"), false},
		{"title spaces", ValidateTitle("--title", "   "), false},
		{"title bad utf-8", ValidateTitle("--title", "a\xffb"), false},
		{"title too long", ValidateTitle("--title", strings.Repeat("é", 256)), false},
	}
	for _, c := range cases {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
}

// Lengths a server would refuse are refused first: a path longer than
// PATH_MAX or with a name longer than NAME_MAX, an address longer than
// RFC 5321's path; and the one-line error of a long value quotes its start
// and says its length rather than the whole value.
func TestLengthLimits(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ValidateAbsPath("--root", "/"+strings.Repeat("a/", 2048)+"b"), "must be at most 4095 characters"},
		{ValidateServerPath("--root", "/var/"+strings.Repeat("a", 256)), "each name in it must be at most 255 characters"},
		{ValidateEmail("--email", strings.Repeat("a", 250)+"@x.test"), "must be at most 254 characters"},
	} {
		if tc.err == nil || !strings.HasSuffix(tc.err.Error(), tc.want) {
			t.Errorf("got %v, want ...%s", tc.err, tc.want)
		}
	}
	if err := ValidateServerPath("--root", "/var/"+strings.Repeat("a", 255)); err != nil {
		t.Errorf("a name of 255 characters: %v", err)
	}
	if err := ValidateEmail("--email", strings.Repeat("a", 240)+"@example.com"); err != nil {
		t.Errorf("an address of 252 characters: %v", err)
	}
	long := "é" + strings.Repeat("a", 100000) // a cut inside a rune stays valid UTF-8
	msg := Invalid("client name", strings.Repeat("a", 79)+long, "must be at most 64 characters").Error()
	want := `invalid client name "` + strings.Repeat("a", 79) + `"... (100081 bytes): must be at most 64 characters`
	if msg != want {
		t.Errorf("got %q\nwant %q", msg, want)
	}
	if msg := Invalid("f", "short", "rule").Error(); msg != `invalid f "short": rule` {
		t.Errorf("short value: %q", msg)
	}
}

// One rule says which servers are this machine, for the store's servers
// and the back end's references alike.
func TestIsLocalMachine(t *testing.T) {
	for _, tc := range []struct {
		host, user string
		want       bool
	}{{"localhost", "", true}, {"127.0.0.1", "", true}, {"::1", "", true}, {"", "", true},
		{"localhost", "aegir", false}, {"web2.example.org", "", false}, {"127.0.0.2", "", false}} {
		if got := IsLocalMachine(tc.host, tc.user); got != tc.want {
			t.Errorf("IsLocalMachine(%q, %q) = %v", tc.host, tc.user, got)
		}
		if got := (&Server{Host: tc.host, SSHUser: tc.user}).IsLocal(); got != tc.want {
			t.Errorf("Server{%q, %q}.IsLocal() = %v", tc.host, tc.user, got)
		}
	}
}

// ValidateDomain is NormalizeDomain's rule on a value that must already be
// in normal form, with a wildcard alias where asked.
func TestValidateDomain(t *testing.T) {
	for _, c := range []struct {
		d        string
		wildcard bool
		ok       bool
	}{
		{"example.com", false, true},
		{"a-b.example.co.uk", false, true},
		{"*.example.com", true, true},
		{"*.example.com", false, false},
		{"Example.com", false, false},
		{"example.com.", false, false},
		{"example", false, false},
		{"1.2.3.4", false, false},
		{"-a.example.com", false, false},
		{"a..example.com", false, false},
		{"a_b.example.com", false, false},
		{"a.example.com\nserver_name x", false, false},
		{strings.Repeat("a", 64) + ".com", false, false},
	} {
		err := ValidateDomain("site domain", c.d, c.wildcard)
		if (err == nil) != c.ok {
			t.Errorf("ValidateDomain(%q, %v) = %v, want ok %v", c.d, c.wildcard, err, c.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "invalid site domain ") {
			t.Errorf("error %q does not name the field", err)
		}
		if _, nerr := NormalizeDomain("d", c.d); !c.wildcard && (nerr == nil) != (err == nil) && c.d == strings.ToLower(c.d) && !strings.HasSuffix(c.d, ".") {
			t.Errorf("%q: NormalizeDomain and ValidateDomain disagree: %v / %v", c.d, nerr, err)
		}
	}
}

func TestValidateBuildInput(t *testing.T) {
	for _, c := range []struct {
		f    func(string, string) error
		in   string
		good bool
	}{
		{ValidateGitURL, "https://git.example.org/site.git", true},
		{ValidateGitURL, "git@git.example.org:team/site.git", true},
		{ValidateGitURL, "/srv/git/site.git", true},
		{ValidateGitURL, "file:///srv/git/site.git", true},
		{ValidateGitURL, "--upload-pack=touch /tmp/x", false},
		{ValidateGitURL, "ext::sh -c touch% /tmp/x", false},
		{ValidateGitURL, "ftp://example.org/x", false},
		{ValidateGitURL, "site.git", false},
		{ValidateGitURL, "https://example.org/a b", false},
		{ValidateGitRef, "7.101", true},
		{ValidateGitRef, "release/6.4", true},
		{ValidateGitRef, "-b", false},
		{ValidateGitRef, "a..b", false},
		{ValidateGitRef, "v1;rm", false},
		{ValidateGitRef, "x.lock", false},
		{ValidateComposerPackage, "drupal/recommended-project", true},
		{ValidateComposerPackage, "drupal/recommended-project:^10.2", true},
		{ValidateComposerPackage, "johnpbloch/wordpress:6.4.2", true},
		{ValidateComposerPackage, "Drupal/x", false},
		{ValidateComposerPackage, "drupal", false},
		{ValidateComposerPackage, "a/b:", false},
		{ValidateComposerPackage, "a/b:1 || 2", false},
		{ValidateComposerPackage, "a/-b", false},
	} {
		if err := c.f("--x", c.in); (err == nil) != c.good {
			t.Errorf("%q: %v, want good=%v", c.in, err, c.good)
		}
	}
}

func TestNearest(t *testing.T) {
	keys := []string{"state", "master", "state_password_file", "queue.cron.enabled"}
	for word, want := range map[string]string{"stat": "state", "mastr": "master", "stae": "state", "state": "", "stats_x": "", "queue.cron.enable": "queue.cron.enabled", "xyz": ""} {
		if got := Nearest(word, keys, 2); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", word, got, want)
		}
	}
}
