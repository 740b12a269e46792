package store

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

var pruneNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// history adds tasks as they would be after running, with logLines log
// lines each, straight into the state.
type history struct {
	t *testing.T
	s *Store
}

// add records a task of type typ on (kind, target) in status, created
// ended ago (and ended then, unless it has not), a child of parent (0:
// none), with three log lines.
func (h history) add(typ, kind string, target int64, status string, ended time.Duration, parent int64) int64 {
	h.t.Helper()
	at := pruneNow.Add(-ended).UnixMilli()
	fin := sql.NullInt64{Int64: at, Valid: status != entities.TaskQueued && status != entities.TaskProcessing}
	id, err := insert(context.Background(), h.s.db, `INSERT INTO tasks (type, target_kind, target_id, target, status, created, started, finished, parent_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, typ, kind, target, kind+"-"+itoa(target), status, at-1000, at-500, fin,
		sql.NullInt64{Int64: parent, Valid: parent != 0})
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := h.s.db.Exec(`INSERT INTO task_log (task_id, time, level, message) VALUES (?, ?, 'info', 'line')`, id, at); err != nil {
			h.t.Fatal(err)
		}
	}
	return id
}

func (h history) taskIDs() []int64 {
	h.t.Helper()
	rows, err := h.s.db.Query(`SELECT id FROM tasks ORDER BY id`)
	if err != nil {
		h.t.Fatal(err)
	}
	ids, err := scanColumn[int64](rows)
	if err != nil {
		h.t.Fatal(err)
	}
	return ids
}

// logsOf counts the log lines of tasks ids.
func (h history) logsOf(ids ...int64) int {
	h.t.Helper()
	var n int
	if err := h.s.db.QueryRow(`SELECT COUNT(*) FROM task_log WHERE task_id IN (` + joinIDs(ids) + `)`).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// A prune deletes the top-level tasks that ended before the cutoff with
// their log lines and children, and keeps what something still needs:
// tasks not ended, the newest of each type on each target, tasks with a
// move journal or lock, and a migrate whose child is the newest move of
// its site.
func TestPruneTasks(t *testing.T) {
	s := open(t)
	h := history{t, s}
	const site, platform = entities.TargetSite, entities.TargetPlatform
	old, recent := 100*day, 10*day
	// Site 1's cron: three old runs and a recent one; the old go.
	cron1 := h.add(entities.TaskSiteCron, site, 1, entities.TaskSuccess, old+3*day, 0)
	cron2 := h.add(entities.TaskSiteCron, site, 1, entities.TaskError, old+2*day, 0)
	cron3 := h.add(entities.TaskSiteCron, site, 1, entities.TaskWarning, old+day, 0)
	cronNew := h.add(entities.TaskSiteCron, site, 1, entities.TaskSuccess, recent, 0)
	// Its only verify, old and failed: the newest of its type, kept (site
	// show, task retry); a cancelled backup with a newer one goes.
	verify := h.add(entities.TaskSiteVerify, site, 1, entities.TaskError, old, 0)
	backupOld := h.add(entities.TaskSiteBackup, site, 1, entities.TaskCancelled, old+day, 0)
	backupNew := h.add(entities.TaskSiteBackup, site, 1, entities.TaskSuccess, old, 0)
	// The same target id on a platform is another target: its newest stays.
	pverify := h.add(entities.TaskSiteVerify, platform, 1, entities.TaskSuccess, old+5*day, 0)
	// Old but not ended: kept, and so is the newest of the type.
	queued := h.add(entities.TaskSiteCron, site, 2, entities.TaskQueued, old+3*day, 0)
	processing := h.add(entities.TaskSiteCron, site, 2, entities.TaskProcessing, old+2*day, 0)
	cron2Old := h.add(entities.TaskSiteCron, site, 2, entities.TaskSuccess, old+4*day, 0)
	// Old tasks of a move with a newer move: one with its journal, one
	// with its lock, kept; a third goes.
	moveJ := h.add(entities.TaskSiteMigrate, site, 3, entities.TaskError, old+3*day, 0)
	moveL := h.add(entities.TaskSiteMigrate, site, 3, entities.TaskError, old+2*day, 0)
	moveX := h.add(entities.TaskSiteMigrate, site, 3, entities.TaskError, old+day, 0)
	_ = h.add(entities.TaskSiteMigrate, site, 3, entities.TaskSuccess, recent, 0)
	if err := s.SaveMoveJournal(context.Background(), moveJ, []byte("{}"), "m1"); err != nil {
		t.Fatal(err)
	}
	if _, taken, err := s.TakeMoveLock(context.Background(), "task-"+itoa(moveL), "m1", 1, "tok", time.Hour, nil); err != nil || !taken {
		t.Fatalf("lock: %v %v", taken, err)
	}
	// Migrates of platform 1: mig0's children moved sites 4 and 5, then
	// mig1's moved site 4 again (and 5 never since), then mig2's, recent,
	// moved site 4. mig0 goes with its children; mig1 stays, as its child
	// is site 5's newest move; mig2 is recent.
	mig0 := h.add(entities.TaskPlatformMigrate, platform, 1, entities.TaskSuccess, old+9*day, 0)
	m0a := h.add(entities.TaskSiteMigrate, site, 4, entities.TaskSuccess, old+9*day, mig0)
	m0b := h.add(entities.TaskSiteMigrate, site, 4, entities.TaskError, old+9*day, mig0)
	mig1 := h.add(entities.TaskPlatformMigrate, platform, 1, entities.TaskSuccess, old+8*day, 0)
	m1a := h.add(entities.TaskSiteMigrate, site, 4, entities.TaskSuccess, old+8*day, mig1)
	m1b := h.add(entities.TaskSiteMigrate, site, 5, entities.TaskSuccess, old+8*day, mig1)
	mig2 := h.add(entities.TaskPlatformMigrate, platform, 1, entities.TaskSuccess, recent, 0)
	m2a := h.add(entities.TaskSiteMigrate, site, 4, entities.TaskSuccess, recent, mig2)
	_ = m2a
	// A migrate whose child has a child of its own is kept whole.
	mig3 := h.add(entities.TaskPlatformMigrate, platform, 2, entities.TaskSuccess, old+7*day, 0)
	m3a := h.add(entities.TaskSiteMigrate, site, 4, entities.TaskSuccess, old+7*day, mig3)
	m3g := h.add(entities.TaskSiteCron, site, 1, entities.TaskSuccess, old+7*day, m3a)
	_ = h.add(entities.TaskPlatformMigrate, platform, 2, entities.TaskSuccess, recent, 0)

	all := h.taskIDs()
	gone := []int64{cron1, cron2, cron3, backupOld, moveX, mig0, m0a, m0b}
	var kept []int64
	for _, id := range all {
		if !slices.Contains(gone, id) {
			kept = append(kept, id)
		}
	}
	for _, id := range []int64{cronNew, verify, backupNew, pverify, queued, processing, cron2Old, moveJ, moveL, mig1, m1a, m1b, mig2, mig3, m3a, m3g} {
		if !slices.Contains(kept, id) {
			t.Fatalf("task %d is expected both gone and kept", id)
		}
	}
	_ = cron2Old // site 2's newest site.cron ended, however old

	// Small batches: several transactions, each passing over kept tasks.
	p, err := s.Prune(context.Background(), PruneRule{TasksBefore: pruneNow.Add(-90 * day), Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.taskIDs(); !slices.Equal(got, kept) {
		t.Fatalf("left %v, want %v (gone: %v)", got, kept, gone)
	}
	if p.Tasks != int64(len(gone)) || p.LogLines != 3*int64(len(gone)) || p.Audit != 0 || p.More {
		t.Fatalf("pruned %+v, want %d tasks, %d lines", p, len(gone), 3*len(gone))
	}
	if n := h.logsOf(gone...); n != 0 {
		t.Fatalf("%d log lines of pruned tasks left", n)
	}
	if n := h.logsOf(kept...); n != 3*len(kept) {
		t.Fatalf("%d log lines of kept tasks, want %d", n, 3*len(kept))
	}
	// Nothing more to do; and a cutoff before everything deletes nothing.
	for _, before := range []time.Time{pruneNow.Add(-90 * day), pruneNow.Add(-1000 * day)} {
		if p, err := s.Prune(context.Background(), PruneRule{TasksBefore: before}); err != nil || p.Tasks != 0 {
			t.Fatalf("again: %+v, %v", p, err)
		}
	}
	if got := h.taskIDs(); !slices.Equal(got, kept) {
		t.Fatalf("again: left %v, want %v", got, kept)
	}
}

// MaxBatches stops a prune with More, and the next one goes on.
func TestPruneTasksMaxBatches(t *testing.T) {
	s := open(t)
	h := history{t, s}
	for i := 0; i < 6; i++ {
		h.add(entities.TaskSiteCron, entities.TargetSite, 1, entities.TaskSuccess, time.Duration(100-i)*day, 0)
	}
	newest := h.add(entities.TaskSiteCron, entities.TargetSite, 1, entities.TaskSuccess, 95*day, 0)
	r := PruneRule{TasksBefore: pruneNow.Add(-90 * day), Batch: 2, MaxBatches: 2}
	p, err := s.Prune(context.Background(), r)
	if err != nil || p.Tasks != 4 || !p.More {
		t.Fatalf("first: %+v, %v; want 4 tasks and more", p, err)
	}
	p, err = s.Prune(context.Background(), r)
	if err != nil || p.Tasks != 2 || p.More {
		t.Fatalf("second: %+v, %v; want 2 tasks and no more", p, err)
	}
	if got := h.taskIDs(); !slices.Equal(got, []int64{newest}) {
		t.Fatalf("left %v, want only the newest %d", got, newest)
	}
}

// A prune deletes the records of remote process groups (task_processes)
// of the tasks it deletes, with them, and those of tasks gone or ended
// before the cutoff, in batches; those of tasks running or ended since
// stay.
func TestPruneTaskProcesses(t *testing.T) {
	s := open(t)
	h := history{t, s}
	ctx := context.Background()
	const site = entities.TargetSite
	old, recent := 100*day, 10*day
	pruned := h.add(entities.TaskSiteBackup, site, 1, entities.TaskError, old+day, 0)
	_ = h.add(entities.TaskSiteBackup, site, 1, entities.TaskSuccess, recent, 0)
	newestOld := h.add(entities.TaskSiteVerify, site, 1, entities.TaskError, old, 0) // kept: newest of its type
	running := h.add(entities.TaskSiteCron, site, 2, entities.TaskProcessing, old, 0)
	ended := h.add(entities.TaskSiteCron, site, 3, entities.TaskError, recent, 0)
	gone := h.add(entities.TaskSiteCron, site, 4, entities.TaskError, recent, 0)
	if _, err := s.db.Exec(`DELETE FROM tasks WHERE id = ?`, gone); err != nil {
		t.Fatal(err)
	}
	procs := func(n int) []TaskProcess {
		var ps []TaskProcess
		for i := 0; i < n; i++ {
			ps = append(ps, TaskProcess{Host: "10.0.0.2:22", User: "aegir", PID: itoa(int64(4000 + i)), Name: "mysqldump"})
		}
		return ps
	}
	for _, r := range []struct {
		task int64
		n    int
	}{{pruned, 2}, {newestOld, 1}, {running, 2}, {ended, 1}, {gone, 3}, {gone + 1000, 1}} {
		if err := s.AddTaskProcesses(ctx, r.task, "m1", procs(r.n)); err != nil {
			t.Fatal(err)
		}
	}
	left := func() map[int64]int {
		t.Helper()
		rows, err := s.db.Query(`SELECT task_id FROM task_processes`)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := scanColumn[int64](rows)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]int{}
		for _, id := range ids {
			m[id]++
		}
		return m
	}
	want := map[int64]int{running: 2, ended: 1}
	// One batch of 2 at most: the 5 orphans are not all gone, More says so.
	r := PruneRule{TasksBefore: pruneNow.Add(-90 * day), Batch: 2, MaxBatches: 1}
	p, err := s.Prune(ctx, r)
	if err != nil || p.Tasks != 1 || p.Processes != 2+2 || !p.More {
		t.Fatalf("first: %+v, %v; want 1 task, its 2 records and 2 orphans, and more", p, err)
	}
	r.MaxBatches = 0
	p, err = s.Prune(ctx, r)
	if err != nil || p.Tasks != 0 || p.Processes != 3 || p.More {
		t.Fatalf("second: %+v, %v; want the 3 orphans left", p, err)
	}
	if got := left(); !maps.Equal(got, want) {
		t.Fatalf("records left by task: %v, want %v", got, want)
	}
	// Without TasksBefore, no task record goes.
	if err := s.AddTaskProcesses(ctx, gone, "m1", procs(1)); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Prune(ctx, PruneRule{AuditBefore: pruneNow}); err != nil || p.Processes != 0 {
		t.Fatalf("audit only: %+v, %v", p, err)
	}
}

// The audit log's entries made before the cutoff go, oldest first in
// batches; the others stay.
func TestPruneAudit(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	var keep []int64
	for i := 0; i < 7; i++ {
		e := &entities.AuditEntry{Time: pruneNow.Add(-time.Duration(400-60*i) * day), User: "ops", Method: "GET", Path: "/api/sites", Status: 200, TaskID: int64(i)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Time.After(pruneNow.Add(-365 * day)) {
			keep = append(keep, e.ID)
		}
	}
	p, err := s.Prune(ctx, PruneRule{AuditBefore: pruneNow.Add(-365 * day), Batch: 2})
	if err != nil || p.Audit != 1 || p.Tasks != 0 {
		t.Fatalf("pruned %+v, %v; want 1 entry", p, err)
	}
	p, err = s.Prune(ctx, PruneRule{AuditBefore: pruneNow.Add(-100 * day), Batch: 2})
	if err != nil || p.Audit != 4 {
		t.Fatalf("pruned %+v, %v; want 4 entries", p, err)
	}
	es, err := s.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var left []int64
	for _, e := range es {
		left = append(left, e.ID)
		if e.Time.Before(pruneNow.Add(-100 * day)) {
			t.Errorf("entry %d of %s left", e.ID, e.Time)
		}
	}
	if len(left) != 2 || !slices.Equal(left, keep[len(keep)-2:]) {
		t.Fatalf("left %v, want the newest 2 of %v", left, keep)
	}
}

// ClaimRun gives a run to one caller until it is due again; ReleaseRun
// makes it due at once, unless it was claimed again since.
func TestClaimRun(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	now := pruneNow
	claim := func(s *Store, at time.Time) bool {
		t.Helper()
		ok, err := s.ClaimRun(ctx, "prune", at, at.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim(a, now) || claim(b, now) || claim(a, now.Add(59*time.Minute)) {
		t.Fatal("a run was claimed twice within the hour")
	}
	if err := b.ReleaseRun(ctx, "prune", now); err != nil {
		t.Fatal(err)
	}
	if !claim(b, now.Add(time.Minute)) {
		t.Fatal("a released run was not due")
	}
	if err := a.ReleaseRun(ctx, "prune", now); err != nil { // claimed since: no effect
		t.Fatal(err)
	}
	if claim(a, now.Add(2*time.Minute)) || !claim(a, now.Add(61*time.Minute)) {
		t.Fatal("the run was due before its hour, or not after it")
	}
}

// BenchmarkPrune100k prunes 100,000 finished tasks of 100 days ago with
// 10 log lines each (1.1 million rows), the newest of each of their 100
// sites being recent, while another writer queues a task every few
// milliseconds: rows/s is the prune's speed, max-write-wait-ms the
// longest that writer waited for a queued task (what a claim would).
func BenchmarkPrune100k(b *testing.B) {
	const tasks, lines, sites = 100000, 10, 100
	ctx := context.Background()
	var spent, waited time.Duration
	var deleted int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := testenv.State(b)
		s, err := Open(ctx, path, true)
		if err != nil {
			b.Fatal(err)
		}
		s.Now = func() time.Time { return pruneNow }
		old := pruneNow.Add(-100 * day).UnixMilli()
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
			INSERT INTO tasks (type, target_kind, target_id, target, status, created, started, finished)
			SELECT 'site.cron', 'site', i % ?2, 'x', 'success', CAST(?3 AS BIGINT) + i, CAST(?3 AS BIGINT) + i, CAST(?3 AS BIGINT) + i FROM n`, []any{tasks, sites, old}},
			{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
			INSERT INTO tasks (type, target_kind, target_id, target, status, created, started, finished)
			SELECT 'site.cron', 'site', i - 1, 'x', 'success', ?2, ?2, ?2 FROM n`, []any{sites, pruneNow.UnixMilli()}},
			{`WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < ?1)
			INSERT INTO task_log (task_id, time, level, message) SELECT t.id, t.finished, 'info', 'a line of the task''s log' FROM tasks t CROSS JOIN k`, []any{lines}},
		} {
			if _, err := s.db.ExecContext(ctx, q.sql, q.args...); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.analyze(ctx); err != nil {
			b.Fatal(err)
		}
		w, err := Open(ctx, path, false)
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan time.Duration)
		go func() { // the other writer
			var longest time.Duration
			for {
				select {
				case <-stop:
					done <- longest
					return
				case <-time.After(5 * time.Millisecond):
				}
				t0 := time.Now()
				if _, err := w.QueueTask(ctx, entities.TaskSiteVerify, entities.TargetSite, 1000, "y", nil); err != nil {
					b.Error(err)
				}
				longest = max(longest, time.Since(t0))
			}
		}()
		b.StartTimer()
		t0 := time.Now()
		p, err := s.Prune(ctx, PruneRule{TasksBefore: pruneNow.Add(-90 * day)})
		spent += time.Since(t0)
		b.StopTimer()
		close(stop)
		waited = max(waited, <-done)
		if err != nil || p.Tasks != tasks || p.LogLines != tasks*lines {
			b.Fatalf("pruned %+v, %v", p, err)
		}
		deleted += p.Tasks + p.LogLines
		w.Close()
		s.Close()
	}
	b.ReportMetric(float64(deleted)/spent.Seconds(), "rows/s")
	b.ReportMetric(float64(waited.Microseconds())/1000, "max-write-wait-ms")
}
