package entities

import (
	"strings"
	"testing"
)

func TestSiteUnixUser(t *testing.T) {
	long := strings.Repeat("a", 40) + ".example.com"
	for _, d := range []string{"a.b", "blog.example.com", "xn--bcher-kva.example", long, strings.Repeat("a-", 20) + "b.example.com"} {
		n := SiteUnixUser(d)
		if err := ValidateSystemName("user", n, "user"); err != nil {
			t.Errorf("SiteUnixUser(%q) = %q: %v", d, n, err)
		}
		if !strings.HasPrefix(n, SiteUserPrefix) {
			t.Errorf("SiteUnixUser(%q) = %q: no prefix", d, n)
		}
	}
	if SiteUnixUser("blog.example.com") != "ae-blog_example_com" {
		t.Errorf("got %q", SiteUnixUser("blog.example.com"))
	}
	// Long names that share their first characters still differ.
	a, b := SiteUnixUser(long), SiteUnixUser(strings.Repeat("a", 40)+".example.org")
	if a == b || len(a) > 32 {
		t.Errorf("long names %q and %q", a, b)
	}
	// Dots and dashes do not meet in one name.
	if SiteUnixUser("a-b.c") == SiteUnixUser("a.b-c") {
		t.Error("a-b.c and a.b-c share a user")
	}
}

func TestValidatePHPVersion(t *testing.T) {
	for _, ok := range []string{"", "8.2", "7.4", "8.10"} {
		if err := ValidatePHPVersion("--php", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"8", "8.2.1", "php8.2", "8.2;rm", "../8.2", " 8.2"} {
		if err := ValidatePHPVersion("--php", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
