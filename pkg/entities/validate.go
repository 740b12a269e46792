package entities

import (
	"fmt"
	"net"
	"net/mail"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// InvalidError is bad input: which field, and the rule it breaks.
// The command line turns it into one line and exit code 2.
type InvalidError struct {
	Field string
	Value string
	Rule  string
}

func (e *InvalidError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid %s: %s", e.Field, e.Rule)
	}
	v := e.Value
	if len(v) > maxShown { // one line a person can read: the start and the length
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		return fmt.Sprintf("invalid %s %q... (%d bytes): %s", e.Field, v[:cut], len(v), e.Rule)
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Field, v, e.Rule)
}

// maxShown is how much of an invalid value its error quotes.
const maxShown = 80

// Invalid builds an *InvalidError.
func Invalid(field, value, rule string) *InvalidError {
	return &InvalidError{Field: field, Value: value, Rule: rule}
}

// NormalizeDomain lower-cases a domain and checks it against RFC 1123: at
// most 253 characters, labels of 1-63 letters, digits and hyphens that
// neither start nor end with a hyphen, at least two labels. field names the
// flag or argument in the error.
func NormalizeDomain(field, s string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(s))
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", Invalid(field, s, "must not be empty")
	}
	if len(d) > 253 {
		return "", Invalid(field, s, "must be at most 253 characters")
	}
	if net.ParseIP(d) != nil {
		return "", Invalid(field, s, "must be a domain name, not an IP address")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", Invalid(field, s, "must have at least two labels, like example.com or site.test")
	}
	for _, l := range labels {
		if l == "" {
			return "", Invalid(field, s, "must not have an empty label (two dots in a row)")
		}
		if len(l) > 63 {
			return "", Invalid(field, s, "each label must be at most 63 characters (RFC 1123)")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", Invalid(field, s, "labels must not start or end with a hyphen (RFC 1123)")
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", Invalid(field, s, "may contain only letters, digits, hyphens and dots (RFC 1123)")
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", Invalid(field, s, "the last label must not be all digits")
	}
	return d, nil
}

// ValidateDomain checks a domain already in its normal form (as
// NormalizeDomain gives it: lower case, no trailing dot), by the same
// rule; wildcard also accepts a leading "*." (an alias such as
// *.example.com). It is the back end's check of a job, which must not
// change what it was given.
func ValidateDomain(field, d string, wildcard bool) error {
	name := d
	if wildcard {
		name = strings.TrimPrefix(d, "*.")
	}
	n, err := NormalizeDomain(field, name)
	if err != nil {
		return Invalid(field, d, err.(*InvalidError).Rule)
	}
	if n != name {
		return Invalid(field, d, "must be a lower-case domain name without a trailing dot, such as example.com")
	}
	return nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ValidateName checks the name of a client, server or platform: 1-64
// characters, letters, digits, '-', '_' and '.', starting with a letter or
// digit; no path separators and no "..".
func ValidateName(field, s string) error {
	if s == "" {
		return Invalid(field, s, "must not be empty")
	}
	if len(s) > 64 {
		return Invalid(field, s, "must be at most 64 characters")
	}
	if strings.Contains(s, "..") {
		return Invalid(field, s, `must not contain ".."`)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '-' || r == '_' || r == '.'
		}
		if !ok {
			if r == '/' || r == '\\' {
				return Invalid(field, s, "must not contain path separators")
			}
			return Invalid(field, s, "may contain only letters, digits, '-', '_' and '.', and must start with a letter or digit")
		}
	}
	return nil
}

// ValidateAbsPath checks a path on a server: absolute, clean (no "..", no
// "//", no trailing slash), printable, no shell-hostile control characters.
func ValidateAbsPath(field, p string) error {
	if p == "" {
		return Invalid(field, p, "must not be empty")
	}
	if !strings.HasPrefix(p, "/") {
		return Invalid(field, p, "must be an absolute path")
	}
	if len(p) > 4095 { // PATH_MAX, with its NUL
		return Invalid(field, p, "must be at most 4095 characters")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return Invalid(field, p, `must not contain ".."`)
		}
		if len(seg) > 255 { // NAME_MAX
			return Invalid(field, p, "each name in it must be at most 255 characters")
		}
	}
	if path.Clean(p) != p {
		return Invalid(field, p, "must be a clean path (no '//', '/./' or trailing '/')")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return Invalid(field, p, "must not contain control characters")
		}
	}
	if p == "/" {
		return Invalid(field, p, "must not be the root directory")
	}
	return nil
}

