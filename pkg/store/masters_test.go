package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// TestMastersAndForget: the masters named by workers (both forms), tied
// tasks and backups, counted; forgetting one cancels its queued tied
// tasks and deletes its backup records and nothing of the others; a live
// lease refuses; an unknown name is not found.
func TestMastersAndForget(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	if _, err := s.AddSite(ctx, &entities.Site{Domain: "a.test", Platform: "p1", DBServer: "web1", HTTPS: "off", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetSite(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TestExec(`UPDATE tasks SET status = 'cancelled', worker = '', started = NULL, finished = NULL`); err != nil {
		t.Fatal(err)
	}
	now := s.Now()
	seen := now.Add(-time.Hour).Truncate(time.Second)
	mk := func(status, worker, master string, finished, lease int64) int64 {
		t.Helper()
		id, err := s.TestInsert(`INSERT INTO tasks (type, target_kind, target_id, target, status, options, created, started, finished, worker, master, lease_until) VALUES ('site.verify', 'site', ?, 'a.test', ?, '{}', ?, ?, ?, ?, ?, ?)`,
			v.ID, status, now.UnixMilli(), msOrNull(finished), msOrNull(finished), worker, master, msOrNull(lease))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	mk("success", "1@ma/m1", "", seen.UnixMilli(), 0)
	mk("success", "2@ma", "", seen.Add(-time.Hour).UnixMilli(), 0)
	mk("success", "3@mb/m2", "", now.UnixMilli(), 0)
	tied := mk("queued", "", "ma", 0, 0)
	mbTied := mk("queued", "", "mb", 0, 0)
	// mb runs a task under a lease that has not run out; ma's old one ran out.
	mk("processing", "4@mb/m2", "", now.UnixMilli(), now.Add(time.Hour).UnixMilli())
	mk("processing", "5@ma/m1", "", seen.UnixMilli(), now.Add(-time.Hour).UnixMilli())
	for _, m := range []string{"ma", "ma", "mc"} {
		if _, err := s.AddBackupOn(ctx, m, v.ID, "/b/"+m+itoa(int64(len(m)))+time.Now().String(), 1, "x", now); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := s.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []entities.Master{
		{Name: "ma", LastSeen: seen.UTC().Format(time.RFC3339), Holds: 1, Waiting: 1, Backups: 2},
		{Name: "mb", LastSeen: now.UTC().Truncate(time.Millisecond).Format(time.RFC3339), Holds: 1, Waiting: 1},
		{Name: "mc", LastSeen: "never", Backups: 1},
	}
	if len(ms) != len(want) {
		t.Fatalf("masters: %+v, want %+v", ms, want)
	}
	for i := range want {
		if *ms[i] != want[i] {
			t.Errorf("master %d: %+v, want %+v", i, *ms[i], want[i])
		}
	}

	if _, held, err := s.ForgetMaster(ctx, "mb", "forgotten"); err != nil || held == nil {
		t.Fatalf("forget mb, which holds a live lease: held %+v, %v", held, err)
	}
	var nfe *NotFoundError
	if _, _, err := s.ForgetMaster(ctx, "mz", "forgotten"); !errors.As(err, &nfe) {
		t.Fatalf("forget mz: %v, want not found", err)
	}
	f, held, err := s.ForgetMaster(ctx, "ma", "master ma was forgotten")
	if err != nil || held != nil {
		t.Fatalf("forget ma: held %+v, %v", held, err)
	}
	if len(f.Cancelled) != 1 || f.Cancelled[0] != tied || f.Backups != 2 {
		t.Fatalf("forget ma: %+v, want task %d cancelled and 2 backups", f, tied)
	}
	for id, status := range map[int64]string{tied: entities.TaskCancelled, mbTied: entities.TaskQueued} {
		task, err := s.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if task.Status != status {
			t.Errorf("task %d (tied to %s): %s, want %s", id, task.Master, task.Status, status)
		}
		if status == entities.TaskCancelled && task.Error != "master ma was forgotten" {
			t.Errorf("task %d: error %q", id, task.Error)
		}
	}
	log, _, err := s.TaskLog(ctx, tied, 0)
	if err != nil || len(log) != 1 || log[0].Message != "master ma was forgotten" {
		t.Errorf("log of task %d: %+v, %v", tied, log, err)
	}
	bs, err := s.ListBackups(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Master != "mc" {
		t.Errorf("backups after forgetting ma: %+v, want mc's alone", bs)
	}
}

func msOrNull(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
