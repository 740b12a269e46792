package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// tasks.keep and audit.keep reach the dispatcher: a duration as it is, 0
// and forever as never (-1), the default as the queue's default.
func TestDispatcherKeeps(t *testing.T) {
	for _, c := range []struct {
		tasks, audit any
		want         [2]time.Duration
	}{
		{nil, nil, [2]time.Duration{90 * 24 * time.Hour, 365 * 24 * time.Hour}},
		{"48h", "forever", [2]time.Duration{48 * time.Hour, -1}},
		{0, "0", [2]time.Duration{-1, -1}},
	} {
		a := testApp(t)
		if c.tasks != nil {
			a.cfg.Set("tasks.keep", c.tasks)
			a.cfg.Set("audit.keep", c.audit)
		}
		d, r, err := a.dispatcher()
		if err != nil {
			t.Fatal(err)
		}
		r.Pool.Close()
		if got := [2]time.Duration{d.KeepTasks, d.KeepAudit}; got != c.want {
			t.Errorf("tasks.keep %v, audit.keep %v: dispatcher keeps %v, want %v", c.tasks, c.audit, got, c.want)
		}
	}
}

// A dispatch that pruned says so on its summary line, even when it ran
// nothing; one that pruned nothing prints no line for it.
func TestSummaryTellsPrune(t *testing.T) {
	a := testApp(t)
	if err := a.printSummary(&queue.Summary{Pruned: &store.Pruned{}}); err != nil {
		t.Fatal(err)
	}
	if got := a.IO.Err.(*bytes.Buffer).String(); got != "" {
		t.Fatalf("nothing pruned: printed %q", got)
	}
	if err := a.printSummary(&queue.Summary{Pruned: &store.Pruned{Tasks: 3, LogLines: 30, Audit: 2}}); err != nil {
		t.Fatal(err)
	}
	got := a.IO.Err.(*bytes.Buffer).String()
	if want := "dispatch: ran 0 task(s), 0 failed; pruned 3 old task(s) with 30 log line(s) and 2 audit entries\n"; got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
	a.IO.Err.(*bytes.Buffer).Reset()
	if err := a.printSummary(&queue.Summary{Pruned: &store.Pruned{Processes: 4}}); err != nil {
		t.Fatal(err)
	}
	got = a.IO.Err.(*bytes.Buffer).String()
	if want := "dispatch: ran 0 task(s), 0 failed; pruned 0 old task(s) with 0 log line(s) and 0 audit entries, and 4 record(s) of remote processes of tasks gone or long ended\n"; got != want {
		t.Fatalf("only process records pruned: printed %q, want %q", got, want)
	}
}
