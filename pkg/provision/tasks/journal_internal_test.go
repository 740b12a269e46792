package tasks

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
)

// A rescue never plays back the journal of a move that still runs (its
// process holds the journal's lock): it says so and leaves the journal;
// once the lock is free, the journal is played back (here: read, and
// refused as damaged, which shows it was reached).
func TestRescueWaitsForARunningMove(t *testing.T) {
	home := t.TempDir()
	p := journalPath(home, 7)
	lk, err := lockJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log []string
	env := &engine.Env{Home: home, Log: provision.LoggerFunc(func(level, msg string) { log = append(log, level+": "+msg) })}
	c := &provision.Job{Task: "site.rescue", TaskID: 7}
	if _, err := lockJournal(p); err != errLocked {
		t.Fatalf("a second lock: %v, want errLocked", err)
	}
	ch, err := siteRescue(context.Background(), env, c)
	if err != nil || ch != nil || len(log) != 1 || !strings.Contains(log[0], "task 7 still runs in another process") {
		t.Fatalf("rescue while the move runs: %v %v %q", ch, err, log)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the journal of the running move: %v", err)
	}
	unlockJournal(lk)
	if _, err := siteRescue(context.Background(), env, c); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Fatalf("rescue once the lock is free: %v, want the journal read", err)
	}
}
