package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// openPair opens one state twice, as two dispatchers would.
func openPair(t *testing.T) (*Store, *Store) {
	t.Helper()
	h := openHandles(t, 2)
	return h[0], h[1]
}

// openHandles opens one new state n times, as n masters would.
func openHandles(t *testing.T, n int) []*Store {
	t.Helper()
	path := testenv.State(t)
	out := make([]*Store, n)
	for i := range out {
		s, err := Open(context.Background(), path, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

func queued(t *testing.T, s *Store, kind string, targetID int64) *entities.Task {
	t.Helper()
	task, err := s.QueueTask(context.Background(), entities.TaskSiteVerify, kind, targetID, kind+"-"+itoa(targetID), nil)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func claimFor(worker string, now time.Time) Claim {
	return Claim{Worker: worker, Now: now, LeaseUntil: now.Add(time.Minute)}
}

func taskIDs(ts []*entities.Task) []int64 {
	out := []int64{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func get(t *testing.T, s *Store, id int64) *entities.Task {
	t.Helper()
	task, err := s.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// One claim takes the oldest queued task of each free target and marks it
// processing with the claimer's worker and lease; a second claimer on
// another handle gets nothing while those targets are busy.
func TestClaimTasks(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s1 := queued(t, a, entities.TargetSite, 1)
	s1b := queued(t, a, entities.TargetSite, 1)
	p1 := queued(t, a, entities.TargetPlatform, 1)

	got, err := a.ClaimTasks(ctx, claimFor("w1", now), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{s1.ID, p1.ID}; !slices.Equal(taskIDs(got), want) {
		t.Fatalf("claimed %v, want %v", taskIDs(got), want)
	}
	for _, id := range []int64{s1.ID, p1.ID} {
		c := get(t, b, id)
		if c.Status != entities.TaskProcessing || c.Worker != "w1" || c.Attempt != 1 || c.Started == nil || !c.Started.Equal(now) ||
			c.LeaseUntil == nil || !c.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Fatalf("claimed task as stored: %+v", c)
		}
	}
	if again, err := b.ClaimTasks(ctx, claimFor("w2", now), 10); err != nil || len(again) != 0 {
		t.Fatalf("second claimer got %v (%v), want nothing: both targets are busy", taskIDs(again), err)
	}
	if c := get(t, a, s1b.ID); c.Status != entities.TaskQueued || c.Worker != "" {
		t.Fatalf("the second task of site 1 was touched: %+v", c)
	}
	if got, err := b.ClaimTasks(ctx, claimFor("w2", now), 0); err != nil || len(got) != 0 {
		t.Fatalf("limit 0 claimed %v (%v)", taskIDs(got), err)
	}
	// The limit takes the oldest first.
	older := queued(t, a, entities.TargetSite, 5)
	queued(t, a, entities.TargetSite, 6)
	if got, err := b.ClaimTasks(ctx, claimFor("w2", now), 1); err != nil || !slices.Equal(taskIDs(got), []int64{older.ID}) {
		t.Fatalf("limit 1 claimed %v (%v), want [%d]", taskIDs(got), err, older.ID)
	}
}

// Two dispatchers claiming at once on their own handles never get the
// same task, and between them get every task.
func TestClaimTasksConcurrent(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	const n = 60
	for i := range n {
		queued(t, a, entities.TargetSite, int64(i+1))
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, s := range []*Store{a, b} {
		worker := "w" + itoa(int64(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ts, err := s.ClaimTasks(ctx, claimFor(worker, time.Now()), 3)
				if err != nil {
					errs <- err
					return
				}
				if len(ts) == 0 {
					return
				}
				mu.Lock()
				for _, task := range ts {
					if w, dup := seen[task.ID]; dup {
						mu.Unlock()
						errs <- &ConflictError{Msg: "task " + itoa(task.ID) + " claimed by " + w + " and " + worker}
						return
					}
					seen[task.ID] = worker
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d tasks claimed, want %d", len(seen), n)
	}
}

// ClaimTask takes one task only when it is claimable; TaskHolder names
// what is in its way: the running task first, else the older queued one.
func TestClaimTaskAndHolder(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	now := time.Now()
	first := queued(t, s, entities.TargetSite, 1)
	second := queued(t, s, entities.TargetSite, 1)
	third := queued(t, s, entities.TargetSite, 1)

	if got, err := s.ClaimTask(ctx, claimFor("w", now), second.ID); err != nil || got != nil {
		t.Fatalf("claimed %v (%v) behind an older queued task", got, err)
	}
	if h, err := s.TaskHolder(ctx, second); err != nil || h == nil || h.ID != first.ID || h.Status != entities.TaskQueued {
		t.Fatalf("holder of the second task: %+v (%v), want queued task %d", h, err, first.ID)
	}
	got, err := s.ClaimTask(ctx, claimFor("w", now), first.ID)
	if err != nil || got == nil || got.ID != first.ID || got.Status != entities.TaskProcessing || got.Worker != "w" {
		t.Fatalf("claiming the first task: %+v (%v)", got, err)
	}
	if again, err := s.ClaimTask(ctx, claimFor("w2", now), first.ID); err != nil || again != nil {
		t.Fatalf("a processing task was claimed again: %+v (%v)", again, err)
	}
	if h, err := s.TaskHolder(ctx, third); err != nil || h == nil || h.ID != first.ID || h.Status != entities.TaskProcessing {
		t.Fatalf("holder of the third task: %+v (%v), want running task %d", h, err, first.ID)
	}
	if h, err := s.TaskHolder(ctx, first); err != nil || h != nil {
		t.Fatalf("the running task has a holder: %+v (%v)", h, err)
	}
	if running, err := s.ProcessingTasks(ctx); err != nil || !slices.Equal(taskIDs(running), []int64{first.ID}) {
		t.Fatalf("processing tasks %v (%v), want [%d]", taskIDs(running), err, first.ID)
	}
}

// A lease is renewed and a task finished only by the worker that holds
// it, and only while it is processing.
func TestRenewLeaseAndFinishTask(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	task := queued(t, s, entities.TargetSite, 1)
	if _, err := s.ClaimTasks(ctx, claimFor("w", now), 1); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	if ok, err := s.RenewLease(ctx, task.ID, "w", later); err != nil || !ok {
		t.Fatalf("renewing its own lease: %v, %v", ok, err)
	}
	if c := get(t, s, task.ID); c.LeaseUntil == nil || !c.LeaseUntil.Equal(later) {
		t.Fatalf("lease %v after renewal, want %v", c.LeaseUntil, later)
	}
	if ok, err := s.RenewLease(ctx, task.ID, "other", later.Add(time.Hour)); err != nil || ok {
		t.Fatalf("another worker renewed the lease: %v, %v", ok, err)
	}
	if ok, err := s.FinishTask(ctx, task.ID, "other", TaskEnd{Status: entities.TaskSuccess, Finished: later}); err != nil || ok {
		t.Fatalf("another worker finished the task: %v, %v", ok, err)
	}
	if c := get(t, s, task.ID); c.Status != entities.TaskProcessing || !c.LeaseUntil.Equal(later) {
		t.Fatalf("task changed by another worker: %+v", c)
	}

	fix := []entities.Action{entities.Do("server.edit", "db1", "db-admin-user=USER", "accept-host-key"), entities.Do("task.retry", itoa(task.ID))}
	end := TaskEnd{Status: entities.TaskError, Error: "boom", Hint: "fix it", Fix: fix, Code: "broken", Result: map[string]int{"n": 1}, Finished: later}
	if ok, err := s.FinishTask(ctx, task.ID, "w", end); err != nil || !ok {
		t.Fatalf("finishing the task: %v, %v", ok, err)
	}
	c := get(t, s, task.ID)
	if c.Status != entities.TaskError || c.Error != "boom" || c.Hint != "fix it" || c.LeaseUntil != nil || c.Finished == nil || !c.Finished.Equal(later) {
		t.Fatalf("finished task as stored: %+v", c)
	}
	if !reflect.DeepEqual(c.Fix, fix) {
		t.Fatalf("fix as stored: %+v, want %+v", c.Fix, fix)
	}
	if l, err := s.ListTasks(ctx, TaskFilter{}); err != nil || len(l) != 1 || !reflect.DeepEqual(l[0].Fix, fix) {
		t.Fatalf("listed: %v, %v", l, err)
	}
	var code string
	if err := s.db.QueryRow(`SELECT error_code FROM tasks WHERE id = ?`, task.ID).Scan(&code); err != nil || code != "broken" {
		t.Fatalf("error code %q (%v)", code, err)
	}
	if r, err := s.TaskResult(ctx, task.ID); err != nil || r != `{"n":1}` {
		t.Fatalf("result %q (%v)", r, err)
	}
	if ok, err := s.RenewLease(ctx, task.ID, "w", later); err != nil || ok {
		t.Fatalf("renewed the lease of a finished task: %v, %v", ok, err)
	}
	if ok, err := s.FinishTask(ctx, task.ID, "w", TaskEnd{Status: entities.TaskSuccess, Finished: later}); err != nil || ok {
		t.Fatalf("finished a task twice: %v, %v", ok, err)
	}
	if c := get(t, s, task.ID); c.Status != entities.TaskError {
		t.Fatalf("second finish changed the status to %s", c.Status)
	}

	// A result that cannot be encoded is saved as the reason why.
	other := queued(t, s, entities.TargetSite, 2)
	if _, err := s.ClaimTasks(ctx, claimFor("w", now), 1); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.FinishTask(ctx, other.ID, "w", TaskEnd{Status: entities.TaskSuccess, Result: make(chan int), Finished: later}); err != nil || !ok {
		t.Fatalf("finishing with an unencodable result: %v, %v", ok, err)
	}
	if r, _ := s.TaskResult(ctx, other.ID); !strings.Contains(r, "unencodable_result") {
		t.Fatalf("result %q, want the encoding error", r)
	}
}

// A rescue ends a task only if it still has the lease the rescuer read: a
// renewal meanwhile wins, and of two rescuers one succeeds.
func TestRescueTask(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	task := queued(t, a, entities.TargetSite, 1)
	if _, err := a.ClaimTasks(ctx, claimFor("dead@host", now), 1); err != nil {
		t.Fatal(err)
	}
	end := TaskEnd{Status: entities.TaskError, Error: "died", Hint: "retry", Fix: []entities.Action{entities.Do("task.retry", "1")}, Code: "dispatcher_died", Finished: now.Add(time.Hour)}

	stale := get(t, b, task.ID)
	if ok, err := a.RenewLease(ctx, task.ID, "dead@host", now.Add(2*time.Minute)); err != nil || !ok {
		t.Fatalf("renewing: %v, %v", ok, err)
	}
	if ok, err := b.RescueTask(ctx, stale, end); err != nil || ok {
		t.Fatalf("rescued a task whose lease was renewed since it was read: %v, %v", ok, err)
	}
	if c := get(t, b, task.ID); c.Status != entities.TaskProcessing {
		t.Fatalf("status %s after a lost rescue", c.Status)
	}

	cur := get(t, b, task.ID)
	if ok, err := b.RescueTask(ctx, cur, end); err != nil || !ok {
		t.Fatalf("rescuing: %v, %v", ok, err)
	}
	if ok, err := a.RescueTask(ctx, cur, end); err != nil || ok {
		t.Fatalf("a second rescuer rescued it too: %v, %v", ok, err)
	}
	c := get(t, a, task.ID)
	if c.Status != entities.TaskError || c.Error != "died" || c.LeaseUntil != nil || c.Finished == nil || len(c.Fix) != 1 {
		t.Fatalf("rescued task as stored: %+v", c)
	}
	if ok, err := a.FinishTask(ctx, task.ID, "dead@host", TaskEnd{Status: entities.TaskSuccess, Finished: now}); err != nil || ok {
		t.Fatalf("the dead worker finished its rescued task: %v, %v", ok, err)
	}

	// The rescue found its work done: a warning without the error.
	if err := b.ClearRescuedError(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	c = get(t, a, task.ID)
	var code string
	_ = a.db.QueryRow(`SELECT error_code FROM tasks WHERE id = ?`, task.ID).Scan(&code)
	if c.Status != entities.TaskWarning || c.Error != "" || c.Hint != "" || c.Fix != nil || code != "" {
		t.Fatalf("after ClearRescuedError: %+v, code %q", c, code)
	}
}

// A task that never had a lease is rescued as such (lease_until IS NULL).
func TestRescueTaskWithoutLease(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	task := queued(t, s, entities.TargetSite, 1)
	if _, err := s.db.Exec(`UPDATE tasks SET status = 'processing', worker = 'w' WHERE id = ?`, task.ID); err != nil {
		t.Fatal(err)
	}
	cur := get(t, s, task.ID)
	if cur.LeaseUntil != nil {
		t.Fatalf("lease %v", cur.LeaseUntil)
	}
	if ok, err := s.RescueTask(ctx, cur, TaskEnd{Status: entities.TaskError, Error: "died", Finished: time.Now()}); err != nil || !ok {
		t.Fatalf("rescuing a task without a lease: %v, %v", ok, err)
	}
	if c := get(t, s, task.ID); c.Status != entities.TaskError {
		t.Fatalf("status %s", c.Status)
	}
}

func TestTaskLogTail(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	task := queued(t, s, entities.TargetSite, 1)
	other := queued(t, s, entities.TargetSite, 2)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		if err := s.AppendLog(ctx, task.ID, entities.LogLine{Time: base.Add(time.Duration(i) * time.Second), Level: "info", Message: "line " + itoa(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendLog(ctx, other.ID, entities.LogLine{Level: "info", Message: "other"}); err != nil {
		t.Fatal(err)
	}
	tail, err := s.TaskLogTail(ctx, task.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range tail {
		got = append(got, l.Message)
	}
	if strings.Join(got, ",") != "line 2,line 3,line 4" || !tail[0].Time.Equal(base.Add(2*time.Second)) {
		t.Fatalf("tail %v (first at %v)", got, tail[0].Time)
	}
	if none, err := s.TaskLogTail(ctx, 9999, 3); err != nil || none == nil || len(none) != 0 {
		t.Fatalf("tail of an unknown task: %v (%v)", none, err)
	}
}

// A log line's actions are kept with it: TaskLog and TaskLogTail give
// them back, and a line without any has none.
func TestTaskLogKeepsFix(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	task := queued(t, s, entities.TargetSite, 1)
	fix := []entities.Action{entities.Do("site.cert", "a.example", "cert=FILE", "key=FILE"), entities.Do("site.cert", "a.example")}
	if err := s.AppendLog(ctx, task.ID, entities.LogLine{Level: "warning", Message: "bring a new one", Fix: fix},
		entities.LogLine{Level: "info", Message: "plain"}); err != nil {
		t.Fatal(err)
	}
	all, _, err := s.TaskLog(ctx, task.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := s.TaskLogTail(ctx, task.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, lines := range map[string][]entities.LogLine{"TaskLog": all, "TaskLogTail": tail} {
		if len(lines) != 2 || !reflect.DeepEqual(lines[0].Fix, fix) || lines[0].Message != "bring a new one" || lines[1].Fix != nil {
			t.Fatalf("%s: %+v", name, lines)
		}
	}
}

// Claimers on separate handles of one state (masters sharing it), two
// goroutines each, claim and finish 500 tasks on 50 targets while more are
// queued: every task is claimed exactly once, never while another task of
// its target runs, and each target's tasks in creation order.
func TestConcurrentClaimers(t *testing.T) {
	const handles, perHandle, targets, before, during = 4, 2, 50, 300, 200
	hs := openHandles(t, handles)
	ctx := context.Background()
	for i := 0; i < before; i++ {
		queued(t, hs[0], entities.TargetSite, int64(i%targets))
	}
	var (
		mu      sync.Mutex
		claims  = map[int64]int{}
		busy    = map[int64]int64{} // target: the task the claimers hold on it
		order   = map[int64][]int64{}
		errs    []string
		done    = make(chan struct{})
		wg, enq sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	enq.Add(1)
	go func() { // more tasks while the claimers work
		defer enq.Done()
		for i := 0; i < during; i++ {
			if _, err := hs[1].QueueTask(ctx, entities.TaskSiteVerify, entities.TargetSite, int64(i%targets), "x", nil); err != nil {
				fail("queueing: %v", err)
				return
			}
		}
	}()
	for h := range hs {
		for g := 0; g < perHandle; g++ {
			wg.Add(1)
			go func(s *Store, worker string) {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					now := time.Now()
					ts, err := s.ClaimTasks(ctx, claimFor(worker, now), 5)
					if err != nil {
						fail("%s claiming: %v", worker, err)
						return
					}
					if len(ts) == 0 {
						// Nothing free: wait a little, as a dispatcher
						// does (SQLite's busy handler is not fair to
						// a writer among claimers that never pause).
						time.Sleep(2 * time.Millisecond)
					}
					mu.Lock()
					for _, task := range ts {
						claims[task.ID]++
						if other, ok := busy[task.TargetID]; ok {
							errs = append(errs, fmt.Sprintf("task %d claimed while task %d of target %d runs", task.ID, other, task.TargetID))
						}
						busy[task.TargetID] = task.ID
						order[task.TargetID] = append(order[task.TargetID], task.ID)
					}
					mu.Unlock()
					for _, task := range ts {
						// Free the target here before the store does, so
						// that a claim after the end never looks early.
						mu.Lock()
						delete(busy, task.TargetID)
						mu.Unlock()
						if ok, err := s.FinishTask(ctx, task.ID, worker, TaskEnd{Status: entities.TaskSuccess, Finished: time.Now()}); err != nil || !ok {
							fail("%s finishing task %d: %v, %v", worker, task.ID, ok, err)
							return
						}
					}
				}
			}(hs[h], fmt.Sprintf("%d@host%d", g+1, h))
		}
	}
	enq.Wait()
	// Wait until every task has ended, then stop the claimers.
	for {
		var left int
		if err := hs[0].db.QueryRow(`SELECT COUNT(*) FROM tasks WHERE status IN ('queued', 'processing')`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		stop := left == 0 || len(errs) > 0
		mu.Unlock()
		if stop {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %s", len(errs), errs[0])
	}
	if len(claims) != before+during {
		t.Fatalf("%d tasks claimed, want %d", len(claims), before+during)
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("task %d claimed %d times", id, n)
		}
	}
	for target, ids := range order {
		if !slices.IsSorted(ids) {
			t.Errorf("target %d: tasks claimed in order %v, not creation order", target, ids)
		}
	}
}

// A task tied to a master (Task.Master) is claimed by that master alone,
// by ClaimTasks and ClaimTask; it keeps its place in its target's order,
// so another master takes none of the target's later tasks until it has
// run; other targets are not held back. A retry of it stays tied.
func TestClaimTiedTask(t *testing.T) {
	ma, mb := openPair(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	fixture(t, ma)
	if _, err := ma.AddSite(ctx, &entities.Site{Domain: "a.test", Platform: "p1", DBServer: "web1", HTTPS: "off", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	v, err := ma.GetSite(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ma.AddBackupOn(ctx, "ma", v.ID, "/ma/backups/a.test.tar.gz", 1, "x", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ma.TestExec(`UPDATE tasks SET status = 'cancelled'`); err != nil { // the fixture's
		t.Fatal(err)
	}
	tied, err := ma.QueueBackupTask(ctx, b, entities.TaskBackupDelete, "ma")
	if err != nil {
		t.Fatal(err)
	}
	if tied.Master != "ma" || get(t, ma, tied.ID).Master != "ma" {
		t.Fatalf("queued tied to %q, read back tied to %q, want ma", tied.Master, get(t, ma, tied.ID).Master)
	}
	later := queued(t, ma, entities.TargetBackup, b.ID)
	other := queued(t, ma, entities.TargetSite, v.ID)
	atB := claimFor("1@mb", now)
	atB.Master = "mb"
	got, err := mb.ClaimTasks(ctx, atB, 10)
	if err != nil || !slices.Equal(taskIDs(got), []int64{other.ID}) {
		t.Fatalf("mb claimed %v (%v), want only task %d of the other target", taskIDs(got), err, other.ID)
	}
	if one, err := mb.ClaimTask(ctx, atB, tied.ID); err != nil || one != nil {
		t.Fatalf("mb claimed the tied task by id: %v, %v", one, err)
	}
	if h, err := mb.TaskHolder(ctx, later); err != nil || h == nil || h.ID != tied.ID || h.Master != "ma" {
		t.Fatalf("the holder of task %d: %+v, %v; want tied task %d", later.ID, h, err, tied.ID)
	}
	atA := claimFor("1@ma", now)
	atA.Master = "ma"
	got, err = ma.ClaimTasks(ctx, atA, 10)
	if err != nil || !slices.Equal(taskIDs(got), []int64{tied.ID}) {
		t.Fatalf("ma claimed %v (%v), want the tied task %d", taskIDs(got), err, tied.ID)
	}
	if ok, err := ma.FinishTask(ctx, tied.ID, "1@ma", TaskEnd{Status: entities.TaskError, Error: "x", Finished: now}); !ok || err != nil {
		t.Fatalf("finishing the tied task: %v, %v", ok, err)
	}
	got, err = mb.ClaimTasks(ctx, atB, 10)
	if err != nil || !slices.Equal(taskIDs(got), []int64{later.ID}) {
		t.Fatalf("mb claimed %v (%v) once the tied task ended, want task %d", taskIDs(got), err, later.ID)
	}
	again, err := mb.RetryTask(ctx, tied.ID)
	if err != nil || again.Master != "ma" || get(t, mb, again.ID).Master != "ma" {
		t.Fatalf("retry of the tied task: %+v, %v; want tied to ma", again, err)
	}
}
