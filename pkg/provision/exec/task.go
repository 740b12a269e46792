package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

	// mkdirMu makes one server's directory at a time. It is held across
	// commands, so it is not mu: a command's start records its process
	// under mu (update), which would wait for itself.
	mkdirMu sync.Mutex
	mu      sync.Mutex
	homes   map[string]string      // by Executor.Host(), the aegir homes of servers other than this one, when known
	dirs    map[string]remoteDir   // by Executor.Host(), dirs made on servers other than this one
	procs   map[int]uint64         // process group (its leader's pid) -> the leader's start time
	rprocs  map[RemoteProcess]bool // the process groups of its commands on other servers
	remote  *remoteSync            // where rprocs are kept, when not in the record here (KeepRemoteIn)
}

// SetHome says the aegir home of the remote server whose executor's Host
// is host (its --remote-home); a server without one has its task
// directories under .aegir in its SSH user's home.
func (t *Task) SetHome(host, home string) {
	if t == nil || home == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.homes[host] = home
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
	t := &Task{ID: id, Home: home, dir: TaskDir(home, id), homes: map[string]string{}, dirs: map[string]remoteDir{}, procs: map[int]uint64{}, rprocs: map[RemoteProcess]bool{}}
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
	f, err := LockFile(filepath.Join(dir, taskLockName))
	if errors.Is(err, ErrLocked) {
		return nil, ErrTaskRunning
	}
	return f, err
}

// ErrLocked is LockFile's answer when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// LockFile opens (creating it, 0600) the lock file p on this machine and
// takes its lock without waiting. The lock goes with the file, and with
// the process.
func LockFile(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
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
	t.mkdirMu.Lock()
	defer t.mkdirMu.Unlock()
	t.mu.Lock()
	d, made := t.dirs[ex.Host()]
	home := t.homes[ex.Host()]
	t.mu.Unlock()
	if made {
		return d.dir, nil
	}
	dir := ""
	if home != "" {
		dir = TaskDir(home, t.ID)
	} else {
		var err error
		if dir, err = RemoteTaskDir(ctx, ex, t.ID); err != nil {
			return "", err
		}
	}
	if err := ex.MkdirAll(ctx, dir, 0o700); err != nil {
		return "", fmt.Errorf("making the task's temporary directory %s on %s: %w", dir, ex.Host(), err)
	}
	if err := ex.Chmod(ctx, dir, 0o700); err != nil {
		return "", fmt.Errorf("chmod 700 %s on %s: %w", dir, ex.Host(), err)
	}
	t.mu.Lock()
	t.dirs[ex.Host()] = remoteDir{ex: ex, dir: dir}
	t.mu.Unlock()
	return dir, nil
}

// RemoteTaskDir is the directory of task id on a remote server that has
// no aegir home of its own: under .aegir in its SSH user's home.
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
	if t.remote != nil {
		t.remote.close(ctx)
	}
	_ = os.RemoveAll(t.dir)
	_ = t.lock.Close()
}

// DeadTask is the rescue's hold on the temporary files of a task whose
// dispatcher died.
type DeadTask struct {
	ID   int64
	Home string
	// Remote, if set, holds the records of the dead task's process
	// groups on remote servers (Task.KeepRemoteIn): RemoteProcesses reads
	// them, Release forgets them.
	Remote RemoteRecords
	dir    string
	lock   *os.File
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

// Dir is the dead task's directory on this machine.
func (d *DeadTask) Dir() string { return d.dir }

// Release removes the dead task's directory on this machine and lets the
// lock go, and forgets its records in d.Remote.
func (d *DeadTask) Release() error {
	var err error
	if d.Remote != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = d.Remote.Forget(ctx, d.ID)
		cancel()
	}
	if d.lock == nil {
		return err
	}
	if rerr := os.RemoveAll(d.dir); rerr != nil {
		err = rerr
	}
	_ = d.lock.Close()
	d.lock = nil
	return err
}

// Unlock lets the lock go and keeps the dead task's directory, with its
// record of processes, for a later rescue.
func (d *DeadTask) Unlock() {
	if d.lock != nil {
		_ = d.lock.Close()
		d.lock = nil
	}
}

// TaskID is the id of ctx's task; 0 when it has none.
func TaskID(ctx context.Context) int64 {
	if t := taskOf(ctx); t != nil {
		return t.ID
	}
	return 0
}
