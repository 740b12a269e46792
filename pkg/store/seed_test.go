package store

import (
	"context"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// SeedBench writes installed sites with their alias and site.verify tasks
// over them in turn, the newest Queued of them queued and the others
// ended in success.
func TestSeedBench(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	before, err := s.ListTasks(ctx, TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SeedBench(ctx, BenchState{Sites: 25, Tasks: 60, Queued: 7}); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetSite(ctx, "www.site00025.example.test")
	if err != nil || v.Domain != "site00025.example.test" || v.Status != entities.SiteInstalled || v.Platform != "p1" || v.DBName != "site00025" {
		t.Fatalf("site by its alias: %+v, %v", v, err)
	}
	sites, err := s.ListSites(ctx, SiteFilter{})
	if err != nil || len(sites) != 25 {
		t.Fatalf("%d sites (%v), want 25", len(sites), err)
	}
	ts, err := s.ListTasks(ctx, TaskFilter{Type: entities.TaskSiteVerify})
	if err != nil || len(ts) != 60 {
		t.Fatalf("%d site.verify tasks (%v), want 60", len(ts), err)
	}
	perSite := map[int64]int{}
	for i, task := range ts { // newest first
		want := entities.TaskSuccess
		if i < 7 {
			want = entities.TaskQueued
		}
		if task.Status != want || (want == entities.TaskSuccess) != (task.Finished != nil) {
			t.Fatalf("task %d (%d-th newest): %s, finished %v; want %s", task.ID, i, task.Status, task.Finished, want)
		}
		perSite[task.TargetID]++
	}
	for _, v := range sites {
		if n := perSite[v.ID]; n < 2 || n > 3 {
			t.Fatalf("site %s has %d tasks, want 2 or 3 of 60 over 25", v.Domain, n)
		}
	}
	// The fixture's own tasks are left as they were.
	for _, task := range before {
		if get(t, s, task.ID).Status != task.Status {
			t.Fatalf("task %d changed", task.ID)
		}
	}
}

// SeedFleet writes the servers with their services and platform, and the
// sites over them in turn with their names; every HTTPSEvery-th site has
// HTTPS and an ACME certificate due; half the sites ran an hour ago.
func TestSeedFleet(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	ran := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	if err := s.SeedFleet(ctx, FleetState{Servers: 3, Sites: 1001, HTTPSEvery: 10, Ran: ran}); err != nil {
		t.Fatal(err)
	}
	servers, err := s.ListServers(ctx)
	if err != nil || len(servers) != 3 {
		t.Fatalf("%d servers, %v", len(servers), err)
	}
	w := servers[1]
	if w.Name != "web0002" || w.Host != "web0002.fleet.test" || w.SSHUser != "aegir" || w.Status != entities.StatusEnabled || len(w.Services) != 2 {
		t.Fatalf("server %+v", w)
	}
	for _, svc := range w.Services {
		if svc.Kind == entities.KindDB && !svc.DBTunnel {
			t.Fatalf("database service not through the tunnel: %+v", svc)
		}
	}
	v, err := s.GetSite(ctx, "www.site001000.fleet.test")
	if err != nil || v.Domain != "site001000.fleet.test" || v.Platform != "wp0001" || v.HTTPS != entities.HTTPSOn || v.Status != entities.SiteInstalled {
		t.Fatalf("site by its alias: %+v, %v", v, err)
	}
	if c, err := s.GetCert(ctx, v.ID); err != nil || c.Source != "acme" || c.RenewAfter == nil || !c.RenewAfter.Before(s.Now()) {
		t.Fatalf("certificate %+v, %v", c, err)
	}
	sites, err := s.ListSites(ctx, SiteFilter{})
	if err != nil || len(sites) != 1001 {
		t.Fatalf("%d sites, %v", len(sites), err)
	}
	never := 0
	for _, x := range sites {
		if x.LastCron == nil {
			never++
		}
	}
	if never != 500 {
		t.Fatalf("%d sites never ran cron, want 500", never)
	}
}
