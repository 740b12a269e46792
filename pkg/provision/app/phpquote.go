package app

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// PHPString renders s as a PHP single-quoted string literal whose value is
// exactly s. In such a literal only the backslash and the single quote are
// special, and both are escaped with a backslash; everything else,
// "$", newlines and "?>" included, stands for itself.
func PHPString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// PHPSingleQuoted matches a PHP single-quoted string literal.
const PHPSingleQuoted = `'((?:[^'\\]|\\.)*)'`

// UnquotePHP is the value of the body of a single-quoted PHP literal (the
// text between the quotes).
func UnquotePHP(body string) string {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' && i+1 < len(body) && (body[i+1] == '\\' || body[i+1] == '\'') {
			i++
			c = body[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

// CheckPHPValue refuses values that have no place in a settings file: NUL
// bytes and invalid UTF-8 would make the file unreadable to people and
// tools.
func CheckPHPValue(field, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte", field)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	return nil
}

// randomString returns n characters from alphabet, drawn with crypto/rand
// without modulo bias.
func randomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("app: crypto/rand failed: " + err.Error())
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out)
}

const (
	alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	// saltChars is alnum and punctuation that needs no escaping anywhere
	// a salt travels (PHP literal, shell, URL-unsafe is fine).
	saltChars = alnum + "!#%()*+,-.:;<=>?@[]^_{|}~"
)

// NewPassword returns a random password of 24 letters and digits (about
// 142 bits), for an application's admin account.
func NewPassword() string { return randomString(24, alnum) }

// NewSalt returns a random 64-character salt.
func NewSalt() string { return randomString(64, saltChars) }

// phpDefine matches define('NAME', 'value'); capturing both.
var phpDefine = regexp.MustCompile(`define\(\s*'([A-Z_]+)'\s*,\s*` + PHPSingleQuoted + `\s*\)`)

// PHPDefines returns the string constants a PHP file defines with
// define('NAME', '...').
func PHPDefines(b []byte) map[string]string {
	m := map[string]string{}
	for _, sub := range phpDefine.FindAllSubmatch(b, -1) {
		m[string(sub[1])] = UnquotePHP(string(sub[2]))
	}
	return m
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
