package app

import (
	"strings"
	"testing"

	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestFindDrupalSites(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	root := buildDrupal(t, drupal10Files, "web")
	p, err := Detect(ctx, ex, root)
	if err != nil {
		t.Fatal(err)
	}
	own := Owner{WebGroup: "www-data"}
	a := DrupalSettings{Domain: "a.test", Aliases: []string{"www.a.test"}, DB: DB{Type: "mariadb", Name: "a_db", User: "a_u", Password: `a'p\w`, Host: "127.0.0.1", Port: 3306}}
	b := DrupalSettings{Domain: "b.test", DB: DB{Type: "postgresql", Name: "b_db", User: "b_u", Password: "bp", Host: "db.internal", Port: 5432}}
	for _, s := range []DrupalSettings{a, b} {
		if _, err := WriteDrupalSettings(ctx, ex, p, s, own); err != nil {
			t.Fatal(err)
		}
	}
	// A site that was there before aegir, with an alias in sites.php, and
	// things that are not sites.
	writeTree(t, p.Docroot, map[string]string{
		"sites/old.example.com/settings.php": "<?php\n$databases = array('default' => array('default' => array('driver' => 'mysql', 'database' => 'old' . '_db', 'username' => 'old', 'password' => 'o', 'host' => 'localhost')));\n",
		"sites/sites.php":                    "<?php\n$sites['legacy.example.com'] = 'old.example.com';\n$sites['8080.a.test'] = 'a.test';\n",
		"sites/default/settings.php":         "<?php\n$databases['default']['default'] = array('database' => 'default');\n",
		"sites/Not_A_Domain/settings.php":    "<?php\n",
	})
	var log logRecorder
	sites, err := FindSites(ctx, ex, p, "www-data", log.logf)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	got := mustJSON(sites) + " " + mustJSON([]DB{sites[0].DB, sites[1].DB, sites[2].DB})
	want := mustJSON([]FoundSite{
		{Domain: "a.test", Aliases: []string{"www.a.test"}, Aegir: true},
		{Domain: "b.test", Aegir: true},
		{Domain: "old.example.com", Aliases: []string{"legacy.example.com"}},
	}) + " " + mustJSON([]DB{
		{Type: "mysql", Name: "a_db", User: "a_u", Password: `a'p\w`, Host: "127.0.0.1", Port: 3306},
		{Type: "postgresql", Name: "b_db", User: "b_u", Password: "bp", Host: "db.internal", Port: 5432},
		{Type: "mysql", Name: "old_db", User: "old", Password: "o", Host: "localhost"},
	})
	if got != want {
		t.Errorf("FindSites:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(log.String(), "warning: skipped "+p.Docroot+"/sites/Not_A_Domain") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestFindWordPressSites(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	p, err := Verify(ctx, ex, wpPlatform(t), VerifyOptions{Keep: KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	db := DB{Type: "mariadb", Name: "f_db", User: "f_u", Password: `f'p\w`, Host: "127.0.0.1", Port: 3306}
	for _, s := range []WordPressSite{
		{Domain: "find-a.test", Aliases: []string{"www.find-a.test", "alt.find-a.test"}, DB: db},
		{Domain: "find-b.test", DB: DB{Name: "b", User: "b", Password: "b", Host: "localhost"}},
	} {
		t.Cleanup(func() { RemoveSite(ctx, ex, p, s.Domain) })
		if _, err := WriteWordPressSite(ctx, ex, p, s, Owner{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []aexec.Executor{ex, remoteish{ex}} {
		sites, err := FindSites(ctx, e, p, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		byDomain := map[string]FoundSite{}
		for _, s := range sites {
			byDomain[s.Domain] = s
		}
		a, b := byDomain["find-a.test"], byDomain["find-b.test"]
		if strings.Join(a.Aliases, ",") != "alt.find-a.test,www.find-a.test" || a.DB != (DB{Type: "mysql", Name: "f_db", User: "f_u", Password: `f'p\w`, Host: "127.0.0.1", Port: 3306}) || !a.Aegir {
			t.Errorf("find-a.test: %+v", a)
		}
		if b.DB.Host != "localhost" || b.DB.Port != 0 || len(b.Aliases) != 0 {
			t.Errorf("find-b.test: %+v", b)
		}
		for _, s := range sites {
			if strings.Contains(s.Domain, "www.") || s.Domain == "alt.find-a.test" {
				t.Errorf("an alias was found as a site: %+v", s)
			}
		}
	}
}
