package db

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
)

func TestNameFor(t *testing.T) {
	long := "a-very-long-subdomain.of-an-even-longer-domain-name.example.com"
	tests := []struct {
		domain string
		taken  []string
		want   string
	}{
		{"www.example.com", nil, "wwwexamplecom"},
		{"WWW.Example.COM", nil, "wwwexamplecom"},
		{"my-site.example.org", nil, "mysiteexampleorg"},
		{"www.example.com", []string{"wwwexamplecom"}, "wwwexamplecom_2"},
		{"www.example.com", []string{"wwwexamplecom", "wwwexamplecom_2", "wwwexamplecom_3"}, "wwwexamplecom_4"},
		{long, nil, "averylongsubdomainofanevenlonger"},
		{long, []string{"averylongsubdomainofanevenlonger"}, "averylongsubdomainofanevenlong_2"},
		{"1234.example", nil, "1234example"},
		{"123", nil, "site123"},
		{"", nil, "site"},
		{"...", nil, "site"},
		{"bücher.de", nil, "bcherde"},
		{"xn--bcher-kva.de", nil, "xnbcherkvade"},
		{"mysql", nil, "mysql_2"},              // a system database
		{"postgres", nil, "postgres_2"},        // a system database
		{"pg", []string{"sitepg"}, "sitepg_2"}, // pg_2 would be a reserved role name
		{"a'b`c;d e\"f.com", nil, "abcdefcom"},
	}
	for _, tt := range tests {
		taken := map[string]bool{}
		for _, n := range tt.taken {
			taken[n] = true
		}
		got := NameFor(tt.domain, func(n string) bool { return taken[n] })
		if got != tt.want {
			t.Errorf("NameFor(%q, taken %v) = %q, want %q", tt.domain, tt.taken, got, tt.want)
		}
		for _, ty := range []Type{MariaDB, MySQL, PostgreSQL} {
			if err := ValidDatabaseName(ty, got); err != nil {
				t.Errorf("NameFor(%q) = %q: not a valid %s database name: %v", tt.domain, got, ty, err)
			}
			if err := ValidUserName(ty, got); err != nil {
				t.Errorf("NameFor(%q) = %q: not a valid %s user name: %v", tt.domain, got, ty, err)
			}
		}
	}
}

func TestNameForManyTaken(t *testing.T) {
	calls := 0
	got := NameFor("www.example.com", func(n string) bool { calls++; return calls < 1500 })
	if !strings.HasPrefix(got, "wwwexamplecom_") || len(got) > MaxNameLen || ValidDatabaseName(MariaDB, got) != nil {
		t.Errorf("NameFor with 1500 names taken = %q", got)
	}
	if got := NameFor("www.example.com", nil); got != "wwwexamplecom" {
		t.Errorf("NameFor with nil taken = %q", got)
	}
}

func TestValidNames(t *testing.T) {
	good := []string{"wwwexamplecom", "site_2", "A1", "_x", strings.Repeat("a", 32)}
	bad := []string{
		"", "123", "mysql", "MySQL", "information_schema", "postgres", "template1", "root", "pg_signal",
		"a`b", "a'b", `a"b`, "a;b", "a b", "a-b", "a.b", "a/b", `a\b`, "a%b", "a?b", "a\x00b", "a\nb",
		"x`; DROP DATABASE mysql; --", "x'; DROP USER root; --", `x"; DROP ROLE postgres; --`,
		"bücher", "аdmin" /* Cyrillic а */, "ｓｉｔｅ", "a\u200bb",
		strings.Repeat("a", 65),
	}
	for _, ty := range []Type{MariaDB, MySQL, PostgreSQL} {
		for _, n := range good {
			if err := ValidDatabaseName(ty, n); err != nil {
				t.Errorf("%s: ValidDatabaseName(%q) = %v", ty, n, err)
			}
			if err := ValidUserName(ty, n); err != nil {
				t.Errorf("%s: ValidUserName(%q) = %v", ty, n, err)
			}
		}
		for _, n := range bad {
			err := ValidDatabaseName(ty, n)
			if err == nil {
				t.Errorf("%s: ValidDatabaseName(%q) accepted it", ty, n)
				continue
			}
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext || pe.Hint == "" {
				t.Errorf("%s: ValidDatabaseName(%q) = %#v, want an invalid_context error with a hint", ty, n, err)
			}
			if ValidUserName(ty, n) == nil {
				t.Errorf("%s: ValidUserName(%q) accepted it", ty, n)
			}
		}
	}
	// Length limits per type.
	if ValidDatabaseName(MariaDB, strings.Repeat("a", 64)) != nil || ValidDatabaseName(PostgreSQL, strings.Repeat("a", 63)) != nil {
		t.Error("a name at the length limit was refused")
	}
	if ValidDatabaseName(PostgreSQL, strings.Repeat("a", 64)) == nil || ValidUserName(MariaDB, strings.Repeat("a", 33)) == nil ||
		ValidUserName(PostgreSQL, strings.Repeat("a", 64)) == nil {
		t.Error("a name over the length limit was accepted")
	}
}

