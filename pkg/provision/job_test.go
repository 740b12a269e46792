package provision

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A job goes through JSON and back whole, nested as it is.
func TestJobRoundTrip(t *testing.T) {
	j := &Job{Version: JobVersion, Task: "site.migrate", TaskID: 9,
		Site: SiteSpec{Domain: "a.test", Aliases: []string{"www.a.test"}, Client: ClientSpec{Name: "c1", Email: "c1@a.test"},
			DB: SiteDBSpec{Name: "a", User: "a", Password: "pw", GrantHost: "localhost"}, HTTPS: HTTPSSpec{Mode: "on"},
			Platform: PlatformSpec{Name: "p1", Root: "/srv/p1", Type: "wordpress"},
			Web:      WebSpec{ServerRef: ServerRef{Name: "web1", Host: "localhost"}, Home: "/h", Type: "nginx", Port: 80},
			DBServer: DBSpec{Machine: ServerRef{Name: "db1", Host: "localhost"}, Type: "mariadb", Host: "127.0.0.1", Port: 3306}},
		Target:  &SiteSpec{Domain: "b.test", Platform: PlatformSpec{Name: "p2", Root: "/srv/p2"}, Web: WebSpec{ServerRef: ServerRef{Name: "web2", Host: "web2.test", SSHUser: "aegir"}}},
		System:  SystemSpec{WebUser: "www-data"},
		Backup:  BackupSpec{Dir: "/b"},
		Options: map[string]string{"no_backup": "1"}}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"site":{"domain":"a.test"`, `"web":{"name":"web1","host":"localhost","home":"/h"`, `"db_server":{"machine":{"name":"db1"`, `"target":{"domain":"b.test"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON has no %s: %s", key, b)
		}
	}
	back, err := DecodeJob(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j, back) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, j)
	}
	at := back.AtTarget()
	if at.Site.Domain != "b.test" || at.Web().Name != "web2" || at.Target != nil || back.Site.Domain != "a.test" {
		t.Errorf("AtTarget: %+v", at)
	}
	if !back.HasTarget() || (&Job{}).HasTarget() {
		t.Error("HasTarget")
	}
}

// The flat form of version 1, a job without a version and one of another
// version are refused with what to do; so are typos and a key twice.
func TestDecodeJobRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"task":"site.verify","site_domain":"a.test"}`, `"site_domain" is of the flat form of version 1`},
		{`{"task":"site.verify","target_platform_root":"/p"}`, "site.domain, site.web.host"},
		{`{"task":"site.verify"}`, `"version" is missing`},
		{`{"version":1,"task":"site.verify"}`, `"version" is 1: this aegir reads version 2`},
		{`{"version":2,"task":"site.verify","site":{"domian":"a.test"}}`, "domian"},
		{`{"version":2,"task":"site.verify","task":"site.delete"}`, `"task" is given twice`},
		{``, "empty"},
	} {
		_, err := DecodeJob(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
	j, err := DecodeJob(strings.NewReader(`{"version":2,"task":"site.verify","site":{"domain":"a.test","aliases":["b.test"]}}`))
	if err != nil || j.Site.Domain != "a.test" || j.Site.Aliases[0] != "b.test" {
		t.Fatalf("%v %+v", err, j)
	}
}

// Check refuses a path that climbs out, in the site and in the target.
func TestJobCheck(t *testing.T) {
	ok := &Job{Site: SiteSpec{Platform: PlatformSpec{Root: "/srv/p"}}}
	if err := ok.Check(); err != nil {
		t.Errorf("no target: %v", err)
	}
	bad := &Job{Target: &SiteSpec{Platform: PlatformSpec{Root: "/srv/../etc"}}}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "target.platform.root") {
		t.Errorf("target root with ..: %v", err)
	}
	bad = &Job{Site: SiteSpec{Web: WebSpec{ServerRef: ServerRef{Name: "../x"}}}}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "site.web.name") {
		t.Errorf("web server name ../x: %v", err)
	}
}
