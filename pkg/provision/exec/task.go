package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A task's temporary files and child processes.
//
// Every temporary file a task makes on a server (the database admin's
// credentials file and dump FIFO, say) lives in the task's own directory
// in the aegir home of that server, HOME/tmp/task-ID (mode 0700): the
// master's home for this machine, .aegir in the SSH user's home on a
// remote server. The directories go when the task ends, on every path
// (Task.Close). The master's also records the process groups of the
// commands the task runs here (every command runs in a group of its own),
// and holds a lock while the task runs, so that the rescue of a task whose
// dispatcher died (ClaimDeadTask) can tell it is dead, kill what it left
// running, and remove its directories.

// TaskDir is the directory of task id's temporary files under an aegir
// home.
func TaskDir(home string, id int64) string {
	return path.Join(home, "tmp", "task-"+strconv.FormatInt(id, 10))
}

const (
	taskLockName  = "lock"
	taskProcsName = "processes"
)

// Task is the temporary files and processes of one running task.
type Task struct {
	ID   int64
	Home string // the master's aegir home
	dir  string
	lock *os.File

	mu    sync.Mutex
	dirs  map[string]remoteDir // by Executor.Host(), dirs made on servers other than this one
	procs map[int]uint64       // process group (its leader's pid) -> the leader's start time
}

type remoteDir struct {
	ex  Executor
	dir string
}

// ErrTaskRunning is StartTask's and ClaimDeadTask's answer when another
// process holds the task's lock: the task still runs.
var ErrTaskRunning = errors.New("the task still runs in another process (it holds the lock of its temporary directory)")

// StartTask makes the task's directory on this machine and takes its lock.
func StartTask(home string, id int64) (*Task, error) {
	t := &Task{ID: id, Home: home, dir: TaskDir(home, id), dirs: map[string]remoteDir{}, procs: map[int]uint64{}}
	lk, err := lockTaskDir(t.dir)
	if err != nil {
		return nil, err
	}
	t.lock = lk
	return t, nil
}

// lockTaskDir makes dir (0700) and takes the lock in it without waiting.
func lockTaskDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("making the task's temporary directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, taskLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrTaskRunning
		}
		return nil, err
	}
	return f, nil
}

type taskKey struct{}

// WithTask makes t the task of ctx: TempDir and the commands run through
// Local use it.
func WithTask(ctx context.Context, t *Task) context.Context {
	if t == nil {
		return ctx
	}
	return context.WithValue(ctx, taskKey{}, t)
}

func taskOf(ctx context.Context) *Task {
	t, _ := ctx.Value(taskKey{}).(*Task)
	return t
}

// TempDir returns the directory of ctx's task on ex's server (made, 0700,
// on first use), or "" when ctx has no task (aegir provision run by hand):
// the caller then makes a temporary directory of its own.
func TempDir(ctx context.Context, ex Executor) (string, error) {
	t := taskOf(ctx)
	if t == nil {
		return "", nil
	}
	if ex.IsLocal() {
		return t.dir, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.dirs[ex.Host()]; ok {
		return d.dir, nil
	}
	dir, err := RemoteTaskDir(ctx, ex, t.ID)
	if err != nil {
		return "", err
	}
	if err := ex.MkdirAll(ctx, dir, 0o700); err != nil {
		return "", fmt.Errorf("making the task's temporary directory %s on %s: %w", dir, ex.Host(), err)
	}
	if err := ex.Chmod(ctx, dir, 0o700); err != nil {
		return "", fmt.Errorf("chmod 700 %s on %s: %w", dir, ex.Host(), err)
	}
	t.dirs[ex.Host()] = remoteDir{ex: ex, dir: dir}
	return dir, nil
}

// RemoteTaskDir is the directory of task id on a remote server: under
// .aegir in its SSH user's home.
func RemoteTaskDir(ctx context.Context, ex Executor, id int64) (string, error) {
	res, err := ex.Run(ctx, Command{Name: "printenv", Args: []string{"HOME"}, Timeout: 30 * time.Second})
	if err != nil {
		return "", fmt.Errorf("asking %s for its home directory: %w", ex.Host(), err)
	}
	home := strings.TrimSpace(string(res.Stdout))
	if !path.IsAbs(home) || path.Clean(home) == "/" || strings.ContainsAny(home, "\n\x00") {
		return "", fmt.Errorf("the SSH user of %s has no usable home directory (HOME=%q)", ex.Host(), home)
	}
	return TaskDir(path.Join(path.Clean(home), ".aegir"), id), nil
}

// Close removes the task's directories, on the other servers first, then
// here, and lets its lock go. It runs however the task ended, with a
// context of its own.
func (t *Task) Close(ctx context.Context) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	t.mu.Lock()
	for _, d := range t.dirs {
		_ = d.ex.RemoveAll(ctx, d.dir)
	}
	t.dirs = map[string]remoteDir{}
	t.mu.Unlock()
	_ = os.RemoveAll(t.dir)
	_ = t.lock.Close()
}

