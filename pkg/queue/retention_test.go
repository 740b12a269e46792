package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func TestBackupsToPrune(t *testing.T) {
	st, _ := newStore(t)
	s := seedSites(t, st, 3)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	add := func(site int64, age time.Duration) int64 {
		t.Helper()
		id, err := st.TestInsert(`INSERT INTO backups (site_id, path, created) VALUES (?, ?, ?)`,
			site, fmt.Sprintf("/b/%d-%d.tar.gz", site, age), now.Add(-age).UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Site a: one backup a day for ten days, inserted oldest first.
	var a []int64 // a[i] is i days old
	for i := 9; i >= 0; i-- {
		a = append([]int64{add(s[0], time.Duration(i)*day)}, a...)
	}
	// Site b: two old backups. Site c: one very old backup.
	b40, b50 := add(s[1], 40*day), add(s[1], 50*day)
	c100 := add(s[2], 100*day)

	for _, c := range []struct {
		name   string
		keep   int
		maxAge time.Duration
		want   []int64
	}{
		{"no limits", 0, 0, []int64{}},
		{"keep 3", 3, 0, []int64{a[3], a[4], a[5], a[6], a[7], a[8], a[9]}},
		{"keep 1", 1, 0, []int64{a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], b50}},
		{"older than 5 days", 0, 5 * day, []int64{a[6], a[7], a[8], a[9], b50}},
		{"keep 3 and 30 days", 3, 30 * day, []int64{a[3], a[4], a[5], a[6], a[7], a[8], a[9], b50}},
		{"keep 20 and 1 hour", 20, time.Hour, []int64{a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], b50}},
	} {
		got, err := BackupsToPrune(context.Background(), st, c.keep, c.maxAge, now)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]int64{}, c.want...)
		slices.Sort(want)
		if !sameIDs(got, want) {
			t.Errorf("%s: got %v, want %v", c.name, got, want)
		}
		for _, id := range got {
			if id == a[0] || id == b40 || id == c100 {
				t.Errorf("%s: selected backup %d, the newest of its site", c.name, id)
			}
		}
	}
	var n int
	_ = st.TestQueryRow(`SELECT COUNT(*) FROM backups`).Scan(&n)
	if n != 13 {
		t.Fatalf("the selection changed the table: %d backups left", n)
	}
}

