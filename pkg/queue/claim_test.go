package queue

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func ids(ts []*entities.Task) []int64 {
	out := []int64{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func sameIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The per-target rule: one task of a target at a time, the oldest first;
// site 1 and platform 1 are different targets.
func TestClaimPerTargetOrder(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	t1 := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	t2 := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 2)
	t3 := queueTask(t, st, entities.TaskSiteBackup, entities.TargetSite, 1)
	t4 := queueTask(t, st, entities.TaskPlatformVerify, entities.TargetPlatform, 1)
	t5 := queueTask(t, st, entities.TaskSiteCron, entities.TargetSite, 1)

	got, err := claim(ctx, st, now, time.Minute, "w", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{t1.ID, t2.ID, t4.ID}; !sameIDs(ids(got), want) {
		t.Fatalf("first claim got %v, want %v", ids(got), want)
	}
	for _, c := range got {
		if c.Status != entities.TaskProcessing || c.Attempt != 1 || c.Worker != "w" || c.Started == nil || c.LeaseUntil == nil {
			t.Fatalf("claimed task not marked: %+v", c)
		}
		if want := now.Add(time.Minute).UnixMilli(); c.LeaseUntil.UnixMilli() != want {
			t.Fatalf("lease %v, want %v", c.LeaseUntil.UnixMilli(), want)
		}
	}
	// Site 1 is busy: nothing more.
	if got, _ := claim(ctx, st, now, time.Minute, "w", 10); len(got) != 0 {
		t.Fatalf("claimed %v while every target is busy", ids(got))
	}
	// Its end frees site 1 for t3, not t5.
	finishTask(t, st, t1.ID, "w", entities.TaskSuccess, "")
	if got, _ := claim(ctx, st, now, time.Minute, "w", 10); !sameIDs(ids(got), []int64{t3.ID}) {
		t.Fatalf("after t1 got %v, want [%d]", ids(got), t3.ID)
	}
	// A failed task frees the target too.
	finishTask(t, st, t3.ID, "w", entities.TaskError, "boom")
	if got, _ := claim(ctx, st, now, time.Minute, "w", 1); !sameIDs(ids(got), []int64{t5.ID}) {
		t.Fatalf("after t3 got %v, want [%d]", ids(got), t5.ID)
	}
	// The limit is honoured, oldest first.
	a := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 7)
	queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 8)
	if got, _ := claim(ctx, st, now, time.Minute, "w", 1); !sameIDs(ids(got), []int64{a.ID}) {
		t.Fatalf("limit 1 got %v, want [%d]", ids(got), a.ID)
	}
	// A cancelled task does not hold its target.
	c1 := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 9)
	c2 := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 9)
	if err := st.CancelTask(ctx, c1.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = claim(ctx, st, now, time.Minute, "w", 10)
	if len(got) != 2 || got[1].ID != c2.ID {
		t.Fatalf("after cancelling %d got %v, want [site 8's, %d]", c1.ID, ids(got), c2.ID)
	}
}

func TestRunTaskBusy(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	d, ran := countingDispatcher(st)

	// Running holder (another live worker: this very process).
	first := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	if _, err := claim(ctx, st, time.Now(), time.Hour, WorkerID(), 1); err != nil {
		t.Fatal(err)
	}
	second := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	got, err := d.RunTask(ctx, second.ID)
	var be *BusyError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &be) {
		t.Fatalf("RunTask on a busy site: %v, want ErrBusy", err)
	}
	if be.Holder.ID != first.ID || be.Hint == "" || got.Status != entities.TaskQueued {
		t.Fatalf("busy error %+v (%q), task %s", be.Holder, be.Hint, got.Status)
	}
	if want := "site site-1 is busy: task " + strconv.FormatInt(first.ID, 10) + " (site.install) is running on it"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}

	// Queued holder: an older task on the same target runs first.
	third := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	finishTask(t, st, first.ID, WorkerID(), entities.TaskSuccess, "")
	_, err = d.RunTask(ctx, third.ID)
	if !errors.As(err, &be) || be.Holder.ID != second.ID || be.Holder.Status != entities.TaskQueued {
		t.Fatalf("RunTask behind a queued task: %v", err)
	}
	if *ran != 0 {
		t.Fatalf("handler ran %d times for busy targets", *ran)
	}

	// Now in order: both run.
	for _, id := range []int64{second.ID, third.ID} {
		got, err := d.RunTask(ctx, id)
		if err != nil || got.Status != entities.TaskSuccess {
			t.Fatalf("RunTask(%d) = %v, %v", id, got, err)
		}
	}
	// Not queued any more: a conflict, not a second run.
	_, err = d.RunTask(ctx, third.ID)
	var ce *store.ConflictError
	if !errors.As(err, &ce) || *ran != 2 {
		t.Fatalf("RunTask on a finished task: %v (ran %d)", err, *ran)
	}
	_, err = d.RunTask(ctx, 9999)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RunTask on an unknown task: %v", err)
	}
}

