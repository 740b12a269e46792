package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// siteState is a state with this machine as web1 (nginx, MariaDB), a
// remote web2 with nothing but a web server, and the platform wp on web1.
func siteState(t *testing.T) *App {
	t.Helper()
	a := testApp(t)
	for _, s := range []*entities.Server{
		{Name: "web1", Host: "localhost", SSHPort: 22, Services: []entities.Service{
			{Kind: entities.KindHTTP, Type: entities.TypeNginx, Port: 80, HTTPSPort: 443},
			{Kind: entities.KindDB, Type: entities.TypeMariaDB, Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"}}},
		{Name: "web2", Host: "web2.test", SSHUser: "aegir", SSHPort: 22, Services: []entities.Service{
			{Kind: entities.KindHTTP, Type: entities.TypeNginx, Port: 80, HTTPSPort: 443}}},
	} {
		if _, err := a.st.AddServer(a.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*entities.Platform{{Name: "wp", Server: "web1", Root: "/var/www/wp"}, {Name: "wp2", Server: "web2", Root: "/var/www/wp"}} {
		if _, err := a.st.AddPlatformWithOptions(a.ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// site install hands run the domain, every alias (repeated and
// comma-separated) and the admin account as typed.
func TestSiteInstallParse(t *testing.T) {
	a := testApp(t)
	var got *SiteInstallOptions
	parse(t, newSiteInstallCmd(a, kept(&got)),
		"A.test", "--platform", "wp", "--alias", "www.a.test,b.test", "--alias", "c.test", "--redirect",
		"--title", "A site", "--admin-user", "boss", "--https", "on", "--queue")
	want := SiteInstallOptions{App: a, Domain: "A.test", Platform: "wp", HTTPS: "on", Aliases: []string{"www.a.test", "b.test", "c.test"},
		Redirect: true, Queue: true, Account: siteAccount{title: "A site", user: "boss"}}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("parsed:\n%+v\nwant\n%+v", *got, want)
	}
}

// site install refuses bad input, naming the field and its rule, before
// it records a site or a task; a good one is recorded, its install queued,
// with the configuration's defaults.
func TestRunSiteInstall(t *testing.T) {
	a := siteState(t)
	for _, c := range []struct {
		want string
		o    SiteInstallOptions
	}{
		{`invalid domain "a..test"`, SiteInstallOptions{Domain: "a..test", Platform: "wp"}},
		{`invalid --platform: is required`, SiteInstallOptions{Domain: "a.test"}},
		{`invalid --alias "A.test": must differ from the site's own domain`, SiteInstallOptions{Domain: "a.test", Platform: "wp", Aliases: []string{"A.test"}}},
		{`invalid --client "no one"`, SiteInstallOptions{Domain: "a.test", Platform: "wp", Client: "no one"}},
		{`invalid --https "maybe"`, SiteInstallOptions{Domain: "a.test", Platform: "wp", HTTPS: "maybe"}},
		{`invalid --language`, SiteInstallOptions{Domain: "a.test", Platform: "wp", Language: "english please"}},
		{`invalid --title`, SiteInstallOptions{Domain: "a.test", Platform: "wp", Account: siteAccount{title: "two\nlines"}}},
		// web2 is another machine: web1's database listens on its own loopback.
		{`invalid --db-server "web1"`, SiteInstallOptions{Domain: "a.test", Platform: "wp2", DBServer: "web1"}},
	} {
		o := c.o
		o.App = a
		refused(t, a, c.want, func() error { return runSiteInstall(&o) })
	}
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: "A.test", Platform: "wp", Aliases: []string{"www.a.test"}, Queue: true}); err != nil {
		t.Fatal(err)
	}
	v, err := a.st.GetSite(a.ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != entities.SiteQueued || v.DBServer != "web1" || v.Profile != "standard" || v.Language != "en" || v.HTTPS != entities.HTTPSOff ||
		len(v.Aliases) != 1 || v.Aliases[0] != "www.a.test" {
		t.Fatalf("recorded site: %+v", v)
	}
	if strings.TrimSpace(stdout(a)) == "" {
		t.Fatal("site install --queue printed no task id")
	}
}

// site edit tells --client given empty (to no client) from not given.
func TestSiteEditParse(t *testing.T) {
	a := testApp(t)
	var got *SiteEditOptions
	keep := kept(&got)
	parse(t, newSiteEditCmd(a, keep), "a.test", "--client", "", "--add-alias", "x.test,y.test", "--no-redirect")
	if got.Domain != "a.test" || !got.ClientSet || got.Client != "" || !got.NoRedirect || len(got.AddAliases) != 2 {
		t.Fatalf("parsed: %+v", got)
	}
	parse(t, newSiteEditCmd(a, keep), "a.test")
	if got.ClientSet {
		t.Fatalf("no --client parsed as given: %+v", got)
	}
}

// site edit refuses contradictory or bad flags before it looks at the
// site; a site whose install is still queued is busy (exit 4).
func TestRunSiteEdit(t *testing.T) {
	a := siteState(t)
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: "a.test", Platform: "wp", Queue: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		want string
		o    SiteEditOptions
	}{
		{`invalid --redirect: cannot be given with --no-redirect`, SiteEditOptions{Redirect: true, NoRedirect: true}},
		{`invalid --https "yes"`, SiteEditOptions{HTTPS: "yes"}},
		{`invalid --add-alias "x y.test"`, SiteEditOptions{AddAliases: []string{"x y.test"}}},
		{`invalid --remove-alias "-x.test"`, SiteEditOptions{RemoveAliases: []string{"-x.test"}}},
	} {
		o := c.o
		o.App, o.Domain = a, "a.test"
		refused(t, a, c.want, func() error { return runSiteEdit(&o) })
	}
	err := runSiteEdit(&SiteEditOptions{App: a, Domain: "a.test", HTTPS: "on"})
	if code, errs := exitOf(a, err); code != ExitBusy || !strings.Contains(errs, "not installed yet") {
		t.Fatalf("edit of a queued site: exit %d\n%s", code, errs)
	}
}

// site delete asks first: any answer but y changes nothing, not even a
// task recorded; its flags become the task's options.
func TestRunSiteDeleteConfirm(t *testing.T) {
	a := siteState(t)
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: "a.test", Platform: "wp", Queue: true}); err != nil {
		t.Fatal(err)
	}
	a.IO.In = strings.NewReader("n\n")
	before := state(t, a)
	err := runSiteDelete(&SiteDeleteOptions{App: a, Domain: "a.test", NoBackup: true})
	if code, errs := exitOf(a, err); code != ExitUsage || !strings.Contains(errs, "not confirmed: nothing was changed") {
		t.Fatalf("delete answered n: exit %d\n%s", code, errs)
	}
	if !strings.Contains(a.IO.Err.(*bytes.Buffer).String(), "WITHOUT a backup") {
		t.Fatalf("the question does not say there is no backup:\n%s", a.IO.Err)
	}
	if state(t, a) != before {
		t.Fatal("a delete not confirmed changed the state")
	}
	a.IO.In = strings.NewReader("y\n")
	if err := runSiteDelete(&SiteDeleteOptions{App: a, Domain: "a.test", NoBackup: true, Force: true, Queue: true}); err != nil {
		t.Fatal(err)
	}
	v, _ := a.st.GetSite(a.ctx, "a.test")
	tasks, err := a.st.ListTasks(a.ctx, store.TaskFilter{Type: entities.TaskSiteDelete})
	if err != nil || len(tasks) != 1 || tasks[0].TargetID != v.ID {
		t.Fatalf("delete task: %+v, %v", tasks, err)
	}
	if o := tasks[0].Options; o["no_backup"] != "1" || o["force"] != "1" {
		t.Fatalf("delete task's options: %v", o)
	}
}

// --php chooses among the versions the web server's verify recorded: an
// absent one (or any, before a verify recorded them) is exit 2 naming the
// versions it has, with nothing recorded; a present one is recorded, with
// the isolation asked for or the configuration's.
func TestRunSitePHPAndIsolation(t *testing.T) {
	a := siteState(t)
	for _, c := range []struct {
		want string
		o    SiteInstallOptions
	}{
		{`invalid --isolation "pool": must be one of: site, shared`, SiteInstallOptions{Domain: "a.test", Platform: "wp", Isolation: "pool"}},
		{`invalid --php "8": must be a PHP version MAJOR.MINOR`, SiteInstallOptions{Domain: "a.test", Platform: "wp", PHP: "8"}},
		{`invalid --php "8.2": cannot be checked: the server web1 has no php-fpm versions recorded`, SiteInstallOptions{Domain: "a.test", Platform: "wp", PHP: "8.2"}},
	} {
		o := c.o
		o.App = a
		refused(t, a, c.want, func() error { return runSiteInstall(&o) })
	}
	web1, err := a.st.GetServer(a.ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.st.SavePHPVersions(a.ctx, service(web1, entities.KindHTTP).ID, []string{"8.2"}); err != nil {
		t.Fatal(err)
	}
	o := SiteInstallOptions{App: a, Domain: "a.test", Platform: "wp", PHP: "7.4"}
	refused(t, a, `invalid --php "7.4": is not on server web1 (it has 8.2)`, func() error { return runSiteInstall(&o) })
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: "a.test", Platform: "wp", PHP: "8.2", Queue: true}); err != nil {
		t.Fatal(err)
	}
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: "b.test", Platform: "wp", Isolation: "site", Queue: true}); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string][3]string{"a.test": {"8.2", "shared", ""}, "b.test": {"", "site", "ae-b_test"}} {
		v, err := a.st.GetSite(a.ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if got := [3]string{v.PHP, v.Isolation, v.UnixUser}; got != want {
			t.Errorf("%s: php, isolation, unix_user %q, want %q", d, got, want)
		}
	}
	// site edit refuses the same, before it looks at the site's status.
	for _, c := range []struct {
		want string
		o    SiteEditOptions
	}{
		{`invalid --isolation "none"`, SiteEditOptions{Isolation: "none"}},
		{`invalid --php "8.2.1"`, SiteEditOptions{PHP: "8.2.1"}},
	} {
		o := c.o
		o.App, o.Domain = a, "a.test"
		refused(t, a, c.want, func() error { return runSiteEdit(&o) })
	}
}
