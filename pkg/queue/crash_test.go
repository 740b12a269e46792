package queue

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// crashChildEnv makes the test binary act as a dispatcher that runs one
// pass over the state file named in it, with a handler that never ends.
const crashChildEnv = "AEGIR_QUEUE_TEST_DISPATCHER"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	if locator := os.Getenv(masterChildEnv); locator != "" {
		os.Exit(masterChild(locator))
	}
	os.Exit(m.Run())
}

func crashChild(path string) int {
	ctx := context.Background()
	st, err := store.Open(ctx, path, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d := &Dispatcher{Store: st, Lease: time.Hour, Handler: func(ctx context.Context, t *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		log("info", "half-way through "+t.Target)
		select {} // killed here
	}}
	if _, err := d.RunOnce(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A dispatcher killed with SIGKILL mid-task leaves the task processing; the
// next pass sees its worker's pid is gone (its lease has an hour left),
// marks the task error with a hint, runs the clean-up, and goes on with the
// target's next task.
func TestKilledDispatcherIsRescued(t *testing.T) {
	st, path := newStore(t)
	ctx := context.Background()
	victim := queueTask(t, st, entities.TaskSiteMigrate, entities.TargetSite, 1)
	next := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self, "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the handler runs and its line is in the log.
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := taskLog(t, st, victim.ID)
		if len(lines) > 0 && strings.HasPrefix(lines[len(lines)-1].Message, "half-way through") {
			break
		}
		if time.Now().After(deadline) {
			_ = child.Process.Kill()
			_ = child.Wait()
			t.Fatalf("the child dispatcher did not start the task: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = child.Wait()

	left := getTask(t, st, victim.ID)
	if left.Status != entities.TaskProcessing || !strings.HasPrefix(left.Worker, strconv.Itoa(child.Process.Pid)+"@") {
		t.Fatalf("after kill -9: status %s worker %q (child pid %d)", left.Status, left.Worker, child.Process.Pid)
	}

	var cleaned []*entities.Task
	d := &Dispatcher{Store: st, Lease: time.Hour, Handler: succeed, Cleanup: func(_ context.Context, t *entities.Task) (bool, error) {
		cleaned = append(cleaned, t)
		return false, nil
	}}
	sum, err := d.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := getTask(t, st, victim.ID)
	if got.Status != entities.TaskError || got.Error != "dispatcher died while running this task" {
		t.Fatalf("killed task: %s %q", got.Status, got.Error)
	}
	if len(got.Fix) != 2 || got.Fix[1].Verb != "task.retry" || got.Fix[1].Target != fmt.Sprint(victim.ID) {
		t.Fatalf("hint %q, fix %+v: no retry of task %d", got.Hint, got.Fix, victim.ID)
	}
	if len(sum.Rescued) != 1 || sum.Rescued[0] != victim.ID || sum.Ran != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if len(cleaned) != 1 || cleaned[0].ID != victim.ID || cleaned[0].Type != entities.TaskSiteMigrate {
		t.Fatalf("clean-up ran for %+v", cleaned)
	}
	lines := taskLog(t, st, victim.ID)
	if last := lines[len(lines)-2]; last.Level != "error" || !strings.Contains(last.Message, "is no longer running") {
		t.Fatalf("log does not say why: %+v", lines)
	}
	if s := getTask(t, st, next.ID); s.Status != entities.TaskSuccess {
		t.Fatalf("the site's next task is %s after the rescue", s.Status)
	}
	// A second pass rescues nothing more.
	if sum, _ := d.RunOnce(ctx); len(sum.Rescued) != 0 || len(cleaned) != 1 {
		t.Fatalf("second pass rescued %v", sum.Rescued)
	}
}

// A task held by another host's dispatcher is left alone while its lease
// holds, and rescued once it ran out.
func TestExpiredLeaseIsRescued(t *testing.T) {
	st, clk, task := claimedElsewhere(t, entities.TaskSiteBackup, 2*time.Minute)
	ctx := context.Background()
	var cleaned int
	d := &Dispatcher{Store: st, Handler: succeed, Cleanup: func(context.Context, *entities.Task) (bool, error) {
		cleaned++
		return false, fmt.Errorf("backup file half written")
	}}
	clk.Add(time.Minute)
	if r, err := d.Rescue(ctx); err != nil || len(r) != 0 {
		t.Fatalf("rescued %v (%v) with a minute of lease left", r, err)
	}
	clk.Add(time.Minute)
	r, err := d.Rescue(ctx)
	if err != nil || len(r) != 1 || r[0].ID != task.ID || cleaned != 1 {
		t.Fatalf("rescue after the lease: %v, %v, cleaned %d", r, err, cleaned)
	}
	got := getTask(t, st, task.ID)
	if got.Status != entities.TaskError || got.Error != MsgDied || got.Finished == nil || !got.Finished.Equal(clk.Now()) {
		t.Fatalf("rescued task %+v", got)
	}
	lines := taskLog(t, st, task.ID)
	if len(lines) != 2 || !strings.Contains(lines[0].Message, "stopped renewing") || lines[1].Level != "warning" || !strings.Contains(lines[1].Message, "half written") {
		t.Fatalf("log %+v", lines)
	}
}

// notifyCount counts failure notices.
type notifyCount struct{ n int }

func (c *notifyCount) Notify(context.Context, *Failure) error { c.n++; return nil }

// A dead task whose work turned out to be done (the clean-up finished it)
// ends in warning, with no error, and nobody is told of a failure.
func TestRescueOfFinishedTask(t *testing.T) {
	st, clk, task := claimedElsewhere(t, entities.TaskSiteRestore, time.Minute)
	ctx := context.Background()
	notices := &notifyCount{}
	d := &Dispatcher{Store: st, Handler: succeed, Notify: notices, Cleanup: func(context.Context, *entities.Task) (bool, error) { return true, nil }}
	clk.Add(2 * time.Minute)
	if r, err := d.Rescue(ctx); err != nil || len(r) != 1 || r[0].Status != entities.TaskWarning {
		t.Fatalf("rescue: %v %v", r, err)
	}
	got := getTask(t, st, task.ID)
	lines := taskLog(t, st, task.ID)
	if got.Status != entities.TaskWarning || got.Error != "" || notices.n != 0 || !strings.Contains(lines[len(lines)-1].Message, "nothing to retry") {
		t.Fatalf("finished task after the rescue: %+v, %d notices, log %+v", got, notices.n, lines)
	}
}

// claimedElsewhere queues a task of type typ and has it claimed by a
// dispatcher on another host, with a lease of lease, on a store whose
// clock the test moves.
func claimedElsewhere(t *testing.T, typ string, lease time.Duration) (*store.Store, *clock, *entities.Task) {
	t.Helper()
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	task := queueTask(t, st, typ, entities.TargetSite, 1)
	if _, err := claim(context.Background(), st, clk.Now(), lease, "4242@other-host", 1); err != nil {
		t.Fatal(err)
	}
	return st, clk, task
}
