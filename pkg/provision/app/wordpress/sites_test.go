package wordpress

import (
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestFindWordPressSites(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	p, err := app.Verify(ctx, ex, apptest.WPPlatform(t), app.VerifyOptions{Keep: app.KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	db := app.DB{Type: "mariadb", Name: "f_db", User: "f_u", Password: `f'p\w`, Host: "127.0.0.1", Port: 3306}
	for _, s := range []SiteConfig{
		{Domain: "find-a.test", Aliases: []string{"www.find-a.test", "alt.find-a.test"}, DB: db},
		{Domain: "find-b.test", DB: app.DB{Name: "b", User: "b", Password: "b", Host: "localhost"}},
	} {
		t.Cleanup(func() { app.RemoveSite(ctx, ex, p, s.Domain) })
		if _, err := WriteSiteConfig(ctx, ex, p, s, app.Owner{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []aexec.Executor{ex, apptest.Remoteish{Executor: ex}} {
		sites, err := app.FindSites(ctx, e, p, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		byDomain := map[string]app.FoundSite{}
		for _, s := range sites {
			byDomain[s.Domain] = s
		}
		a, b := byDomain["find-a.test"], byDomain["find-b.test"]
		if strings.Join(a.Aliases, ",") != "alt.find-a.test,www.find-a.test" || a.DB != (app.DB{Type: "mysql", Name: "f_db", User: "f_u", Password: `f'p\w`, Host: "127.0.0.1", Port: 3306}) || !a.Aegir {
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
