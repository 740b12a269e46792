package provision

import (
	"strings"
	"testing"
)

func TestDecodeContextRefusesUnknownKeys(t *testing.T) {
	if _, err := DecodeContext(strings.NewReader(`{"task":"site.verify","site_domian":"a.test"}`)); err == nil || !strings.Contains(err.Error(), "site_domian") {
		t.Fatalf("typo accepted: %v", err)
	}
	c, err := DecodeContext(strings.NewReader(`{"task":"site.verify","site_domain":"a.test","site_aliases":["b.test"]}`))
	if err != nil || c.SiteDomain != "a.test" || c.SiteAliases[0] != "b.test" {
		t.Fatalf("%v %+v", err, c)
	}
}
