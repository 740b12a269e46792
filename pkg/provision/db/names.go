package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision"
)

// Length limits of names. MariaDB allows user names of 80 characters, but
// MySQL only 32; aegir keeps to 32 on both.
const (
	MaxMySQLDatabaseLen = 64
	MaxMySQLUserLen     = 32
	MaxPostgresNameLen  = 63
	// MaxNameLen bounds the names NameFor makes, so that one name is a
	// valid database and user name on every type.
	MaxNameLen = 32
)

// reserved are names of system databases and accounts that aegir must
// never create, grant or drop (in lower case; IsSystemName).
var reserved = map[string]bool{
	"mysql": true, "information_schema": true, "performance_schema": true, "sys": true,
	"root": true, "mariadb.sys": true, "mariadb_sys": true, "debian-sys-maint": true, "debian_sys_maint": true,
	"postgres": true, "template0": true, "template1": true, "public": true, "pg_database_owner": true,
}

// IsSystemName says whether name (a database or a user, in any case) is
// one of a database server's own, which no site may own: a site's delete
// would drop it. Those of PostgreSQL's roles start with pg_.
func IsSystemName(name string) bool {
	lower := strings.ToLower(name)
	return reserved[lower] || strings.HasPrefix(lower, "pg_")
}

// validName checks an identifier: ASCII letters, digits and underscores, at
// most max bytes, not only digits, not a system name.
func validName(kind, name string, max int) error {
	hint := fmt.Sprintf("a %s may hold only ASCII letters, digits and underscores, at most %d characters, not only digits, and not a system name; leave it empty and aegir derives one from the domain", kind, max)
	switch {
	case name == "":
		return provision.Errorf(provision.ErrInvalidContext, hint, "empty %s", kind)
	case len(name) > max:
		return provision.Errorf(provision.ErrInvalidContext, hint, "%s %q is longer than %d characters", kind, name, max)
	}
	digits := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			digits = false
		default:
			return provision.Errorf(provision.ErrInvalidContext, hint, "invalid %s %q: character %q is not allowed", kind, name, rune(c))
		}
	}
	switch {
	case digits:
		return provision.Errorf(provision.ErrInvalidContext, hint, "invalid %s %q: only digits", kind, name)
	case IsSystemName(name):
		return provision.Errorf(provision.ErrInvalidContext, hint, "invalid %s %q: a system name", kind, name)
	}
	return nil
}

// ValidDatabaseName checks a database name for servers of type t.
func ValidDatabaseName(t Type, name string) error {
	if t == PostgreSQL {
		return validName("database name", name, MaxPostgresNameLen)
	}
	return validName("database name", name, MaxMySQLDatabaseLen)
}

// ValidUserName checks a database user name for servers of type t.
func ValidUserName(t Type, user string) error {
	if t == PostgreSQL {
		return validName("database user name", user, MaxPostgresNameLen)
	}
	return validName("database user name", user, MaxMySQLUserLen)
}

// ValidGrantHost checks the host a MariaDB/MySQL account may log in from:
// "%" (any host), "localhost", an IP address or a host name.
func ValidGrantHost(host string) error {
	if host == "%" || host == "localhost" || net.ParseIP(host) != nil {
		return nil
	}
	if isHostname(host) {
		return nil
	}
	return provision.Errorf(provision.ErrInvalidContext,
		"the grant host is where the web server connects from: localhost, an IP address, a host name, or % for any host",
		"invalid database grant host %q", host)
}

