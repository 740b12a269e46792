package tasks

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// task.rescue leaves a task that still runs in another process (it holds
// its directory's lock) alone, and says so; once that task is dead, it
// removes what the task left: its directory, the archive it was writing,
// its site's stale lock.
func TestTaskRescue(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	backups := filepath.Join(home, "backups")
	c := &provision.Job{Task: provision.TaskRescue, TaskID: 5, Site: provision.SiteSpec{Domain: "left.test"}, Backup: provision.BackupSpec{Dir: backups}}
	live, err := exec.StartTask(home, 5)
	if err != nil {
		t.Fatal(err)
	}
	cnf := filepath.Join(exec.TaskDir(home, 5), "aegir-db.x", "my.cnf")
	archive := filepath.Join(backups, ".left.test-20260101-000000.tar.gz.tmp-task-5-123")
	other := filepath.Join(backups, ".left.test-20260101-000000.tar.gz.tmp-task-55-123")
	lock := filepath.Join(home, "journal", "site-left.test.lock")
	for _, p := range []string{cnf, archive, other, lock} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res := engine.Run(ctx, home, c, nil, nil)
	if res.Status != provision.StatusWarning || res.Changes == nil || !res.Changes.StillRunning {
		t.Fatalf("rescue of a running task: %+v", res)
	}
	for _, p := range []string{cnf, archive, lock} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the rescue of a running task removed %s", p)
		}
	}
	// The task's process dies: its lock goes, its files stay.
	closeLockOnly(t, live)
	res = engine.Run(ctx, home, c, nil, nil)
	if res.Status == provision.StatusError || (res.Changes != nil && res.Changes.StillRunning) {
		t.Fatalf("rescue of a dead task: %+v", res)
	}
	for _, p := range []string{exec.TaskDir(home, 5), archive, lock} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("the rescue left %s", p)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the rescue removed another task's archive: %v", err)
	}
}

// closeLockOnly lets a running task's lock go as its process's death
// would, leaving its directory.
func closeLockOnly(t *testing.T, live *exec.Task) {
	t.Helper()
	dir := exec.TaskDir(live.Home, live.ID)
	keep := dir + ".keep"
	if err := os.Rename(dir, keep); err != nil {
		t.Fatal(err)
	}
	live.Close(context.Background()) // removes nothing: the directory is elsewhere
	if err := os.Rename(keep, dir); err != nil {
		t.Fatal(err)
	}
}
