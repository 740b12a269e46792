package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Backup records: added, listed newest first (by site, deleted sites
// included), the newest found, one site's backup not found through
// another site, deleted.
func TestBackupRecords(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	a := &entities.Site{Domain: "a.test", Platform: "p1", DBServer: "web1", HTTPS: "off"}
	b := &entities.Site{Domain: "b.test", Platform: "p1", DBServer: "web1", HTTPS: "off"}
	for _, v := range []*entities.Site{a, b} {
		if _, err := s.AddSite(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b1, err := s.AddBackup(ctx, a.ID, "/h/backups/a.test-1.tar.gz", 100, "aa", t0)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.AddBackup(ctx, a.ID, "/h/backups/a.test-2.tar.gz", 200, "bb", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddBackup(ctx, b.ID, "/h/backups/b.test-1.tar.gz", 300, "cc", t0); err != nil {
		t.Fatal(err)
	}
	if b1.Site != "a.test" || b1.Size != 100 || b1.SHA256 != "aa" || !b1.Created.Equal(t0) {
		t.Fatalf("backup record: %+v", b1)
	}
	if _, err := s.AddBackup(ctx, a.ID, b1.Path, 1, "x", t0); !errors.Is(err, ErrConflict) {
		t.Fatalf("the same path twice: %v", err)
	}
	list, err := s.ListBackups(ctx, "a.test")
	if err != nil || len(list) != 2 || list[0].ID != b2.ID {
		t.Fatalf("ListBackups(a.test): %v %+v", err, list)
	}
	if all, _ := s.ListBackups(ctx, ""); len(all) != 3 {
		t.Fatalf("ListBackups(): %d", len(all))
	}
	if l, err := s.LatestBackup(ctx, a.ID); err != nil || l.ID != b2.ID {
		t.Fatalf("LatestBackup: %v %+v", err, l)
	}
	if _, err := s.LatestBackup(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestBackup of no site: %v", err)
	}
	if _, err := s.GetSiteBackup(ctx, b.ID, b1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a.test's backup found through b.test: %v", err)
	}
	// A deleted site keeps its backups, listed by domain.
	if err := s.SetSiteStatus(ctx, a.ID, entities.SiteDeleted); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListBackups(ctx, "a.test"); len(list) != 2 {
		t.Fatalf("backups of a deleted site: %d", len(list))
	}
	if err := s.DeleteBackup(ctx, b1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBackup(ctx, b1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted backup: %v", err)
	}
}

// A clone is a new queued site with the source's client and settings but
// no aliases, and a site.clone task that names the source; a taken domain
// or a platform that does not exist is refused with nothing written.
func TestCloneSite(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	src := &entities.Site{Domain: "src.test", Aliases: []string{"www.src.test"}, Platform: "p1", DBServer: "web1", Client: "acme", Profile: "minimal", Language: "de", HTTPS: "on"}
	if _, err := s.AddSite(ctx, src); err != nil {
		t.Fatal(err)
	}
	v := &entities.Site{Domain: "copy.test", Platform: "p1", DBServer: "web1", HTTPS: "off"}
	task, err := s.CloneSite(ctx, v, src)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != entities.TaskSiteClone || task.TargetID != v.ID || task.Options["source"] != "src.test" {
		t.Fatalf("clone task: %+v", task)
	}
	got, err := s.GetSite(ctx, "copy.test")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != entities.SiteQueued || got.Client != "acme" || got.Profile != "minimal" || got.Language != "de" || got.HTTPS != "on" || len(got.Aliases) != 0 || got.DBName != "" {
		t.Fatalf("clone record: %+v", got)
	}
	if _, err := s.CloneSite(ctx, &entities.Site{Domain: "www.src.test", Platform: "p1", DBServer: "web1"}, src); !errors.Is(err, ErrConflict) {
		t.Fatalf("clone onto a taken name: %v", err)
	}
	if _, err := s.CloneSite(ctx, &entities.Site{Domain: "other.test", Platform: "nope", DBServer: "web1"}, src); !errors.Is(err, ErrNotFound) {
		t.Fatalf("clone onto a missing platform: %v", err)
	}
	if _, err := s.GetSite(ctx, "other.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused clone left a site: %v", err)
	}
}

// A migrated site is recorded on its new platform, database server and
// domain; its aliases stay and its old domain is free again.
func TestMoveSite(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	if _, err := s.AddServer(ctx, &entities.Server{Name: "db2", Host: "localhost", Services: []entities.Service{{Kind: "db", Type: "mariadb", Port: 3306}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPlatform(ctx, &entities.Platform{Name: "p2", Server: "web1", Root: "/var/www/p2"}); err != nil {
		t.Fatal(err)
	}
	v := &entities.Site{Domain: "m.test", Aliases: []string{"www.m.test"}, Platform: "p1", DBServer: "web1", DBName: "mtest", DBUser: "mtest", DBPassword: "pw", HTTPS: "off"}
	if _, err := s.AddSite(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveSite(ctx, v.ID, "p2", "db2", "m2.test", "m2test", "m2test"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSite(ctx, "m2.test")
	if err != nil {
		t.Fatal(err)
	}
	if got.Platform != "p2" || got.DBServer != "db2" || got.DBName != "m2test" || got.DBUser != "m2test" || got.DBPassword != "pw" || len(got.Aliases) != 1 || got.Aliases[0] != "www.m.test" {
		t.Fatalf("moved site: %+v", got)
	}
	if owner, _ := s.NameOwner(ctx, "m.test"); owner != "" {
		t.Fatalf("old domain still owned by %q", owner)
	}
	if owner, _ := s.NameOwner(ctx, "www.m.test"); owner != "m2.test" {
		t.Fatalf("alias owner %q", owner)
	}
	if err := s.MoveSite(ctx, v.ID, "p2", "web1", "m2.test", "m2test", "m2test"); err != nil {
		t.Fatal(err)
	}
	// A server without a database service is refused.
	if _, err := s.AddServer(ctx, &entities.Server{Name: "webonly", Host: "localhost", Services: []entities.Service{{Kind: "http", Type: "nginx", Port: 80}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveSite(ctx, v.ID, "p2", "webonly", "m2.test", "m2test", "m2test"); !errors.Is(err, ErrConflict) {
		t.Fatalf("move onto a server without a database: %v", err)
	}
}

// A backup's master is kept, and every way of reading a backup gives it
// back: by id, of its site, the newest, the list, a deleted site's.
func TestBackupMaster(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	a := &entities.Site{Domain: "a.test", Platform: "p1", DBServer: "web1", HTTPS: "off"}
	if _, err := s.AddSite(ctx, a); err != nil {
		t.Fatal(err)
	}
	b, err := s.AddBackupOn(ctx, "m1", a.ID, "/h/backups/a.test-1.tar.gz", 100, "aa", time.Now())
	if err != nil || b.Master != "m1" {
		t.Fatalf("added %+v, %v", b, err)
	}
	got := map[string]string{}
	if v, err := s.GetBackup(ctx, b.ID); err == nil {
		got["GetBackup"] = v.Master
	}
	if v, err := s.GetSiteBackup(ctx, a.ID, b.ID); err == nil {
		got["GetSiteBackup"] = v.Master
	}
	if v, err := s.LatestBackup(ctx, a.ID); err == nil {
		got["LatestBackup"] = v.Master
	}
	if l, err := s.ListBackups(ctx, "a.test"); err == nil && len(l) == 1 {
		got["ListBackups"] = l[0].Master
	}
	if err := s.SetSiteStatus(ctx, a.ID, entities.SiteDeleted); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.DeletedSiteBackup(ctx, "a.test", 0); err == nil {
		got["DeletedSiteBackup"] = v.Master
	} else {
		t.Fatal(err)
	}
	for _, k := range []string{"GetBackup", "GetSiteBackup", "LatestBackup", "ListBackups", "DeletedSiteBackup"} {
		if got[k] != "m1" {
			t.Errorf("%s gives master %q, want m1", k, got[k])
		}
	}
	if old, err := s.AddBackup(ctx, a.ID, "/h/backups/a.test-0.tar.gz", 1, "x", time.Now()); err != nil || old.Master != "" {
		t.Fatalf("a backup added without a master: %+v, %v", old, err)
	}
}
