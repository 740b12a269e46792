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