// started records the process group of a command this task started here;
// ended forgets it. The record is rewritten whole each time.
func (t *Task) started(pid int) {
	st, err := procStartTime(pid)
	if err != nil {
		return // already gone
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.procs[pid] = st
	t.saveProcs()
}

func (t *Task) ended(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.procs, pid)
	t.saveProcs()
}

func (t *Task) saveProcs() {
	pids := make([]int, 0, len(t.procs))
	for p := range t.procs {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	var b strings.Builder
	for _, p := range pids {
		fmt.Fprintf(&b, "%d %d\n", p, t.procs[p])
	}
	p := filepath.Join(t.dir, taskProcsName)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err == nil {
		_ = os.Rename(tmp, p)
	}
}

// procStartTime is the start time of process pid (in clock ticks since
// boot, /proc/PID/stat's 22nd field): with the pid, it names a process
// for good.
func procStartTime(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// procStat returns the fields of /proc/PID/stat after the command name:
// state is [0], the process group [2], the start time [19].
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unreadable", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: unreadable", pid)
	}
	return f, nil
}

// DeadTask is the rescue's hold on the temporary files of a task whose
// dispatcher died.
type DeadTask struct {
	ID   int64
	Home string
	dir  string
	lock *os.File
}

// ClaimDeadTask takes the lock of task id's directory on this machine. It
// answers ErrTaskRunning when the task's process still holds it (that
// process cleans up after itself), and a DeadTask with nothing to do when
// the task left no directory.
func ClaimDeadTask(home string, id int64) (*DeadTask, error) {
	d := &DeadTask{ID: id, Home: home, dir: TaskDir(home, id)}
	if _, err := os.Stat(d.dir); errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	lk, err := lockTaskDir(d.dir)
	if err != nil {
		return nil, err
	}
	d.lock = lk
	return d, nil
}

// KillProcesses kills (SIGKILL) the process groups the dead task recorded
// that still run, and waits until they are gone. It returns what it
// killed, as "process group PID (COMMAND)".
func (d *DeadTask) KillProcesses(ctx context.Context) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(d.dir, taskProcsName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var killed []string
	var groups []int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var pid int
		var start uint64
		if n, _ := fmt.Sscanf(line, "%d %d", &pid, &start); n != 2 || pid <= 1 {
			continue
		}
		// The group's leader is another process now (its pid was used
		// again): not ours. A leader that is gone may have left members
		// of its group, which no other group can have the id of.
		if st, err := procStartTime(pid); err == nil && st != start {
			continue
		}
		if len(groupMembers(pid)) == 0 {
			continue
		}
		what := fmt.Sprintf("process group %d", pid)
		if cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil {
			what += " (" + strings.TrimSpace(string(cmd)) + ")"
		}
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return killed, fmt.Errorf("killing %s: %w", what, err)
		}
		killed = append(killed, what)
		groups = append(groups, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range groups {
		for len(groupMembers(g)) > 0 {
			if time.Now().After(deadline) {
				return killed, fmt.Errorf("process group %d still runs 10 s after SIGKILL", g)
			}
			select {
			case <-ctx.Done():
				return killed, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return killed, nil
}

// groupMembers lists the live (not zombie) processes of process group
// pgid.
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || f[0] == "Z" || f[0] == "X" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// Dir is the dead task's directory on this machine.
func (d *DeadTask) Dir() string { return d.dir }

// Release removes the dead task's directory on this machine and lets the
// lock go.
func (d *DeadTask) Release() error {
	if d.lock == nil {
		return nil
	}
	err := os.RemoveAll(d.dir)
	_ = d.lock.Close()
	d.lock = nil
	return err
}

// TaskID is the id of ctx's task; 0 when it has none.
func TaskID(ctx context.Context) int64 {
	if t := taskOf(ctx); t != nil {
		return t.ID
	}
	return 0
}
