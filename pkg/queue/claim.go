package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// claims is what this dispatcher claims tasks as: its worker, and a lease
// of Lease from now.
func (d *Dispatcher) claims() store.Claim {
	now := d.now()
	return store.Claim{Worker: d.worker(), Now: now, LeaseUntil: now.Add(d.lease()), Master: Master()}
}

// TiedElsewhere names the master a task on backup b must be tied to when
// this master (me) cannot do it: b's archive was written by another
// master and is not at its path here (that master's backups directory is
// not shared with this one), or, for a delete (dir: this master's
// backups directory; "" for a restore), is not in dir, the one directory
// a master deletes archives from. "" when any master can: the archive
// is this master's, or was recorded before masters were, or is here.
func TiedElsewhere(b *entities.Backup, me, dir string) string {
	if b.Master == "" || b.Master == me {
		return ""
	}
	if dir != "" && filepath.Dir(filepath.Clean(b.Path)) != filepath.Clean(dir) {
		return b.Master
	}
	if _, err := os.Stat(b.Path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return b.Master
}

// TiedError says that a task is tied to another master (Task.Master):
// only that master runs it.
type TiedError struct{ Task *entities.Task }

func (e *TiedError) Error() string {
	return fmt.Sprintf("task %d (%s %s) is tied to master %s: only that master runs it, and this is master %s", e.Task.ID, e.Task.Type, e.Task.Target, e.Task.Master, Master())
}

// TiedHint is what to do with task t, tied to a master that is not this
// one: let that master run it, or cancel it.
func TiedHint(t *entities.Task) (string, []entities.Action) {
	id := strconv.FormatInt(t.ID, 10)
	return fmt.Sprintf("master %s runs it at its next queue run (hosting dispatch, or hosting queued, there); if that master is gone for good, cancel it: the later tasks of %s %s wait for it (docs/masters.md)", t.Master, t.TargetKind, t.Target),
		[]entities.Action{entities.Do("task.show", id), entities.Do("task.cancel", id)}
}

// ErrBusy is matched (errors.Is) by every *BusyError.
var ErrBusy = errors.New("target is busy")

// BusyError says that a task cannot run now because another task holds its
// target: one is running on it, or one was queued on it earlier and must
// run first. The CLI maps it to exit code 4.
type BusyError struct {
	Task   *entities.Task // the task that was asked to run
	Holder *entities.Task // the task in its way
	Hint   string
	Fix    []entities.Action
}

func (e *BusyError) Error() string {
	h := e.Holder
	if h.Status == entities.TaskProcessing {
		return fmt.Sprintf("%s %s is busy: task %d (%s) is running on it", e.Task.TargetKind, e.Task.Target, h.ID, h.Type)
	}
	if h.Master != "" && h.Master != Master() {
		return fmt.Sprintf("%s %s is busy: task %d (%s) was queued on it earlier, tied to master %s, and runs first", e.Task.TargetKind, e.Task.Target, h.ID, h.Type, h.Master)
	}
	return fmt.Sprintf("%s %s is busy: task %d (%s) was queued on it earlier and runs first", e.Task.TargetKind, e.Task.Target, h.ID, h.Type)
}

// Is lets errors.Is(err, ErrBusy) match.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

func newBusyError(t, holder *entities.Task) *BusyError {
	if holder.Status == entities.TaskQueued && holder.Master != "" && holder.Master != Master() {
		hint, fix := TiedHint(holder)
		return &BusyError{Task: t, Holder: holder, Hint: fmt.Sprintf("task %d stays queued behind it: %s", t.ID, hint), Fix: fix}
	}
	if holder.Status == entities.TaskQueued {
		return &BusyError{Task: t, Holder: holder, Hint: fmt.Sprintf("task %d stays queued behind it: run both, or cancel it", t.ID),
			Fix: []entities.Action{entities.Do("hosting.dispatch", ""), entities.Do("task.cancel", fmt.Sprint(t.ID))}}
	}
	return &BusyError{Task: t, Holder: holder, Hint: fmt.Sprintf("task %d stays queued and runs after it: follow task %d, then run the queue (or cancel task %d)", t.ID, holder.ID, t.ID),
		Fix: []entities.Action{entities.Do("task.log", fmt.Sprint(holder.ID), "follow"), entities.Do("hosting.dispatch", ""), entities.Do("task.cancel", fmt.Sprint(t.ID))}}
}

// WorkerID names this process as a task's worker: "pid@master/machine"
// (Master, Machine). The rescuer of the same master on the same machine
// uses the pid to tell a dead dispatcher at once, without waiting for its
// lease to run out.
func WorkerID() string {
	return strconv.Itoa(os.Getpid()) + "@" + Master() + "/" + Machine()
}

// masterName is SetMaster's name.
var masterName atomic.Pointer[string]

// SetMaster names this master (the master key of its configuration), for
// Master.
func SetMaster(name string) { masterName.Store(&name) }

// Master names this master: SetMaster's name, else AEGIR_MASTER when set,
// else its host name.
// Masters that share a state on one machine (or machines with one host
// name) each need their own: a rescuer tells a worker of its own master
// by this name, and judges one of another master by its lease alone.
func Master() string {
	if m := masterName.Load(); m != nil && *m != "" {
		return *m
	}
	if m := os.Getenv("AEGIR_MASTER"); m != "" {
		return m
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host
}

// ProcessAlive reports whether process pid of this host runs (when in
// doubt, true).
func ProcessAlive(pid int) bool { return processAlive(pid) }

// worker is a task's worker, read from its record.
type worker struct {
	pid     int
	master  string
	machine string // "" in a record of an aegir from before machines were recorded
}

// parseWorker splits "pid@master/machine", or "pid@master" as aegir wrote
// it before it recorded the machine.
func parseWorker(w string) (worker, bool) {
	p, rest, found := strings.Cut(w, "@")
	if !found {
		return worker{}, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		return worker{}, false
	}
	m, machine, _ := strings.Cut(rest, "/")
	return worker{pid: n, master: m, machine: machine}, true
}

// local reports whether w is a process of this master on this machine,
// whose pid this process can check. A worker recorded without its machine
// is not: the lease decides.
func (w worker) local() bool {
	return w.master == Master() && w.machine != "" && w.machine == Machine()
}

// namesake reports whether w is a process of another master with this
// master's name: of another machine (or PID namespace), not this machine
// before a reboot, nor recorded by an older aegir, which did not record
// machines.
func (w worker) namesake() bool {
	return w.master == Master() && w.machine != "" && w.machine != Machine() && !earlierBoot(w.machine)
}
