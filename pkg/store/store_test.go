package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), testenv.State(t), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture adds a local server with web and db services, a platform and a client.
func fixture(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.AddServer(ctx, &entities.Server{Name: "web1", Host: "localhost", SSHPort: 22, Services: []entities.Service{
		{Kind: "http", Type: "nginx", Port: 80, HTTPSPort: 443}, {Kind: "db", Type: "mariadb", Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPlatform(ctx, &entities.Platform{Name: "p1", Server: "web1", Root: "/var/www/p1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddClient(ctx, &entities.Client{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesPrivateFileAndMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "aegir.db")
	if _, err := Open(context.Background(), path, false); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("open without create: got %v, want ErrNotInitialized", err)
	}
	s, err := Open(context.Background(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	var v int
	if err := s.db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion())
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q (%v), want wal", mode, err)
	}
	var fk int
	if err := s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys %d (%v), want 1", fk, err)
	}
}

// Migration numbers go to branches developed side by side: one that
// lands after a higher one was applied is applied at the next open.
func TestMigrationLandedLate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aegir.db")
	s, err := Open(context.Background(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	// As a state file made before migration 006 reached this binary.
	for _, q := range []string{`ALTER TABLE sites DROP COLUMN db_grant_host`, `DELETE FROM schema_migrations WHERE version = 6`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(context.Background(), path, false)
	if err != nil {
		t.Fatalf("open with a migration landed late: %v", err)
	}
	defer s.Close()
	if _, err := s.db.Exec(`SELECT db_grant_host FROM sites`); err != nil {
		t.Fatalf("the late migration was not applied: %v", err)
	}
}

func TestUpgradeInPlace(t *testing.T) {
	// A state file made by the first aegir: only migration 001, with data.
	path := filepath.Join(t.TempDir(), "aegir.db")
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(sqliteDialect)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`,
		ms[0].sql,
		`INSERT INTO schema_migrations VALUES (1, 'init', 0)`,
		`INSERT INTO clients (name, email, created) VALUES ('old', 'old@example.test', 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	s, err := Open(context.Background(), path, false)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	var v int
	_ = s.db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	var n int
	_ = s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
	if v != SchemaVersion() || n != len(ms) || len(ms) < 2 {
		t.Fatalf("version %d (%d applied) after upgrade, want %d (%d, at least 2)", v, n, SchemaVersion(), len(ms))
	}
	if c, err := s.GetClient(context.Background(), "old"); err != nil || c.Email != "old@example.test" {
		t.Fatalf("data lost on upgrade: %v %+v", err, c)
	}
	if _, err := s.db.Exec(`SELECT COUNT(*) FROM certificates`); err != nil {
		t.Fatalf("later migration not applied: %v", err)
	}
	// A state file newer than the binary is refused with a clear message.
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), path, false); err == nil || !strings.Contains(err.Error(), "newer than this aegir knows") {
		t.Fatalf("newer schema: got %v", err)
	}
}

func TestAliasesUniqueAcrossSites(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	a := &entities.Site{Domain: "a.test", Aliases: []string{"www.a.test"}, Platform: "p1", DBServer: "web1", HTTPS: "off"}
	if _, err := s.AddSite(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		site *entities.Site
	}{
		{"alias equals other's alias", &entities.Site{Domain: "b.test", Aliases: []string{"www.a.test"}}},
		{"alias equals other's domain", &entities.Site{Domain: "b.test", Aliases: []string{"a.test"}}},
		{"domain equals other's alias", &entities.Site{Domain: "www.a.test"}},
		{"domain taken", &entities.Site{Domain: "a.test"}},
	} {
		tc.site.Platform, tc.site.DBServer, tc.site.HTTPS = "p1", "web1", "off"
		_, err := s.AddSite(ctx, tc.site)
		if !errors.Is(err, ErrConflict) {
			t.Errorf("%s: got %v, want a conflict", tc.name, err)
		}
	}
	// Nothing half-written by the refused adds.
	var n int
	_ = s.db.QueryRow(`SELECT COUNT(*) FROM sites`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d sites after refused adds, want 1", n)
	}
	_ = s.db.QueryRow(`SELECT COUNT(*) FROM tasks WHERE type = 'site.install'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d install tasks after refused adds, want 1", n)
	}
	// Deleting the site frees its names.
	if err := s.SetSiteStatus(ctx, a.ID, entities.SiteDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSite(ctx, &entities.Site{Domain: "b.test", Aliases: []string{"www.a.test", "a.test"}, Platform: "p1", DBServer: "web1", HTTPS: "off"}); err != nil {
		t.Fatalf("names of a deleted site should be free: %v", err)
	}
}

func TestRelationsEnforced(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	site := &entities.Site{Domain: "a.test", Platform: "p1", DBServer: "web1", Client: "acme", HTTPS: "off"}
	if _, err := s.AddSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	p, _ := s.GetPlatform(ctx, "p1")
	if err := s.SetPlatformStatus(ctx, p.ID, entities.StatusDeleted); !errors.Is(err, ErrConflict) {
		t.Errorf("platform with sites deleted: %v", err)
	}
	if err := s.DeleteServer(ctx, "web1"); !errors.Is(err, ErrConflict) {
		t.Errorf("server in use deleted: %v", err)
	}
	if err := s.DeleteClient(ctx, "acme"); !errors.Is(err, ErrConflict) {
		t.Errorf("client with sites deleted: %v", err)
	}
	// The rules hold in SQL too, whoever writes.
	if _, err := s.db.Exec(`UPDATE platforms SET status = 'deleted' WHERE name = 'p1'`); err == nil {
		t.Error("trigger did not stop deleting a platform with sites")
	}
	if err := s.SetSiteStatus(ctx, site.ID, entities.SiteDeleted); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPlatformStatus(ctx, p.ID, entities.StatusDeleted); err != nil {
		t.Errorf("platform without live sites: %v", err)
	}
	if err := s.DeleteServer(ctx, "web1"); err != nil {
		t.Errorf("server no longer used: %v", err)
	}
	if err := s.DeleteClient(ctx, "acme"); err != nil {
		t.Errorf("client without live sites: %v", err)
	}
	if _, err := s.GetServer(ctx, "web1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted server still found: %v", err)
	}
}

// Two processes writing at once (a cron dispatch and a user command) both
// succeed: separate handles on one file, many concurrent writes each.
func TestConcurrentWriters(t *testing.T) {
	path := testenv.State(t)
	ctx := context.Background()
	var handles []*Store
	for i := 0; i < 3; i++ {
		s, err := Open(ctx, path, true)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		handles = append(handles, s)
	}
	fixture(t, handles[0])
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for h, s := range handles {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(s *Store, h, g int) {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					d := fmt.Sprintf("s%d-%d-%d.test", h, g, i)
					if _, err := s.AddSite(ctx, &entities.Site{Domain: d, Platform: "p1", DBServer: "web1", HTTPS: "off"}); err != nil {
						errs <- err
						return
					}
					if err := s.AppendLog(ctx, 1, entities.LogLine{Level: "info", Message: d}); err != nil {
						errs <- err
						return
					}
				}
			}(s, h, g)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write failed: %v", err)
	}
	sites, err := handles[1].ListSites(ctx, SiteFilter{})
	if err != nil || len(sites) != 300 {
		t.Fatalf("%d sites (%v), want 300", len(sites), err)
	}
}

func TestPackagesReplace(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	p, _ := s.GetPlatform(ctx, "p1")
	first := []entities.Package{
		{Name: "views", Type: "module", Project: "views", Version: "7.x-3.29", Path: "sites/all/modules/views"},
		{Name: "bartik", Type: "theme", Project: "drupal", Version: "7.105", Path: "themes/bartik"},
	}
	if err := s.ReplacePackages(ctx, p.ID, 0, first); err != nil {
		t.Fatal(err)
	}
	second := []entities.Package{{Name: "views", Type: "module", Project: "views", Version: "7.x-3.30", Path: "sites/all/modules/views"}}
	if err := s.ReplacePackages(ctx, p.ID, 0, second); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListPackages(ctx, PackageFilter{PlatformID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Version != "7.x-3.30" || got[0].Platform != "p1" {
		t.Fatalf("after replace: %+v", got)
	}
	var rel, pk int
	_ = s.db.QueryRow(`SELECT COUNT(*) FROM package_releases`).Scan(&rel)
	_ = s.db.QueryRow(`SELECT COUNT(*) FROM packages`).Scan(&pk)
	if rel != 1 || pk != 1 {
		t.Fatalf("stale releases/packages kept: %d releases, %d packages", rel, pk)
	}
}

// TestListSitesReadsEveryField: ListSites reads each site as GetSite
// does, every field (SQLite reads a list packed in few columns; a field
// that does not split as it should is read again column by column), and
// the aliases in their order.
func TestListSitesReadsEveryField(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	full := &entities.Site{Domain: "full.test", Aliases: []string{"www.full.test", "b.full.test", "a.full.test"}, Platform: "p1", DBServer: "web1",
		Client: "acme", Redirect: true, HTTPS: "required", Profile: "standard", Language: "fr", PHP: "8.3", Isolation: entities.IsolationSite}
	plain := &entities.Site{Domain: "plain.test", Platform: "p1", DBServer: "web1", HTTPS: "off"}
	odd := &entities.Site{Domain: "odd.test", Aliases: []string{"www.odd.test"}, Platform: "p1", DBServer: "web1", HTTPS: "on"}
	for _, v := range []*entities.Site{full, plain, odd} {
		if _, err := s.AddSite(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSiteDB(ctx, full.ID, "full_db", "full_user", "pw\x1fwith, a separator"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSiteGrantHost(ctx, full.ID, "10.0.0.7"); err != nil {
		t.Fatal(err)
	}
	checked := time.UnixMilli(1764000000123).UTC()
	if err := s.SaveSiteHealth(ctx, full.ID, entities.SiteHealth{Status: entities.HealthError, HTTPCode: 502, TimeMS: 812, Checked: checked, Error: "bad\x1fgateway: 'x'"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSiteHealth(ctx, odd.ID, entities.SiteHealth{Status: entities.HealthOK, HTTPCode: 200, TimeMS: 9, Checked: checked}); err != nil {
		t.Fatal(err)
	}
	exec(t, s, `UPDATE sites SET last_cron = ? WHERE id = ?`, int64(1764000005000), full.ID)
	// A field with the separator in it, which validation keeps out.
	exec(t, s, `UPDATE sites SET profile = ? WHERE id = ?`, "pro\x1ffile", odd.ID)

	want := map[string][]string{"full.test": full.Aliases, "plain.test": {}, "odd.test": odd.Aliases}
	for _, f := range []SiteFilter{{}, {Client: "acme"}, {Platform: "p1"}} {
		got, err := s.ListSites(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var domains []string
		for _, v := range got {
			domains = append(domains, v.Domain)
			one, err := s.GetSite(ctx, v.Domain)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, one) {
				t.Errorf("%+v: ListSites read\n%+v %+v\nGetSite reads\n%+v %+v", f, v, v.Health, one, one.Health)
			}
			if !reflect.DeepEqual(v.Aliases, want[v.Domain]) {
				t.Errorf("%s: aliases %q, want %q", v.Domain, v.Aliases, want[v.Domain])
			}
		}
		wantDomains := []string{"full.test", "odd.test", "plain.test"}
		if f.Client != "" {
			wantDomains = wantDomains[:1]
		}
		if !reflect.DeepEqual(domains, wantDomains) {
			t.Errorf("%+v: sites %q, want %q", f, domains, wantDomains)
		}
	}
	// What the packed row carried, against the values written.
	got, err := s.ListSites(ctx, SiteFilter{Client: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	v := got[0]
	if v.DBPassword != "pw\x1fwith, a separator" || v.DBGrantHost != "10.0.0.7" || v.DBName != "full_db" || !v.Redirect || v.Client != "acme" ||
		v.Health == nil || v.Health.Error != "bad\x1fgateway: 'x'" || v.Health.HTTPCode != 502 || v.Health.TimeMS != 812 || !v.Health.Checked.Equal(checked) ||
		v.LastCron == nil || v.LastCron.UnixMilli() != 1764000005000 || v.PHP != "8.3" || v.Isolation != entities.IsolationSite || v.UnixUser == "" ||
		v.Server != "web1" || v.DBServer != "web1" || v.Platform != "p1" || v.Language != "fr" || v.Profile != "standard" {
		t.Errorf("ListSites read %+v %+v", v, v.Health)
	}
}
