package entities

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
)

// Isolation modes of a site: IsolationSite runs its PHP in a php-fpm pool
// of its own, as a Unix user of its own (SiteUnixUser); IsolationShared in
// the server's shared pool, as the web server's user.
const (
	IsolationSite   = "site"
	IsolationShared = "shared"
)

// Isolations are the isolation modes, for flags and the config key.
var Isolations = []string{IsolationSite, IsolationShared}

// SiteUserPrefix starts the name of every site's Unix user, so that aegir
// never takes a system account for a site's.
const SiteUserPrefix = "ae-"

// SiteUnixUser is the name of domain's Unix user: SiteUserPrefix and the
// domain with its dots as '_' (a domain holds no '_', so two domains never
// give one name); a name longer than the 32 characters a Unix name may have
// keeps 23 of them and ends with '-' and 8 hex digits of the domain's
// SHA-256. It is a valid ValidateSystemName user name for every valid
// domain.
func SiteUnixUser(domain string) string {
	n := SiteUserPrefix + strings.ReplaceAll(domain, ".", "_")
	if len(n) <= 32 {
		return n
	}
	sum := sha256.Sum256([]byte(domain))
	return strings.TrimRight(n[:23], "-_") + "-" + hex.EncodeToString(sum[:4])
}

var phpVersionRe = regexp.MustCompile(`^[5-9]\.[0-9]{1,2}$`)

// ValidatePHPVersion checks a PHP version as a site chooses it: MAJOR.MINOR
// (8.2). Empty is the server's default.
func ValidatePHPVersion(field, s string) error {
	if s != "" && !phpVersionRe.MatchString(s) {
		return Invalid(field, s, "must be a PHP version MAJOR.MINOR, like 8.2")
	}
	return nil
}

// SiteUnixUserOf is the Unix user v's PHP runs as when it is isolated,
// else "".
func SiteUnixUserOf(v *Site) string {
	if v.Isolation == IsolationSite {
		return SiteUnixUser(v.Domain)
	}
	return ""
}

// CompareVersions orders versions, or names holding them (php8.2-fpm.sock),
// by the numbers in them, so that 8.10 comes after 8.9: negative when a
// comes first, 0 when they are equal.
func CompareVersions(a, b string) int {
	na, nb := versionNumbers(a), versionNumbers(b)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if na[i] != nb[i] {
			return na[i] - nb[i]
		}
	}
	if len(na) != len(nb) {
		return len(na) - len(nb)
	}
	return strings.Compare(a, b)
}

func versionNumbers(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}