// The backup queue's run queues backup.delete tasks for what the
// retention rules select, once each, however often it runs.
func TestBackupQueuePrunes(t *testing.T) {
	st, _ := newStore(t)
	c := newClock()
	st.Now = c.Now
	s := seedSites(t, st, 1)
	for i := 0; i < 5; i++ {
		mustExec(t, st, `INSERT INTO backups (site_id, path, created) VALUES (?, ?, ?)`, s[0], fmt.Sprintf("/b/%d.tar.gz", i), c.Now().Add(-time.Duration(i)*time.Hour).UnixMilli())
	}
	d := &Dispatcher{Store: st, Queues: []QueueConfig{{Name: "backup", Enabled: true, Frequency: 24 * time.Hour, Keep: 2}}}
	count := func() int {
		var n int
		if err := st.TestQueryRow(`SELECT COUNT(*) FROM tasks WHERE type = 'backup.delete' AND target_kind = 'backup' AND status = 'queued'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := d.Schedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d backup.delete tasks after the first run, want 3 (5 backups, keep 2)", n)
	}
	c.Add(25 * time.Hour)
	if _, err := d.Schedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d backup.delete tasks after a second run, want still 3", n)
	}
}

// A dispatch prunes the finished tasks older than KeepTasks (but the
// newest of each type on each target) and the audit entries older than
// KeepAudit, once an hour whichever master dispatches, and logs one line.
func TestDispatchPrunes(t *testing.T) {
	st, path := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	var logged []string
	logTask := func(_ context.Context, _ *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		log(entities.LevelInfo, "done")
		return Outcome{}
	}
	d := &Dispatcher{Store: st, Handler: logTask, KeepAudit: 30 * 24 * time.Hour,
		Logf: func(f string, args ...any) { logged = append(logged, fmt.Sprintf(f, args...)) }}
	audit := func(age time.Duration) {
		t.Helper()
		if err := st.AppendAudit(ctx, &entities.AuditEntry{Time: clk.Now().Add(-age), User: "ops", Method: "POST", Path: "/api/tasks", Status: 201}); err != nil {
			t.Fatal(err)
		}
	}
	var old []int64
	for i := 0; i < 3; i++ {
		old = append(old, queueTask(t, st, entities.TaskSiteCron, entities.TargetSite, 1).ID)
	}
	verify := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1).ID
	audit(0)
	if sum, err := d.RunOnce(ctx); err != nil || sum.Ran != 4 || sum.Pruned == nil || sum.Pruned.Tasks != 0 {
		t.Fatalf("first pass: %+v, %v", sum, err)
	}
	lines := 0
	for _, id := range old {
		lines += len(taskLog(t, st, id))
	}

	clk.Add(DefaultKeepTasks + 24*time.Hour)
	cron := queueTask(t, st, entities.TaskSiteCron, entities.TargetSite, 1).ID
	logged = nil
	sum, err := d.RunOnce(ctx)
	if err != nil || sum.Ran != 1 {
		t.Fatalf("second pass: %+v, %v", sum, err)
	}
	if p := sum.Pruned; p == nil || p.Tasks != 3 || p.LogLines != int64(lines) || p.Audit != 1 {
		t.Fatalf("pruned %+v, want 3 tasks, %d log lines, 1 audit entry", p, lines)
	}
	for _, id := range old {
		if _, err := st.GetTask(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("old task %d: %v, want not found", id, err)
		}
	}
	for _, id := range []int64{verify, cron} { // the newest verify, however old; the new cron
		getTask(t, st, id)
	}
	var pruned []string
	for _, l := range logged {
		if strings.Contains(l, "pruned") {
			pruned = append(pruned, l)
		}
	}
	if len(pruned) != 1 || !strings.Contains(pruned[0], "pruned 3 finished tasks ("+fmt.Sprint(lines)+" log lines) that ended more than 2160h ago and 1 audit entries older than 720h") {
		t.Fatalf("logged %q, want one line with the counts", pruned)
	}

	// Within the hour another master's dispatch does not prune; after it,
	// one does.
	st2 := openStore(t, path)
	st2.Now = clk.Now
	d2 := &Dispatcher{Store: st2, Handler: logTask, KeepAudit: 30 * 24 * time.Hour}
	audit(40 * 24 * time.Hour)
	if sum, err := d2.RunOnce(ctx); err != nil || sum.Pruned != nil {
		t.Fatalf("within the hour: %+v, %v", sum.Pruned, err)
	}
	clk.Add(PruneEvery)
	if sum, err := d2.RunOnce(ctx); err != nil || sum.Pruned == nil || sum.Pruned.Audit != 1 {
		t.Fatalf("after the hour: %+v, %v", sum.Pruned, err)
	}
	// Keeping everything: no prune runs.
	clk.Add(PruneEvery)
	audit(40 * 24 * time.Hour)
	keepAll := &Dispatcher{Store: st, Handler: logTask, KeepTasks: -1, KeepAudit: -1}
	if sum, err := keepAll.RunOnce(ctx); err != nil || sum.Pruned != nil {
		t.Fatalf("keep all: %+v, %v", sum.Pruned, err)
	}
	if es, err := st.AuditLog(ctx, 0); err != nil || len(es) != 1 {
		t.Fatalf("keep all: %d audit entries left, want 1 (%v)", len(es), err)
	}
}

// Serve (hosting queued) prunes too, beside the tasks.
func TestServePrunes(t *testing.T) {
	st, _ := newStore(t)
	old := time.Now().Add(-DefaultKeepTasks - 24*time.Hour).UnixMilli()
	var ids []int64
	for i := 0; i < 3; i++ {
		id, err := st.TestInsert(`INSERT INTO tasks (type, target_kind, target_id, target, status, created, finished) VALUES ('site.cron', 'site', 1, 's', 'success', ?, ?)`, old+int64(i), old+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	pruned := make(chan string, 10)
	d := &Dispatcher{Store: st, Poll: 10 * time.Millisecond, Handler: succeed, Logf: func(f string, args ...any) {
		if l := fmt.Sprintf(f, args...); strings.Contains(l, "pruned") {
			pruned <- l
		}
	}}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	select {
	case l := <-pruned:
		if !strings.Contains(l, "pruned 2 finished tasks") {
			t.Errorf("logged %q, want 2 tasks pruned", l)
		}
	case <-time.After(30 * time.Second):
		t.Error("Serve did not prune")
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		_, err := st.GetTask(context.Background(), id)
		if gone := errors.Is(err, store.ErrNotFound); gone != (i < 2) {
			t.Errorf("task %d (%d of 3, the last the newest): gone %v (%v)", id, i+1, gone, err)
		}
	}
}