func TestValidGrantHost(t *testing.T) {
	for _, h := range []string{"%", "localhost", "127.0.0.1", "10.1.2.3", "::1", "fe80::1", "web1", "web-1.example.com"} {
		if err := ValidGrantHost(h); err != nil {
			t.Errorf("ValidGrantHost(%q) = %v", h, err)
		}
	}
	for _, h := range []string{"", "a b", "a'b", "a`b", `a"b`, "a;b", "-web", "web-", "a..b", "10.0.0.%", "%.example.com",
		"host'@'%", "x`@`%`; DROP USER root; --", "bücher.de", strings.Repeat("a", 64) + ".com", "fe80::1%eth0"} {
		if ValidGrantHost(h) == nil {
			t.Errorf("ValidGrantHost(%q) accepted it", h)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := quoteMySQL("site_1"); got != "`site_1`" {
		t.Errorf("quoteMySQL = %s", got)
	}
	if got := quotePostgres("site_1"); got != `"site_1"` {
		t.Errorf("quotePostgres = %s", got)
	}
	if got := grantPattern("my_site_2"); got != "`my\\_site\\_2`" {
		t.Errorf("grantPattern = %s", got)
	}
	if got := account("u", "%"); got != "`u`@`%`" {
		t.Errorf("account = %s", got)
	}
	for in, want := range map[string]string{`abc`: `'abc'`, `it's`: `'it''s'`, `a\b`: `E'a\\b'`, `a\'b`: `E'a\\''b'`} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 200 {
		p := GeneratePassword()
		if len(p) < 24 || len(p) != PasswordLen {
			t.Fatalf("password of %d characters", len(p))
		}
		for _, r := range p {
			if !strings.ContainsRune(passwordChars, r) {
				t.Fatalf("password holds %q", r)
			}
			counts[r]++
		}
		if seen[p] {
			t.Fatal("the same password twice")
		}
		seen[p] = true
	}
	// 6400 characters over 62: every one shows up (the chance that one
	// does not is below 1e-40).
	if len(counts) != len(passwordChars) {
		t.Errorf("only %d of %d characters used", len(counts), len(passwordChars))
	}
}

func TestNativeHash(t *testing.T) {
	// PASSWORD('password') on MariaDB and MySQL 5.
	if got := nativeHash("password"); got != "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19" {
		t.Errorf("nativeHash = %s", got)
	}
}

func TestRebind(t *testing.T) {
	tests := map[string]string{
		"SELECT 1":                              "SELECT 1",
		"SELECT * FROM t WHERE a = ? AND b=?":   "SELECT * FROM t WHERE a = $1 AND b=$2",
		"SELECT '?', \"a?\" FROM t WHERE x = ?": "SELECT '?', \"a?\" FROM t WHERE x = $1",
		"SELECT 'it''s ?' , ?":                  "SELECT 'it''s ?' , $1",
	}
	for in, want := range tests {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCredentialFiles(t *testing.T) {
	if got, _ := optionValue(`p"a\s'#w rd`); got != `"p\"a\\s'#w rd"` {
		t.Errorf("optionValue = %s", got)
	}
	if got, _ := pgpassField(`a:b\c`); got != `a\:b\\c` {
		t.Errorf("pgpassField = %s", got)
	}
	if _, err := optionValue("a\nb"); err == nil {
		t.Error("optionValue accepted a line break")
	}
	if _, err := pgpassField("a\nb"); err == nil {
		t.Error("pgpassField accepted a line break")
	}
}

func TestConfigHidesPassword(t *testing.T) {
	c := Config{Type: MariaDB, Host: "db1", AdminUser: "admin", AdminPassword: "s3cretPW"}
	for _, s := range []string{c.String(), c.GoString(), fmtAll(c)} {
		if strings.Contains(s, "s3cretPW") {
			t.Errorf("password shown in %q", s)
		}
	}
	if c.Addr() != "db1:3306" || (Config{Type: PostgreSQL}).Addr() != "127.0.0.1:5432" || (Config{Host: "/run/x.sock"}).Addr() != "/run/x.sock" {
		t.Error("Addr defaults wrong")
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []Config{
		{Type: "oracle", AdminUser: "a"},
		{Type: MariaDB},
		{Type: PostgreSQL, AdminUser: "a", Port: 70000},
	} {
		_, err := New(c)
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext || pe.Hint == "" {
			t.Errorf("New(%v) = %v, want an invalid_context error", c, err)
		}
	}
}

func fmtAll(c Config) string { return fmt.Sprintf("%v %+v %#v %s", c, c, c, c) }

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"mariadb": MariaDB, "mysql": MySQL, "postgresql": PostgreSQL, "postgres": PostgreSQL, "pgsql": PostgreSQL} {
		if got, err := ParseType(in); got != want || err != nil {
			t.Errorf("ParseType(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseType("sqlite"); errCode(err) != provision.ErrInvalidContext {
		t.Errorf("ParseType(sqlite) = %v", err)
	}
	if MariaDB.DefaultPort() != 3306 || PostgreSQL.DefaultPort() != 5432 {
		t.Error("default ports")
	}
}

// The names a database server keeps for itself, as they are spelled on
// the server and in any case, and PostgreSQL's pg_ roles, are system
// names; a site's are not.
func TestIsSystemName(t *testing.T) {
	for _, n := range []string{"mysql", "MySQL", "information_schema", "performance_schema", "sys", "root",
		"mariadb.sys", "debian-sys-maint", "postgres", "template0", "template1", "public", "pg_monitor", "PG_read_all_data"} {
		if !IsSystemName(n) {
			t.Errorf("IsSystemName(%q) = false", n)
		}
	}
	for _, n := range []string{"wwwexamplecom", "site_2", "mysqlsite", "rootsite", "publicsite", "sitepg_2"} {
		if IsSystemName(n) {
			t.Errorf("IsSystemName(%q) = true", n)
		}
	}
}
