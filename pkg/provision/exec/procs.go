package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// another server.
func (t *Task) startedRemote(p RemoteProcess) { t.update(func() { t.rprocs[p] = true }) }

func (t *Task) endedRemote(p RemoteProcess) { t.update(func() { delete(t.rprocs, p) }) }

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
// other servers.
func (d *DeadTask) RemoteProcesses() []RemoteProcess {
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
