package store

import (
	"context"
	"testing"

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
