package tasks

import (
	"context"
	"os"
	"path/filepath"
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

// A journal marked done is read whichever form its changes were written
// in: the typed form, and the flat keys of an aegir before it (a move a
// crash left across an upgrade is finished with the same result).
func TestJournalDoneForms(t *testing.T) {
	home := t.TempDir()
	flat := `{"kind":"migrate","ops":[],"done":{"changes":{"site_db_name":"a_1","site_db_user":"a_1","site_db_grant_host":"localhost",
		"site_platform":"wp2","site_db_server":"db2","site_domain":"a.test","backup":{"path":"/b/a.tar.gz","size":9,"sha256":"ab","created":"2026-01-02T03:04:05Z"}}}}`
	p := journalPath(home, 8)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(flat), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := readJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	ch := j.Done.changes()
	if ch == nil || ch.Site == nil || ch.Site.DB == nil || ch.Site.DB.Name != "a_1" || ch.Site.DB.GrantHost != "localhost" || ch.Site.Platform != "wp2" ||
		ch.Site.DBServer != "db2" || ch.Site.Domain != "a.test" || ch.Backup == nil || ch.Backup.Path != "/b/a.tar.gz" || ch.Backup.Created.Year() != 2026 {
		t.Fatalf("flat journal read as %+v (site %+v)", ch, ch.Site)
	}
	// Written now: the typed form, read back the same.
	j.Done = &moveDone{Changes: ch}
	if err := j.save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), "site_db_name") || !strings.Contains(string(b), `"result"`) {
		t.Fatalf("journal written as %s", b)
	}
	j2, err := readJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := j2.Done.changes(); got.Site.DB.Name != "a_1" || got.Site.Platform != "wp2" || got.Backup.SHA256 != "ab" {
		t.Fatalf("typed journal read back as %+v", got)
	}
}

// A task's lock is named task-ID: the state's retention keeps a task
// while a lock of that name is in move_locks (pkg/store, Prune).
func TestTaskLockName(t *testing.T) {
	if got := taskLockName(42); got != "task-42" {
		t.Fatalf("taskLockName(42) = %q, want task-42 (the name pkg/store's prune looks for)", got)
	}
}
