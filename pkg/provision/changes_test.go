package provision

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Merge keeps what either side has, the later part winning, and works
// from nil.
func TestChangesMerge(t *testing.T) {
	var c *Changes
	c = c.Merge(&Changes{Site: &SiteChanges{DB: &DBRecord{Name: "a"}, Leftovers: []string{"x"}}})
	c = c.Merge(nil)
	c = c.Merge(&Changes{Committed: true, Site: &SiteChanges{Status: entities.SiteInstalled, Cert: &CertRecord{Issuer: "ca"}, Leftovers: []string{"y"}}})
	c = c.Merge(&Changes{Backup: &BackupRecord{Path: "/b"}})
	if !c.Committed || c.Site.DB.Name != "a" || c.Site.Status != entities.SiteInstalled || c.Site.Cert.Issuer != "ca" ||
		strings.Join(c.Site.Leftovers, ",") != "x,y" || c.Backup.Path != "/b" {
		t.Fatalf("merged: %+v site %+v", c, c.Site)
	}
	if (&SiteChanges{}).Moved() || !(&SiteChanges{Domain: "b.test"}).Moved() || (*SiteChanges)(nil).Moved() {
		t.Fatal("Moved")
	}
}

// The result's changes are nested as the job is, and carry no password.
func TestChangesJSON(t *testing.T) {
	r := &Result{Status: StatusSuccess, Changes: &Changes{Site: &SiteChanges{Status: "installed", DB: &DBRecord{Name: "a", User: "a", GrantHost: "localhost"}}},
		Secrets: map[string]string{"site_db_password": "s3cret"}}
	b, err := MarshalResult(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	site, _ := m["changes"].(map[string]any)["site"].(map[string]any)
	if site["status"] != "installed" || site["db"].(map[string]any)["name"] != "a" || strings.Contains(string(b), "s3cret") {
		t.Fatalf("result JSON: %s", b)
	}
}