// ValidateServerPath checks a path on a server that web server
// configuration names unquoted (a platform root, an aegir home, a php-fpm
// socket): ValidateAbsPath's rules, and made only of letters, digits, '/'
// and . _ + @ ~ -. The front end checks input with it and the back end
// checks every context with it, so nothing is recorded that a task would
// refuse later.
func ValidateServerPath(field, p string) error {
	if err := ValidateAbsPath(field, p); err != nil {
		return err
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+@~-", r)) {
			return Invalid(field, p, "may contain only letters, digits, '/' and . _ + @ ~ - (web server configuration names it unquoted)")
		}
	}
	return nil
}

// ValidateHost checks a server's host: a host name or an IP address.
func ValidateHost(field, h string) error {
	if h == "" {
		return Invalid(field, h, "must not be empty")
	}
	if net.ParseIP(h) != nil || h == "localhost" {
		return nil
	}
	if _, err := NormalizeDomain(field, h); err != nil {
		// Single-label host names are fine for servers (e.g. "db1").
		if err := ValidateName(field, h); err != nil || strings.ContainsAny(h, "_") {
			return Invalid(field, h, "must be a host name or an IP address")
		}
	}
	return nil
}

// ValidatePort checks a TCP port number.
func ValidatePort(field string, n int) error {
	if n < 1 || n > 65535 {
		return Invalid(field, strconv.Itoa(n), "must be a port number from 1 to 65535")
	}
	return nil
}

// ValidateEmail checks an email address (empty is allowed).
func ValidateEmail(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 254 { // RFC 5321's limit on a path
		return Invalid(field, s, "must be at most 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return Invalid(field, s, "must be a plain address like admin@example.com")
	}
	return nil
}

// ValidateOneOf checks that s is one of the allowed values.
func ValidateOneOf(field, s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return Invalid(field, s, "must be one of: "+strings.Join(allowed, ", "))
}

// ValidateUser checks a system or SSH user name.
func ValidateUser(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 32 {
		return Invalid(field, s, "must be at most 32 characters")
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || (i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'))
		if !ok {
			return Invalid(field, s, "must be a user name: letters, digits, '_', '-', '.', not starting with a digit or '-'")
		}
	}
	return nil
}

// ValidateSystemName checks the name of a system user or group (kind) on
// a server, such as the web server's (web_user, web_group): what useradd
// and groupadd take by default.
func ValidateSystemName(field, s, kind string) error {
	ok := s != "" && len(s) <= 32
	for i, r := range s {
		ok = ok && (r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '.' || r == '-'))
	}
	if !ok {
		return Invalid(field, s, "must be a system "+kind+" name: lower-case letters, digits, '_', '.', '-', starting with a letter or '_', at most 32 characters")
	}
	return nil
}

// ValidateProfile checks an install profile's machine name.
func ValidateProfile(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 64 {
		return Invalid(field, s, "must be at most 64 characters")
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || (i > 0 && r >= '0' && r <= '9')) {
			return Invalid(field, s, "must be a machine name: lower-case letters, digits and '_', starting with a letter")
		}
	}
	return nil
}

// ValidateLanguage checks a language code such as en, pt-br or zh-hans.
func ValidateLanguage(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 12 {
		return Invalid(field, s, "must be a language code like en or pt-br")
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || (i > 0 && r == '-')) {
			return Invalid(field, s, "must be a language code like en or pt-br")
		}
	}
	return nil
}

// ValidateAccountName checks the name of a site's admin account (empty is
// allowed: the default): 1 to 60 letters, digits, spaces and _ . - @, not
// starting or ending with a space, no two spaces in a row. Both WordPress
// and Drupal take such a name as it is.
func ValidateAccountName(field, s string) error {
	if s == "" {
		return nil
	}
	const rule = "must be 1 to 60 letters, digits, spaces and _ . - @, with no space at either end or two in a row"
	if len(s) > 60 || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "  ") {
		return Invalid(field, s, rule)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" _.-@", r)) {
			return Invalid(field, s, rule)
		}
	}
	return nil
}

// ValidateTitle checks a site's title (empty is allowed: the default): at
// most 255 characters of valid UTF-8, not only spaces, and no control
// characters (no line breaks).
func ValidateTitle(field, s string) error {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 255 {
		return Invalid(field, s, "must be at most 255 characters of UTF-8 text")
	}
	if strings.TrimSpace(s) == "" {
		return Invalid(field, s, "must not be only spaces")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Invalid(field, s, "must be one line, without control characters")
		}
	}
	return nil
}

