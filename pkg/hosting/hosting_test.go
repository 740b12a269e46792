package hosting_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/store"
)

// A migrate to a platform of another web server builds the target with
// that server's web service, down to the address its vhosts listen on
// (issue 15: the vhost on the new server listened on the old one's).
func TestMigrateContextTakesTheTargetsWebService(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aegir.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	web := func(name, ip string, port int) {
		t.Helper()
		s := &entities.Server{Name: name, Host: "localhost", Services: []entities.Service{
			{Kind: entities.KindHTTP, Type: "nginx", Port: port, HTTPSPort: port + 1, TestCmd: name + " -t", RestartCmd: name + " -s reload", PHPFPM: "/run/" + name + ".sock", ListenIP: ip},
			{Kind: entities.KindDB, Type: "mariadb", Port: 3306, DBHost: "127.0.0.1"}}}
		if _, err := st.AddServer(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	web("web1", "127.0.0.1", 8080)
	web("web2", "127.0.0.2", 9080)
	web("web3", "", 80)
	for i, srv := range []string{"web1", "web2", "web3"} {
		if _, err := st.AddPlatform(ctx, &entities.Platform{Name: "p" + srv[3:], Server: srv, Root: "/srv/p" + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AddSite(ctx, &entities.Site{Domain: "moves.test", Platform: "p1", DBServer: "web1", HTTPS: "off"}); err != nil {
		t.Fatal(err)
	}
	site, err := st.GetSite(ctx, "moves.test")
	if err != nil {
		t.Fatal(err)
	}
	r := &hosting.Runner{Store: st, Home: t.TempDir()}
	for _, tc := range []struct{ platform, server, ip, restart string }{
		{"p2", "web2", "127.0.0.2", "web2 -s reload"},
		{"p3", "web3", "", "web3 -s reload"},
	} {
		task, err := st.QueueTask(ctx, entities.TaskSiteMigrate, entities.TargetSite, site.ID, site.Domain, map[string]string{"platform": tc.platform})
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.BuildContext(ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		if c.Site.Web.ListenIP != "127.0.0.1" || c.Site.Web.Port != 8080 {
			t.Errorf("migrate to %s: the source's web service changed: listen %q port %d", tc.platform, c.Site.Web.ListenIP, c.Site.Web.Port)
		}
		tg := c.Target.Web
		if tg.Name != tc.server || tg.ListenIP != tc.ip || tg.RestartCmd != tc.restart {
			t.Errorf("migrate to %s: target web server %s, listen %q, restart %q; want %s, %q, %q",
				tc.platform, tg.Name, tg.ListenIP, tg.RestartCmd, tc.server, tc.ip, tc.restart)
		}
	}
}
