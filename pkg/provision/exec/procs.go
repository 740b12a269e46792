package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The process groups of the commands a task runs on this machine, kept
// in its directory (Task), so that the rescue of a task whose dispatcher
// died can kill those still running (DeadTask.KillProcesses).

// started records the process group of a command this task started here;
// ended forgets it. The record is rewritten whole each time.
func (t *Task) started(pid int) {
	st, err := procStartTime(pid)
	if err != nil {
		return // already gone
	}
	t.update(func() { t.procs[pid] = st })
}

func (t *Task) ended(pid int) { t.update(func() { delete(t.procs, pid) }) }

// update changes the records with f and writes them.
func (t *Task) update(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f()
	t.saveProcs()
}

// RemoteProcess is the process group of a command a task runs on a
// remote server: the session's shell, which execs the command (or sudo,
// or env, that runs it).
type RemoteProcess struct {
	Host string // Executor.Host of the server
	User string // the user the kill runs as: the command's
	PID  string
	Name string // the program, which the leader's command line names
}

// startedRemote and endedRemote are started and ended for a command on
// another server: kept in the task's record on this machine, or, with
// RemoteRecords (KeepRemoteIn), there (remoteSync) instead.
func (t *Task) startedRemote(p RemoteProcess) {
	if t.remote == nil {
		t.update(func() { t.rprocs[p] = true })
		return
	}
	t.mu.Lock()
	t.rprocs[p] = true
	t.mu.Unlock()
	t.remote.poke()
}

func (t *Task) endedRemote(p RemoteProcess) {
	if t.remote == nil {
		t.update(func() { delete(t.rprocs, p) })
		return
	}
	t.mu.Lock()
	delete(t.rprocs, p)
	t.mu.Unlock()
	t.remote.poke()
}

// RemoteRecords keeps the records of the process groups tasks run on
// remote servers where every master sharing the state reads them, so that
// the rescue of a task whose master died, run by another master, kills
// those still running there. The front end gives one over the state;
// without one, they are kept with the local ones in the task's directory
// on this machine, which only this machine's rescue reads. Each call is
// idempotent.
type RemoteRecords interface {
	// Add records ps as task id's.
	Add(ctx context.Context, id int64, ps []RemoteProcess) error
	// Remove forgets ps of task id's.
	Remove(ctx context.Context, id int64, ps []RemoteProcess) error
	// List is task id's records.
	List(ctx context.Context, id int64) ([]RemoteProcess, error)
	// Forget forgets every record of task id's.
	Forget(ctx context.Context, id int64) error
}

// KeepRemoteIn keeps the records of the task's commands on remote servers
// in r instead of its directory here. Call it before the task's first
// command.
func (t *Task) KeepRemoteIn(r RemoteRecords) {
	if t == nil || r == nil {
		return
	}
	t.remote = &remoteSync{t: t, recs: r, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), written: map[RemoteProcess]bool{}}
	go t.remote.run()
}

// remoteSync writes a task's remote process groups to its RemoteRecords
// behind its commands, one write at a time, remoteSyncDelay after a
// change: a command waits for no write (a record costs it a channel
// send), changes that come together are written together, and a command
// that starts and ends within the delay (most do) is never written. The
// price is that delay (and one write), during which a master that dies
// leaves a command just started unrecorded.
type remoteSync struct {
	t       *Task
	recs    RemoteRecords
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	written map[RemoteProcess]bool // what recs holds; under t.mu
}

// remoteSyncDelay is how long remoteSync waits after a change before it
// writes.
const remoteSyncDelay = 100 * time.Millisecond

func (r *remoteSync) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run writes what changed at each poke; a write that failed is tried
// again a second later.
func (r *remoteSync) run() {
	defer close(r.done)
	var retry <-chan time.Time
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		case <-retry:
		}
		retry = nil
		select {
		case <-r.stop:
			return
		case <-time.After(remoteSyncDelay):
		}
		if r.flush() != nil {
			retry = time.After(time.Second)
		}
	}
}

// flush adds the groups started since the last write and removes those
// ended.
func (r *remoteSync) flush() error {
	t := r.t
	t.mu.Lock()
	var add, rm []RemoteProcess
	for p := range t.rprocs {
		if !r.written[p] {
			add = append(add, p)
		}
	}
	for p := range r.written {
		if !t.rprocs[p] {
			rm = append(rm, p)
		}
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(add) > 0 {
		if err := r.recs.Add(ctx, t.ID, add); err != nil {
			return err
		}
		t.mu.Lock()
		for _, p := range add {
			r.written[p] = true
		}
		t.mu.Unlock()
	}
	if len(rm) > 0 {
		if err := r.recs.Remove(ctx, t.ID, rm); err != nil {
			return err
		}
		t.mu.Lock()
		for _, p := range rm {
			delete(r.written, p)
		}
		t.mu.Unlock()
	}
	return nil
}

// close stops the writes and forgets the task's records: it ends, its
// commands with it.
func (r *remoteSync) close(ctx context.Context) {
	close(r.stop)
	<-r.done
	_ = r.recs.Forget(ctx, r.t.ID)
}

// remoteLinePrefix starts a line of the record that is a RemoteProcess,
// its fields separated by tabs.
const remoteLinePrefix = "ssh\t"

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
	for p := range t.rprocs {
		if !strings.ContainsAny(p.Host+p.User+p.PID+p.Name, "\t\n") {
			b.WriteString(remoteLinePrefix + strings.Join([]string{p.Host, p.User, p.PID, p.Name}, "\t") + "\n")
		}
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
		if strings.HasPrefix(line, remoteLinePrefix) {
			continue // RemoteProcesses
		}
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

// RemoteProcesses lists the process groups the dead task recorded on
// other servers: in its directory here, and in d.Remote.
func (d *DeadTask) RemoteProcesses(ctx context.Context) ([]RemoteProcess, error) {
	out := d.recordedRemote()
	if d.Remote == nil {
		return out, nil
	}
	more, err := d.Remote.List(ctx, d.ID)
	for _, p := range more {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, err
}

// recordedRemote lists the process groups on other servers in the dead
// task's record here.
func (d *DeadTask) recordedRemote() []RemoteProcess {
	b, err := os.ReadFile(filepath.Join(d.dir, taskProcsName))
	if err != nil {
		return nil
	}
	var out []RemoteProcess
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, remoteLinePrefix)
		if !ok {
			continue
		}
		f := strings.Split(rest, "\t")
		if len(f) != 4 {
			continue
		}
		if _, err := strconv.Atoi(f[2]); err != nil {
			continue
		}
		out = append(out, RemoteProcess{Host: f[0], User: f[1], PID: f[2], Name: f[3]})
	}
	return out
}

// KillRemote kills (SIGKILL) the remote process group p through ex, as
// its command's user, when it still runs and its leader is still the
// task's command (its command line names p.Name: the pid was not used
// again). It reports whether it killed it.
func KillRemote(ctx context.Context, ex Executor, p RemoteProcess) (bool, error) {
	_, err := ex.Run(ctx, Command{Name: "sh", Args: []string{"-c",
		`grep -qF -- "$2" "/proc/$1/cmdline" 2>/dev/null || exit 3; kill -s KILL -- "-$1"`, "sh", p.PID, p.Name},
		User: p.User, Timeout: 30 * time.Second})
	var xe *ExitError
	if errors.As(err, &xe) && xe.ExitCode == 3 {
		return false, nil
	}
	return err == nil, err
}
