package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A task's commands on this machine are recorded while they run; once the
// task's process is gone (its lock let go), the rescue kills the groups
// still running, but never a process whose pid was used again, and
// removes the task's directory.
func TestDeadTaskProcessesAreKilled(t *testing.T) {
	home := t.TempDir()
	task, err := StartTask(home, 9)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartTask(home, 9); err != ErrTaskRunning {
		t.Fatalf("a second StartTask of a running task: %v, want ErrTaskRunning", err)
	}
	if _, err := ClaimDeadTask(home, 9); err != ErrTaskRunning {
		t.Fatalf("ClaimDeadTask of a running task: %v, want ErrTaskRunning", err)
	}
	ctx := WithTask(context.Background(), task)
	done := make(chan error, 1)
	go func() {
		_, err := NewLocal().Run(ctx, Command{Name: "sh", Args: []string{"-c", "sleep 60 & wait"}, Timeout: time.Minute})
		done <- err
	}()
	procs := filepath.Join(TaskDir(home, 9), taskProcsName)
	var leader int
	for deadline := time.Now().Add(10 * time.Second); leader == 0; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(procs)
		fmt.Sscanf(string(b), "%d", &leader)
		if time.Now().After(deadline) {
			t.Fatal("the command was not recorded")
		}
	}
	for len(groupMembers(leader)) < 2 { // sh and its sleep
		time.Sleep(10 * time.Millisecond)
	}
	// A line for a pid that runs but started at another time: this test
	// process, which must survive.
	b, _ := os.ReadFile(procs)
	if err := os.WriteFile(procs, append(b, fmt.Sprintf("%d 1\n", os.Getpid())...), 0o600); err != nil {
		t.Fatal(err)
	}
	task.lock.Close() // the task's process "died"

	d, err := ClaimDeadTask(home, 9)
	if err != nil {
		t.Fatal(err)
	}
	killed, err := d.KillProcesses(context.Background())
	if err != nil || len(killed) != 1 || !strings.HasPrefix(killed[0], fmt.Sprintf("process group %d (sh)", leader)) {
		t.Fatalf("killed %v, %v; want process group %d (sh) only", killed, err, leader)
	}
	if m := groupMembers(leader); len(m) != 0 {
		t.Fatalf("process group %d still has %v", leader, m)
	}
	if err := <-done; err == nil {
		t.Fatal("the killed command reported success")
	}
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(TaskDir(home, 9)); !os.IsNotExist(err) {
		t.Fatalf("the dead task's directory after Release: %v", err)
	}
	// A task that left no directory has nothing to claim.
	if d, err := ClaimDeadTask(home, 10); err != nil || d.Release() != nil {
		t.Fatalf("ClaimDeadTask of a task without a directory: %v", err)
	}
}
