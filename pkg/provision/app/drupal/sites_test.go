package drupal

import (
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestFindDrupalSites(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	root := apptest.BuildDrupal(t, apptest.Drupal10Files, "web")
	p, err := app.Detect(ctx, ex, root)
	if err != nil {
		t.Fatal(err)
	}
	own := app.Owner{WebGroup: "www-data"}
	a := Settings{Domain: "a.test", Aliases: []string{"www.a.test"}, DB: app.DB{Type: "mariadb", Name: "a_db", User: "a_u", Password: `a'p\w`, Host: "127.0.0.1", Port: 3306}}
	b := Settings{Domain: "b.test", DB: app.DB{Type: "postgresql", Name: "b_db", User: "b_u", Password: "bp", Host: "db.internal", Port: 5432}}
	for _, s := range []Settings{a, b} {
		if _, err := WriteSettings(ctx, ex, p, s, own); err != nil {
			t.Fatal(err)
		}
	}
	// A site that was there before aegir, with an alias in sites.php, and
	// things that are not sites.
	apptest.WriteTree(t, p.Docroot, map[string]string{
		"sites/old.example.com/settings.php": "<?php\n$databases = array('default' => array('default' => array('driver' => 'mysql', 'database' => 'old' . '_db', 'username' => 'old', 'password' => 'o', 'host' => 'localhost')));\n",
		"sites/sites.php":                    "<?php\n$sites['legacy.example.com'] = 'old.example.com';\n$sites['8080.a.test'] = 'a.test';\n",
		"sites/default/settings.php":         "<?php\n$databases['default']['default'] = array('database' => 'default');\n",
		"sites/Not_A_Domain/settings.php":    "<?php\n",
	})
	var log apptest.Log
	sites, err := app.FindSites(ctx, ex, p, "www-data", log.Logf)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	got := mustJSON(sites) + " " + mustJSON([]app.DB{sites[0].DB, sites[1].DB, sites[2].DB})
	want := mustJSON([]app.FoundSite{
		{Domain: "a.test", Aliases: []string{"www.a.test"}, Aegir: true},
		{Domain: "b.test", Aegir: true},
		{Domain: "old.example.com", Aliases: []string{"legacy.example.com"}},
	}) + " " + mustJSON([]app.DB{
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
