package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// Each outcome is recorded as it was given: status, error, hint, code,
// result and log lines; a panicking handler fails its task, not the
// dispatcher.
func TestRunOnceOutcomes(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	ok := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	warn := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 2)
	fail := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 3)
	boom := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 4)
	odd := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 5)
	d := &Dispatcher{Store: st, Workers: 3, Handler: func(ctx context.Context, task *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		log("info", "working on "+task.Target)
		switch task.ID {
		case ok.ID:
			return Outcome{Result: map[string]int{"n": 1}}
		case warn.ID:
			return Outcome{Status: entities.TaskWarning, Error: "slow"}
		case fail.ID:
			return Outcome{Status: entities.TaskError, Error: "database refused", Hint: "start mariadb", Code: "database"}
		case boom.ID:
			panic("nil map")
		}
		return Outcome{Status: "meh"}
	}}
	sum, err := d.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Ran != 5 || sum.Failed != 3 || len(sum.Rescued) != 0 {
		t.Fatalf("summary %+v", sum)
	}
	check := func(id int64, status, errMsg string) *entities.Task {
		t.Helper()
		got := getTask(t, st, id)
		if got.Status != status || !strings.Contains(got.Error, errMsg) || got.Finished == nil || got.LeaseUntil != nil {
			t.Fatalf("task %d: %s %q finished %v lease %v, want %s %q", id, got.Status, got.Error, got.Finished, got.LeaseUntil, status, errMsg)
		}
		lines := taskLog(t, st, id)
		if len(lines) < 2 || lines[0].Level != "debug" || lines[1].Message != "working on "+got.Target {
			t.Fatalf("task %d log: %+v", id, lines)
		}
		return got
	}
	check(ok.ID, entities.TaskSuccess, "")
	if r, _ := st.TaskResult(ctx, ok.ID); r != `{"n":1}` {
		t.Fatalf("result %q", r)
	}
	check(warn.ID, entities.TaskWarning, "slow")
	if f := check(fail.ID, entities.TaskError, "database refused"); f.Hint != "start mariadb" {
		t.Fatalf("hint %q", f.Hint)
	}
	var code string
	_ = st.TestQueryRow(`SELECT error_code FROM tasks WHERE id = ?`, fail.ID).Scan(&code)
	if code != "database" {
		t.Fatalf("error code %q", code)
	}
	if b := check(boom.ID, entities.TaskError, "internal error: nil map"); !strings.Contains(b.Hint, "bug") {
		t.Fatalf("panic hint %q", b.Hint)
	}
	check(odd.ID, entities.TaskError, `unknown status "meh"`)
}

// Two dispatchers on two handles of one state file, 8 workers in all,
// racing over 500 tasks on 6 targets (sites 0-2 and platforms 0-2): every
// task runs exactly once, never two of a target at once, and each target's
// tasks in creation order.
func TestTwoDispatchersRunEachTaskOnce(t *testing.T) {
	st1, path := newStore(t)
	st2 := openStore(t, path)
	const tasks = 500
	var rows [][]any
	for i := 0; i < tasks; i++ {
		kind := entities.TargetSite
		if i%2 == 1 {
			kind = entities.TargetPlatform
		}
		rows = append(rows, []any{kind, (i / 2) % 3})
	}
	if err := st1.TestBatch(`INSERT INTO tasks (type, target_kind, target_id, target, created) VALUES ('site.verify', ?, ?, 'x', 0)`, rows); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	runs := map[int64]int{}
	busy := map[string]int{}
	order := map[string][]int64{}
	var overlap atomic.Int32
	handler := func(ctx context.Context, task *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		key := fmt.Sprintf("%s/%d", task.TargetKind, task.TargetID)
		mu.Lock()
		runs[task.ID]++
		busy[key]++
		if busy[key] > 1 {
			overlap.Add(1)
		}
		order[key] = append(order[key], task.ID)
		mu.Unlock()
		time.Sleep(time.Duration(task.ID%3) * time.Millisecond)
		mu.Lock()
		busy[key]--
		mu.Unlock()
		return Outcome{}
	}
	ds := []*Dispatcher{
		{Store: st1, Workers: 4, Handler: handler},
		{Store: st2, Workers: 4, Handler: handler},
	}
	var wg sync.WaitGroup
	sums := make([]*Summary, len(ds))
	errs := make([]error, len(ds))
	start := time.Now()
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = d.RunOnce(context.Background())
		}()
	}
	wg.Wait()
	t.Logf("500 tasks by two dispatchers in %s: %d and %d", time.Since(start), sums[0].Ran, sums[1].Ran)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := overlap.Load(); n > 0 {
		t.Fatalf("%d times two tasks of one target ran at once", n)
	}
	if len(runs) != tasks {
		t.Fatalf("%d distinct tasks ran, want %d", len(runs), tasks)
	}
	for id, n := range runs {
		if n != 1 {
			t.Fatalf("task %d ran %d times", id, n)
		}
	}
	if sums[0].Ran+sums[1].Ran != tasks {
		t.Fatalf("summaries count %d + %d runs", sums[0].Ran, sums[1].Ran)
	}
	for key, ids := range order {
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] {
				t.Fatalf("target %s ran out of order: %v", key, ids)
			}
		}
	}
	var left int
	_ = st1.TestQueryRow(`SELECT COUNT(*) FROM tasks WHERE status <> 'success'`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d tasks not success", left)
	}
}