// isHostname reports whether h is a DNS host name (labels of letters,
// digits and inner hyphens).
func isHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// quoteMySQL quotes a validated identifier with backticks.
func quoteMySQL(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" }

// DropStatements is the SQL that drops database name and its user (the
// account from grantHost on MariaDB/MySQL) by hand, for an administrator
// to run on the server when aegir could not reach it. Names that are not
// valid give nothing.
func DropStatements(t Type, name, user, grantHost string) []string {
	if ValidDatabaseName(t, name) != nil || user != "" && ValidUserName(t, user) != nil {
		return nil
	}
	if t == PostgreSQL {
		out := []string{"DROP DATABASE IF EXISTS " + quotePostgres(name) + ";"}
		if user != "" {
			out = append(out, "DROP ROLE IF EXISTS "+quotePostgres(user)+";")
		}
		return out
	}
	out := []string{"DROP DATABASE IF EXISTS " + quoteMySQL(name) + ";"}
	if user != "" && ValidGrantHost(grantHost) == nil {
		out = append(out, "DROP USER IF EXISTS "+account(user, grantHost)+";")
	}
	return out
}

// quotePostgres quotes a validated identifier with double quotes.
func quotePostgres(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// NameFor derives a database (and user) name from a site's domain: its
// ASCII letters and digits, lower-cased ("www.example.com" gives
// "wwwexamplecom"), cut to MaxNameLen characters. When taken reports the
// name as used (or it is a system name), a suffix _2, _3, ... makes it
// unique. The result is valid for ValidDatabaseName and ValidUserName on
// every type. taken may be nil.
func NameFor(domain string, taken func(string) bool) string {
	var b strings.Builder
	for _, r := range strings.ToLower(domain) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	base := b.String()
	if strings.Trim(base, "0123456789") == "" || base == "pg" {
		base = "site" + base // empty, only digits, or "pg" (whose pg_N would be reserved)
	}
	if len(base) > MaxNameLen {
		base = base[:MaxNameLen]
	}
	free := func(n string) bool {
		return validName("name", n, MaxNameLen) == nil && (taken == nil || !taken(n))
	}
	if free(base) {
		return base
	}
	withSuffix := func(suffix string) string {
		if len(base)+len(suffix) > MaxNameLen {
			return base[:MaxNameLen-len(suffix)] + suffix
		}
		return base + suffix
	}
	for i := 2; i < 1000; i++ {
		if n := withSuffix("_" + strconv.Itoa(i)); free(n) {
			return n
		}
	}
	// A thousand neighbours are taken: a random suffix, checked a few times.
	var n string
	for range 10 {
		var r [4]byte
		_, _ = rand.Read(r[:])
		if n = withSuffix("_" + hex.EncodeToString(r[:])); free(n) {
			break
		}
	}
	return n
}

// UniqueName derives a name for domain with NameFor that is neither an
// existing database nor an existing user on s, for a site's database and
// its user alike.
func UniqueName(ctx context.Context, s Service, domain string) (string, error) {
	var firstErr error
	name := NameFor(domain, func(n string) bool {
		if firstErr != nil {
			return true
		}
		dbUsed, err := s.DatabaseExists(ctx, n)
		if err == nil && !dbUsed {
			var userUsed bool
			userUsed, err = s.UserExists(ctx, n)
			dbUsed = userUsed
		}
		if err != nil {
			firstErr = err
			return true
		}
		return dbUsed
	})
	if firstErr != nil {
		return "", firstErr
	}
	return name, nil
}

// passwordChars are the characters of generated passwords: letters and
// digits only, so that a password needs no quoting in any settings file.
const passwordChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// PasswordLen is the length of generated passwords (about 190 bits).
const PasswordLen = 32

// GeneratePassword returns a new random password of PasswordLen letters
// and digits from crypto/rand. Never log it.
func GeneratePassword() string {
	out := make([]byte, 0, PasswordLen)
	var buf [64]byte
	for len(out) < PasswordLen {
		_, _ = rand.Read(buf[:]) // crypto/rand does not fail (Go 1.24+)
		for _, c := range buf {
			// 248 = 4*62: drop the bytes above it so every character is
			// equally likely.
			if c < 248 && len(out) < PasswordLen {
				out = append(out, passwordChars[int(c)%len(passwordChars)])
			}
		}
	}
	return string(out)
}
