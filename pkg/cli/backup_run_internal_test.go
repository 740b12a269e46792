package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// installedSite records domain on the platform wp of siteState, with
// aliases, and marks it installed as its install task would.
func installedSite(t *testing.T, a *App, domain string, aliases ...string) *entities.Site {
	t.Helper()
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: domain, Platform: "wp", Aliases: aliases, Queue: true}); err != nil {
		t.Fatal(err)
	}
	v, err := a.st.GetSite(a.ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.st.SetSiteStatus(a.ctx, v.ID, entities.SiteInstalled); err != nil {
		t.Fatal(err)
	}
	return v
}

// migrate, clone and restore refuse what they cannot do, naming the
// flag or argument, before they record a task.
func TestRunSiteMoveRefuses(t *testing.T) {
	a := siteState(t)
	installedSite(t, a, "a.test", "www.a.test")
	installedSite(t, a, "b.test")
	for _, c := range []struct {
		want string
		run  func() error
	}{
		{`invalid --platform: is required`, func() error { return runSiteMigrate(&SiteMoveOptions{App: a, Domain: "a.test"}) }},
		{`invalid --platform "wp": is where a.test is already`, func() error {
			return runSiteMigrate(&SiteMoveOptions{App: a, Domain: "a.test", To: Placement{Platform: "wp"}})
		}},
		{`invalid --domain "www.a.test": is an alias of the site`, func() error {
			return runSiteMigrate(&SiteMoveOptions{App: a, Domain: "a.test", To: Placement{Platform: "wp"}, NewDomain: "WWW.a.test"})
		}},
		{`invalid --domain "b.test": is already a name of site b.test`, func() error {
			return runSiteMigrate(&SiteMoveOptions{App: a, Domain: "a.test", To: Placement{Platform: "wp"}, NewDomain: "b.test"})
		}},
		// wp2 is on web2, which cannot reach web1's database on its loopback.
		{`invalid --db-server "web1"`, func() error {
			return runSiteMigrate(&SiteMoveOptions{App: a, Domain: "a.test", To: Placement{Platform: "wp2"}})
		}},
		{`invalid --db-server "web2": has no database service`, func() error {
			return runSiteClone(&SiteMoveOptions{App: a, Domain: "a.test", NewDomain: "c.test", To: Placement{DBServer: "web2"}})
		}},
		{`invalid NEWDOMAIN "www.a.test": is already a name of site a.test`, func() error {
			return runSiteClone(&SiteMoveOptions{App: a, Domain: "b.test", NewDomain: "www.a.test"})
		}},
		{`invalid backup ID "0"`, func() error { return runSiteRestore(&SiteRestoreOptions{App: a, Domain: "a.test", Backup: "0"}) }},
		{`invalid backup ID "x"`, func() error { return runBackupDelete(&BackupDeleteOptions{App: a, ID: "x"}) }},
	} {
		refused(t, a, c.want, c.run)
	}
	// A site with no backup has nothing to restore: exit 3, with the
	// command that takes one.
	err := runSiteRestore(&SiteRestoreOptions{App: a, Domain: "a.test"})
	if code, errs := exitOf(a, err); code != ExitNotFound || !strings.Contains(errs, "hint: take one first: aegir site backup a.test") {
		t.Fatalf("restore without a backup: exit %d\n%s", code, errs)
	}
}

// site clone takes two arguments; migrate's --domain is its new domain.
func TestSiteMoveParse(t *testing.T) {
	a := testApp(t)
	var clone *SiteMoveOptions
	parse(t, newSiteCloneCmd(a, kept(&clone)), "a.test", "b.test", "--db-server", "db2")
	if clone.Domain != "a.test" || clone.NewDomain != "b.test" || clone.To != (Placement{DBServer: "db2"}) {
		t.Fatalf("clone parsed: %+v", clone)
	}
	var mig *SiteMoveOptions
	parse(t, newSiteMigrateCmd(a, kept(&mig)), "a.test", "--platform", "wp2", "--domain", "n.test", "--queue")
	if mig.Domain != "a.test" || mig.NewDomain != "n.test" || mig.To != (Placement{Platform: "wp2"}) || !mig.Queue {
		t.Fatalf("migrate parsed: %+v", mig)
	}
}

// site cert checks a certificate brought before anything is recorded:
// both files or neither, and a pair that is not one is refused.
func TestRunSiteCertRefuses(t *testing.T) {
	a := siteState(t)
	installedSite(t, a, "a.test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []string{certFile, keyFile} {
		if err := os.WriteFile(f, []byte("not PEM\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, a, `invalid --key: and --cert go together`, func() error {
		return runSiteCert(&SiteCertOptions{App: a, Domain: "a.test", CertFile: certFile})
	})
	refused(t, a, `certificate for a.test refused, nothing changed`, func() error {
		return runSiteCert(&SiteCertOptions{App: a, Domain: "a.test", CertFile: certFile, KeyFile: keyFile})
	})
	refused(t, a, `invalid --cert "`+filepath.Join(dir, "none.pem")+`": cannot be read`, func() error {
		return runSiteCert(&SiteCertOptions{App: a, Domain: "a.test", CertFile: filepath.Join(dir, "none.pem"), KeyFile: keyFile})
	})
}

// task list's --limit defaults to 100; a negative one, a status or a type
// that does not exist is refused.
func TestTaskList(t *testing.T) {
	a := siteState(t)
	var got *TaskListOptions
	parse(t, newTaskListCmd(a, kept(&got)), "--site", "A.test", "--status", "error")
	if got.Filter != (store.TaskFilter{Status: "error", Limit: 100}) || got.Site != "A.test" {
		t.Fatalf("parsed: %+v", got)
	}
	for _, c := range []struct {
		want string
		f    store.TaskFilter
	}{
		{`invalid --limit "-1"`, store.TaskFilter{Limit: -1}},
		{`invalid --status "failed"`, store.TaskFilter{Status: "failed"}},
		{`invalid --type "site.nap"`, store.TaskFilter{Type: "site.nap"}},
	} {
		refused(t, a, c.want, func() error { return runTaskList(&TaskListOptions{App: a, Filter: c.f}) })
	}
	// Every task of siteState is on a server or a platform, none on a site.
	installedSite(t, a, "a.test", "www.a.test")
	if err := runTaskList(&TaskListOptions{App: a, Site: "WWW.a.test", Filter: store.TaskFilter{Limit: 100}}); err != nil {
		t.Fatal(err)
	}
	if out := stdout(a); !strings.Contains(out, "site.install") || strings.Contains(out, "server.verify") {
		t.Fatalf("task list --site by an alias:\n%s", out)
	}
}

// package list takes a platform or a site, not both.
func TestRunPackageListRefuses(t *testing.T) {
	a := siteState(t)
	refused(t, a, `invalid --site "a.test": cannot be given with --platform`, func() error {
		return runPackageList(&PackageListOptions{App: a, Platform: "wp", Site: "a.test"})
	})
	refused(t, a, `invalid --type "library"`, func() error { return runPackageList(&PackageListOptions{App: a, Type: "library"}) })
}