// A holder left by a dead process on this host does not keep the target
// busy: RunTask rescues it and runs.
func TestRunTaskRescuesDeadHolder(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	ghost := strconv.Itoa(dead.Process.Pid) + "@" + Master() + "/" + Machine()
	stale := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	if _, err := claim(ctx, st, time.Now(), time.Hour, ghost, 1); err != nil {
		t.Fatal(err)
	}
	next := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	d := &Dispatcher{Store: st, Handler: succeed}
	got, err := d.RunTask(ctx, next.ID)
	if err != nil || got.Status != entities.TaskSuccess {
		t.Fatalf("RunTask = %+v, %v", got, err)
	}
	if s := getTask(t, st, stale.ID); s.Status != entities.TaskError || s.Error != MsgDied {
		t.Fatalf("stale task: %s %q", s.Status, s.Error)
	}
}

// A dead pid is a dead worker only on the worker's own machine (Machine):
// a worker of this master's name on another machine, on this machine
// before a reboot, or recorded by an aegir that did not record machines
// keeps its task until its lease runs out. Another machine with this
// master's name is warned of, once.
func TestRescueChecksPidsOfThisMachineOnly(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(dead.Process.Pid)
	mine := strings.Split(Machine(), "-")
	if len(mine) != 3 {
		t.Skipf("machine %q: no boot id or PID namespace here", Machine())
	}
	other := "0badc0de-0badc0de-0badc0de"
	workers := []string{
		pid + "@" + Master() + "/" + Machine(),                        // this master here: rescued at once
		pid + "@" + Master() + "/" + other,                            // its name on another machine
		pid + "@" + Master() + "/" + mine[0] + "-0badc0de-" + mine[2], // this machine before a reboot
		pid + "@" + Master(),                                          // an older aegir's record
		pid + "@another-master/" + Machine(),                          // another master
	}
	ids := map[int64]string{}
	for i, w := range workers {
		q := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, int64(i+1))
		if c, err := claim(ctx, st, time.Now(), time.Hour, w, 1); err != nil || len(c) != 1 || c[0].ID != q.ID {
			t.Fatalf("claim as %s: %v %v", w, c, err)
		}
		ids[q.ID] = w
	}
	var warned []string
	d := &Dispatcher{Store: st, Handler: succeed, Warnf: func(format string, args ...any) { warned = append(warned, fmt.Sprintf(format, args...)) }}
	for range 2 {
		if _, err := d.Rescue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for id, w := range ids {
		want := entities.TaskProcessing
		if w == workers[0] {
			want = entities.TaskError
		}
		if s := getTask(t, st, id); s.Status != want {
			t.Errorf("task of worker %s: %s, want %s", w, s.Status, want)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], `another master named "`+Master()+`" (machine `+other+`; this one is `+Machine()+`) holds leases here`) {
		t.Errorf("warnings %q, want one of the master on machine %s", warned, other)
	}
}

// A task tied to another master is not run here: RunTask says whose it
// is (a *TiedError), and a task queued behind it on its target is busy
// with a message and hint that name that master and say how to free the
// target; neither runs.
func TestRunTaskTiedElsewhere(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	d, ran := countingDispatcher(st)
	other := Master() + "-other"
	tied, err := st.QueueTaskFor(ctx, other, entities.TaskSiteRestore, entities.TargetSite, 1, "site-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	behind := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	got, err := d.RunTask(ctx, tied.ID)
	var te *TiedError
	if !errors.As(err, &te) || got.Status != entities.TaskQueued ||
		!strings.Contains(err.Error(), "is tied to master "+other+": only that master runs it, and this is master "+Master()) {
		t.Fatalf("RunTask of a task tied to %s: %v (%+v)", other, err, got)
	}
	_, err = d.RunTask(ctx, behind.ID)
	be := &BusyError{}
	if !errors.As(err, &be) || be.Holder.ID != tied.ID ||
		err.Error() != "site site-1 is busy: task "+strconv.FormatInt(tied.ID, 10)+" (site.restore) was queued on it earlier, tied to master "+other+", and runs first" ||
		!strings.Contains(be.Hint, "master "+other+" runs it at its next queue run") || !strings.Contains(be.Hint, "cancel it") {
		t.Fatalf("RunTask behind the tied task: %v (hint %q)", err, be.Hint)
	}
	if *ran != 0 {
		t.Fatalf("the handler ran %d times", *ran)
	}
}

// countingDispatcher is a dispatcher on st whose handler counts the tasks
// it ran (*ran) and succeeds.
func countingDispatcher(st *store.Store) (d *Dispatcher, ran *int) {
	ran = new(int)
	d = &Dispatcher{Store: st, Handler: func(context.Context, *entities.Task, func(string, string, ...entities.Action)) Outcome {
		*ran++
		return Outcome{}
	}}
	return d, ran
}