// ValidateAccountEmail checks the email address of a site's admin account
// (empty is allowed: the default): a plain address (ValidateEmail) of at
// most 100 characters, WordPress's limit, with a domain name of two labels
// or more, as WordPress and Drupal accept.
func ValidateAccountEmail(field, s string) error {
	if err := ValidateEmail(field, s); err != nil || s == "" {
		return err
	}
	const rule = "must be a plain address like admin@example.com, at most 100 characters"
	at := strings.LastIndexByte(s, '@')
	if len(s) > 100 || at <= 0 || strings.ContainsAny(s[:at], "\"\\ ") {
		return Invalid(field, s, rule)
	}
	if d, err := NormalizeDomain(field, s[at+1:]); err != nil || d != strings.ToLower(s[at+1:]) {
		return Invalid(field, s, rule)
	}
	return nil
}

// ValidateGitURL checks a git repository to clone a platform from: a URL
// (https://, http://, ssh://, git://, file://), an scp-like
// user@host:path, or an absolute path, printable, without spaces, not
// starting with '-' (it would read as an option) and not one of git's
// "transport::address" forms (ext:: runs commands).
func ValidateGitURL(field, u string) error {
	switch {
	case u == "":
		return Invalid(field, u, "must not be empty")
	case len(u) > 2048:
		return Invalid(field, u, "must be at most 2048 characters")
	case strings.HasPrefix(u, "-"):
		return Invalid(field, u, "must not start with '-'")
	case strings.Contains(u, "::"):
		return Invalid(field, u, "must be a URL, user@host:path or an absolute path (no TRANSPORT::ADDRESS)")
	}
	for _, r := range u {
		if r <= 0x20 || r == 0x7f {
			return Invalid(field, u, "must not contain spaces or control characters")
		}
	}
	if strings.HasPrefix(u, "/") {
		return ValidateAbsPath(field, u)
	}
	if i := strings.Index(u, "://"); i > 0 {
		if !slices.Contains([]string{"https", "http", "ssh", "git", "file"}, u[:i]) {
			return Invalid(field, u, "must use https, http, ssh, git or file (or be user@host:path or an absolute path)")
		}
		return nil
	}
	if at, colon := strings.Index(u, "@"), strings.Index(u, ":"); at > 0 && colon > at+1 && colon < len(u)-1 {
		return nil
	}
	return Invalid(field, u, "must be a URL (https://, ssh://, git://, file://), user@host:path or an absolute path")
}

// ValidateGitRef checks a tag or branch to check out: git's rules for a
// ref name, in the characters a tag or branch is commonly made of
// (letters, digits, . _ / + -), not starting with '-' or '/', no "..",
// no "//", not ending in '/', '.' or ".lock".
func ValidateGitRef(field, r string) error {
	switch {
	case r == "":
		return Invalid(field, r, "must not be empty")
	case len(r) > 255:
		return Invalid(field, r, "must be at most 255 characters")
	case strings.HasPrefix(r, "-") || strings.HasPrefix(r, "/"):
		return Invalid(field, r, "must not start with '-' or '/'")
	case strings.Contains(r, "..") || strings.Contains(r, "//") || strings.Contains(r, "/."):
		return Invalid(field, r, `must not contain "..", "//" or "/."`)
	case strings.HasSuffix(r, "/") || strings.HasSuffix(r, ".") || strings.HasSuffix(r, ".lock"):
		return Invalid(field, r, `must not end in '/', '.' or ".lock"`)
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._/+-", c)) {
			return Invalid(field, r, "may contain only letters, digits and . _ / + - (a tag or a branch)")
		}
	}
	return nil
}

// ValidateComposerPackage checks a package to create a project from:
// vendor/name in composer's lower-case form, with an optional :VERSION
// constraint made of letters, digits and . * ^ ~ @ _ + - (no spaces).
func ValidateComposerPackage(field, s string) error {
	name, version, hasVersion := strings.Cut(s, ":")
	vendor, pkg, ok := strings.Cut(name, "/")
	if !ok || !composerPart(vendor) || !composerPart(pkg) {
		return Invalid(field, s, "must be vendor/name[:VERSION], lower-case letters, digits and . _ - in each part")
	}
	if hasVersion {
		if version == "" || len(version) > 64 || strings.HasPrefix(version, "-") {
			return Invalid(field, s, "its :VERSION must be a version or constraint such as 6.4.2 or ^10.2")
		}
		for _, c := range version {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".*^~@_+-", c)) {
				return Invalid(field, s, "its :VERSION may contain only letters, digits and . * ^ ~ @ _ + -")
			}
		}
	}
	return nil
}

// composerPart is one part of vendor/name: lower-case letters and digits,
// with single . _ - between them.
func composerPart(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	prev := '.'
	for _, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (!strings.ContainsRune("._-", c) || !(prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9')) {
			return false
		}
		prev = c
	}
	return prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9'
}