// Log lines reach task_log while the task still runs, within a second.
func TestLogVisibleWhileRunning(t *testing.T) {
	st, path := newStore(t)
	reader := openStore(t, path)
	task := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	release := make(chan struct{})
	logged := make(chan time.Time, 1)
	d := &Dispatcher{Store: st, Handler: func(ctx context.Context, _ *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		log("info", "downloading core")
		logged <- time.Now()
		<-release
		return Outcome{}
	}}
	done := make(chan error, 1)
	go func() { _, err := d.RunOnce(context.Background()); done <- err }()
	at := <-logged
	for {
		lines := taskLog(t, reader, task.ID)
		if len(lines) == 2 && lines[1].Message == "downloading core" {
			t.Logf("line visible after %s", time.Since(at))
			break
		}
		if time.Since(at) > time.Second {
			close(release)
			t.Fatalf("log line not in task_log after 1 s: %+v", lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := getTask(t, reader, task.ID); s.Status != entities.TaskProcessing {
		t.Fatalf("status %s while running", s.Status)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The heartbeat renews the lease: a task that runs for several leases is
// not rescued by a second dispatcher that keeps looking.
func TestHeartbeatKeepsLease(t *testing.T) {
	st, path := newStore(t)
	other := openStore(t, path)
	task := queueTask(t, st, entities.TaskSiteBackup, entities.TargetSite, 1)
	d := &Dispatcher{Store: st, Lease: 300 * time.Millisecond, Handler: func(ctx context.Context, _ *entities.Task, _ func(string, string, ...entities.Action)) Outcome {
		select {
		case <-time.After(1200 * time.Millisecond):
			return Outcome{}
		case <-ctx.Done():
			return Outcome{Status: entities.TaskError, Error: "cancelled"}
		}
	}}
	// The rescuer runs under another worker name, so only the lease (not
	// the live pid) protects the task.
	rescuer := &Dispatcher{Store: other, Handler: succeed, Worker: "1@elsewhere"}
	done := make(chan error, 1)
	go func() { _, err := d.RunOnce(context.Background()); done <- err }()
	var rescues int
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
		r, err := rescuer.Rescue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rescues += len(r)
		if s := getTask(t, other, task.ID); s.Status == entities.TaskSuccess {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := getTask(t, st, task.ID); rescues != 0 || s.Status != entities.TaskSuccess {
		t.Fatalf("rescued %d times, status %s %q", rescues, s.Status, s.Error)
	}
}

// A dispatcher whose lease was taken (another one declared it dead) gets
// its handler cancelled and does not overwrite the verdict.
func TestLostLeaseIsNotOverwritten(t *testing.T) {
	st, path := newStore(t)
	other := openStore(t, path)
	later := newClock()
	later.now = time.Now().Add(time.Hour) // the rescuer sees every lease run out
	other.Now = later.Now
	task := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	started := make(chan struct{})
	cancelled := make(chan struct{})
	d := &Dispatcher{Store: st, Lease: 150 * time.Millisecond, Handler: func(ctx context.Context, _ *entities.Task, _ func(string, string, ...entities.Action)) Outcome {
		close(started)
		select {
		case <-ctx.Done():
			close(cancelled)
			return Outcome{Status: entities.TaskSuccess}
		case <-time.After(5 * time.Second):
			return Outcome{Status: entities.TaskSuccess}
		}
	}}
	done := make(chan *Summary, 1)
	go func() { s, _ := d.RunOnce(context.Background()); done <- s }()
	<-started
	var cleaned []int64
	rescuer := &Dispatcher{Store: other, Handler: succeed, Cleanup: func(_ context.Context, t *entities.Task) (bool, error) {
		cleaned = append(cleaned, t.ID)
		return false, nil
	}}
	r, err := rescuer.Rescue(context.Background())
	if err != nil || len(r) != 1 {
		t.Fatalf("rescue: %v, %v", r, err)
	}
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("handler not cancelled after its lease was lost")
	}
	sum := <-done
	if sum.Failed != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if s := getTask(t, st, task.ID); s.Status != entities.TaskError || s.Error != MsgDied || len(cleaned) != 1 {
		t.Fatalf("after a lost lease: %s %q, cleaned %v", s.Status, s.Error, cleaned)
	}
}

// Serve keeps running tasks as they come; on cancel it claims nothing more
// but lets the running task finish (its context is not cancelled).
func TestServeFinishesRunningTasksOnStop(t *testing.T) {
	st, _ := newStore(t)
	first := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	started := make(chan int64, 10)
	release := make(chan struct{})
	d := &Dispatcher{Store: st, Workers: 1, Poll: 50 * time.Millisecond, Handler: func(ctx context.Context, task *entities.Task, _ func(string, string, ...entities.Action)) Outcome {
		started <- task.ID
		if task.ID == first.ID {
			return Outcome{}
		}
		select {
		case <-release:
			return Outcome{}
		case <-ctx.Done():
			return Outcome{Status: entities.TaskError, Error: "cancelled"}
		}
	}}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	if id := <-started; id != first.ID {
		t.Fatalf("first task %d", id)
	}
	// A task queued while it serves is picked up by a later poll.
	second := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 2)
	third := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 3)
	select {
	case id := <-started:
		if id != second.ID {
			t.Fatalf("second task %d", id)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not pick up a new task")
	}
	stop()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a task was running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if s := getTask(t, st, second.ID); s.Status != entities.TaskSuccess {
		t.Fatalf("running task ended %s %q after stop", s.Status, s.Error)
	}
	if s := getTask(t, st, third.ID); s.Status != entities.TaskQueued {
		t.Fatalf("task queued at stop is %s", s.Status)
	}
}

// N workers run N tasks at once (and no more): each task waits until
// four are running, which happens only if the four workers run side by
// side. (It was a timed comparison, 1 worker against 4, which a loaded
// machine or a slower state made fail.)
func TestWorkersRunInParallel(t *testing.T) {
	st, _ := newStore(t)
	for i := 0; i < 12; i++ {
		queueTask(t, st, entities.TaskSiteCron, entities.TargetSite, int64(i))
	}
	var mu sync.Mutex
	running, most, gaveUp := 0, 0, false
	full := make(chan struct{})
	d := &Dispatcher{Store: st, Workers: 4, Handler: func(context.Context, *entities.Task, func(string, string, ...entities.Action)) Outcome {
		mu.Lock()
		running++
		most = max(most, running)
		if running == 4 && most == 4 {
			select {
			case <-full:
			default:
				close(full)
			}
		}
		mu.Unlock()
		select {
		case <-full:
		case <-time.After(5 * time.Second): // never four at once: let all go, and fail below
			mu.Lock()
			select {
			case <-full:
			default:
				gaveUp = true
				close(full)
			}
			mu.Unlock()
		}
		mu.Lock()
		running--
		mu.Unlock()
		return Outcome{}
	}}
	sum, err := d.RunOnce(context.Background())
	if err != nil || sum.Ran != 12 {
		t.Fatalf("%+v, %v", sum, err)
	}
	if gaveUp || most != 4 {
		t.Fatalf("%d tasks at once with four workers", most)
	}
}

// Echo sees every line in order, and the result JSON is what Outcome held.
func TestEcho(t *testing.T) {
	st, _ := newStore(t)
	task := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	var got []string
	d := &Dispatcher{Store: st, Echo: func(_ *entities.Task, l entities.LogLine) { got = append(got, l.Level+":"+l.Message) },
		Handler: func(_ context.Context, _ *entities.Task, log func(string, string, ...entities.Action)) Outcome {
			for i := 0; i < 250; i++ {
				log("info", fmt.Sprint(i))
			}
			return Outcome{Result: struct {
				A string `json:"a"`
			}{"b"}}
		}}
	if _, err := d.RunTask(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	lines := taskLog(t, st, task.ID)
	if len(got) != 251 || len(lines) != 251 {
		t.Fatalf("echoed %d, stored %d lines, want 251", len(got), len(lines))
	}
	for i, l := range lines[1:] {
		if l.Message != fmt.Sprint(i) || got[i+1] != "info:"+fmt.Sprint(i) {
			t.Fatalf("line %d: stored %q echoed %q", i, l.Message, got[i+1])
		}
	}
	r, _ := st.TaskResult(context.Background(), task.ID)
	var v map[string]string
	if err := json.Unmarshal([]byte(r), &v); err != nil || v["a"] != "b" {
		t.Fatalf("result %q", r)
	}
}

// A task that releases its worker lets the next task run, and takes a
// worker again before any new task when it resumes: with one worker,
// the first task waits for the next two, and no more than one task
// works at a time.
func TestReleaseWorker(t *testing.T) {
	st, _ := newStore(t)
	for i := int64(1); i <= 3; i++ {
		queueTask(t, st, "site.verify", "site", i)
	}
	others := make(chan struct{}, 2)
	var mu sync.Mutex
	working, most := 0, 0
	work := func(d int) {
		mu.Lock()
		working += d
		most = max(most, working)
		mu.Unlock()
	}
	d := &Dispatcher{Store: st, Workers: 1, Handler: func(ctx context.Context, task *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		work(1)
		defer work(-1)
		if task.TargetID != 1 {
			others <- struct{}{}
			return Outcome{}
		}
		work(-1)
		resume := ReleaseWorker(ctx)
		for i := 0; i < 2; i++ {
			select {
			case <-others:
			case <-time.After(10 * time.Second):
				resume()
				work(1)
				return Outcome{Error: "the other tasks did not run while this one had released its worker"}
			}
		}
		resume()
		work(1)
		return Outcome{}
	}}
	sum, err := d.RunOnce(context.Background())
	if err != nil || sum.Ran != 3 || sum.Failed != 0 {
		t.Fatalf("%+v, %v; task 1: %+v", sum, err, getTask(t, st, 1))
	}
	if most != 1 {
		t.Errorf("%d tasks worked at once with one worker", most)
	}
	// Outside a dispatch pass, ReleaseWorker does nothing.
	ReleaseWorker(context.Background())()
}

// A daemon whose state state migrate marked moved while it served stops
// claiming there: the running task finishes, a task queued in the old
// state is left alone, and Serve returns the *store.MovedError.
func TestServeStopsOnMovedState(t *testing.T) {
	st, _ := newStore(t)
	first := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	started, release, served := make(chan int64, 10), make(chan struct{}), make(chan error, 1)
	go func() {
		served <- (&Dispatcher{Store: st, Workers: 1, Poll: 50 * time.Millisecond,
			Handler: func(_ context.Context, task *entities.Task, _ func(string, string, ...entities.Action)) Outcome {
				started <- task.ID
				<-release
				return Outcome{}
			}}).Serve(context.Background())
	}()
	if id := <-started; id != first.ID {
		t.Fatalf("first task %d", id)
	}
	if err := st.MarkMoved(context.Background(), "/var/aegir/new.db"); err != nil {
		t.Fatal(err)
	}
	late := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 2)
	close(release)
	var moved *store.MovedError
	select {
	case err := <-served:
		if !errors.As(err, &moved) || moved.To != "/var/aegir/new.db" {
			t.Fatalf("Serve on a moved state returned %v, want the MovedError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve kept serving a state marked moved")
	}
	if s := getTask(t, st, first.ID); s.Status != entities.TaskSuccess {
		t.Fatalf("the running task ended %s %q", s.Status, s.Error)
	}
	if s := getTask(t, st, late.ID); s.Status != entities.TaskQueued {
		t.Fatalf("a task queued in the moved state was %s, want left queued", s.Status)
	}
}
