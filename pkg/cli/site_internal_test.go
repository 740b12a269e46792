package cli

import "testing"

// An alias refused names the flag it came from: site edit's --add-alias,
// not install's --alias.
func TestNormalizeAliasesNamesItsFlag(t *testing.T) {
	_, err := normalizeAliases("--add-alias", "a.test", []string{"x.test", "A.TEST."})
	if err == nil || err.Error() != `invalid --add-alias "A.TEST.": must differ from the site's own domain` {
		t.Fatalf("got %v", err)
	}
	_, err = normalizeAliases("--add-alias", "a.test", []string{"x y.test"})
	if err == nil || err.Error() != `invalid --add-alias "x y.test": may contain only letters, digits, hyphens and dots (RFC 1123)` {
		t.Fatalf("got %v", err)
	}
	got, err := normalizeAliases("--alias", "a.test", []string{"X.test", "x.test.", "y.test"})
	if err != nil || len(got) != 2 || got[0] != "x.test" || got[1] != "y.test" {
		t.Fatalf("got %v, %v", got, err)
	}
}
