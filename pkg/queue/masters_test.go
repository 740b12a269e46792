package queue

import (
	"bufio"
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

// masterChildEnv makes the test binary act as a master: a dispatcher with
// four workers over the state named in it, passing until every task of
// the state has ended (masterTasks of them).
const masterChildEnv = "AEGIR_QUEUE_TEST_MASTER"

const masterTasks, masterTargets = 500, 50

// masterChild runs until masterTasks tasks have ended. Each task checks,
// as it starts, in the state: that no other task of its target is running
// and that no older task of its target is still queued; and logs which
// process ran it.
func masterChild(locator string) int {
	ctx := context.Background()
	st, err := store.Open(ctx, locator, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	handler := func(ctx context.Context, t *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		var running, older int
		if err := st.TestQueryRow(`SELECT COUNT(*) FROM tasks WHERE target_kind = ? AND target_id = ? AND id <> ? AND status = 'processing'`, t.TargetKind, t.TargetID, t.ID).Scan(&running); err != nil {
			return Outcome{Error: err.Error()}
		}
		if err := st.TestQueryRow(`SELECT COUNT(*) FROM tasks WHERE target_kind = ? AND target_id = ? AND id < ? AND status = 'queued'`, t.TargetKind, t.TargetID, t.ID).Scan(&older); err != nil {
			return Outcome{Error: err.Error()}
		}
		if running > 0 || older > 0 {
			log("error", fmt.Sprintf("broken rule: %d other tasks of the target running, %d older ones queued", running, older))
		}
		log("info", "ran by "+strconv.Itoa(os.Getpid()))
		time.Sleep(3 * time.Millisecond) // a little work, so that the masters overlap
		return Outcome{}
	}
	d := &Dispatcher{Store: st, Workers: 4, Lease: time.Minute, Handler: handler}
	fmt.Println("ready")
	for {
		var ended int
		if err := st.TestQueryRow(`SELECT COUNT(*) FROM tasks WHERE status NOT IN ('queued', 'processing')`).Scan(&ended); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if ended >= masterTasks {
			return 0
		}
		sum, err := d.RunOnce(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if sum.Ran == 0 {
			time.Sleep(5 * time.Millisecond) // nothing free: poll again
		}
	}
}

// Two masters (processes) with four workers each share one state and run
// 500 tasks queued on 50 targets (sites and platforms) once both are
// up: every task runs exactly once (one attempt, one "ran by" line),
// never beside another task of its target nor before an older one, and
// both masters run some. On PostgreSQL (make test's second run) this is
// issue 20's two masters.
func TestTwoMastersShareState(t *testing.T) {
	st, locator := newStore(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var children []*exec.Cmd
	var stderrs []*strings.Builder
	for i := 0; i < 2; i++ {
		c := exec.Command(self, "-test.run=^$")
		c.Env = append(os.Environ(), masterChildEnv+"="+locator)
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("master %d did not start: %q, %v: %s", i, line, err, stderr.String())
		}
		children = append(children, c)
		stderrs = append(stderrs, &stderr)
	}
	rows := make([][]any, masterTasks)
	for i := range rows {
		kind := entities.TargetSite
		if i%masterTargets >= masterTargets/2 {
			kind = entities.TargetPlatform
		}
		rows[i] = []any{kind, i % masterTargets}
	}
	if err := st.TestBatch(`INSERT INTO tasks (type, target_kind, target_id, target, created) VALUES ('site.verify', ?, ?, 'x', 0)`, rows); err != nil {
		t.Fatal(err)
	}
	for i, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("master %d: %v: %s", i, err, stderrs[i].String())
		}
	}

	tasks, err := st.ListTasks(context.Background(), store.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != masterTasks {
		t.Fatalf("%d tasks, want %d", len(tasks), masterTasks)
	}
	ranBy := map[string]int{}
	for _, task := range tasks {
		if task.Status != entities.TaskSuccess || task.Attempt != 1 {
			t.Errorf("task %d: %s after %d attempts", task.ID, task.Status, task.Attempt)
		}
		runs := 0
		for _, l := range taskLog(t, st, task.ID) {
			if strings.HasPrefix(l.Message, "broken rule") {
				t.Errorf("task %d: %s", task.ID, l.Message)
			}
			if pid, ok := strings.CutPrefix(l.Message, "ran by "); ok {
				runs++
				ranBy[pid]++
			}
		}
		if runs != 1 {
			t.Errorf("task %d ran %d times", task.ID, runs)
		}
	}
	if len(ranBy) != 2 {
		t.Errorf("tasks ran by %v: want both masters", ranBy)
	}
	t.Logf("%s state: tasks run by each master: %v", st.Dialect(), ranBy)
}
