package tasks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/backup"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() {
	// task.rescue removes what a task whose dispatcher died left behind
	// (the front end runs it first in its rescue of every dead task, with
	// the dead task's context and id).
	engine.Register(provision.TaskRescue, taskRescue)
}

// taskRescue kills the process groups the dead task left running (an
// installer, a dump), so that nothing writes on while its work is undone,
// then removes its temporary files: its directories on the master and on
// its servers (credentials files, dump FIFOs), the backup archive it was
// writing, and the locks it held. Each removal is logged.
func taskRescue(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	if env.Home == "" || c.TaskID == 0 {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give task_id, the id of the dead task, and run it with its aegir home",
			"task.rescue needs the dead task's id and the aegir home it ran with")
	}
	d, err := exec.ClaimDeadTask(env.Home, c.TaskID)
	if errors.Is(err, exec.ErrTaskRunning) {
		env.Logf(provision.LevelWarning, "task %d still runs in another process: it removes its own files; nothing done here", c.TaskID)
		return &provision.Changes{StillRunning: true}, nil
	}
	if err != nil {
		return nil, err
	}
	// Its process groups on remote servers, which any master reads when
	// they are in the state.
	d.Remote = env.Processes
	killed, kerr := d.KillProcesses(ctx)
	for _, k := range killed {
		env.Logf(provision.LevelWarning, "killed %s, which task %d had started and left running", k, c.TaskID)
	}
	if kerr != nil {
		d.Unlock() // the record of what to kill stays for the next rescue
		return nil, provision.Errorf(provision.ErrCommand, "kill it by hand (kill -9 -PGID), then run the queue again",
			"cannot stop what task %d left running: %v", c.TaskID, kerr).With(entities.Do("hosting.dispatch", ""))
	}
	var left leftovers
	left.dir(d.Dir(), "lock", "processes")
	remote, rerr := d.RemoteProcesses(ctx)
	if rerr != nil {
		env.Logf(provision.LevelWarning, "cannot read the record of the processes task %d ran on its servers: %v; any of them still running there is left alone", c.TaskID, rerr)
	}
	reached := map[string]bool{}
	for _, s := range rescueServers(c) {
		if h := rescueRemote(ctx, env, s, c.TaskID, remote); h != "" {
			reached[h] = true
		}
	}
	for _, p := range remote {
		if !reached[p.Host] {
			env.Logf(provision.LevelWarning, "task %d left process group %s (%s) on %s, which this rescue does not reach; if it still runs, kill it there by hand: kill -9 -%s",
				c.TaskID, p.PID, p.Name, p.Host, p.PID)
		}
	}
	if c.Backup.Dir != "" {
		temps, err := backup.TaskTemps(c.Backup.Dir, c.TaskID)
		if err != nil {
			env.Logf(provision.LevelWarning, "cannot list %s: %v", c.Backup.Dir, err)
		}
		for _, p := range temps {
			left.file(p)
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				env.Logf(provision.LevelWarning, "cannot remove the half-written archive %s: %v; remove it by hand", p, err)
			}
		}
	}
	if env.Journals != nil {
		releaseStaleLocks(ctx, env, c)
	}
	for _, p := range staleLocks(env.Home, c) {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		lk, err := lockJournal(strings.TrimSuffix(p, ".lock") + ".json")
		if err != nil {
			continue // held: a live task's
		}
		left.file(p)
		unlockJournal(lk)
	}
	if err := d.Release(); err != nil {
		env.Logf(provision.LevelWarning, "cannot remove %s: %v; remove it by hand", d.Dir(), err)
	}
	if len(left.paths) == 0 {
		env.Logf(provision.LevelInfo, "task %d left no temporary files on this machine", c.TaskID)
		return nil, nil
	}
	env.Logf(provision.LevelWarning, "removed what task %d left behind: %d files, %d bytes: %s", c.TaskID, len(left.paths), left.bytes, strings.Join(left.paths, ", "))
	return nil, nil
}

// leftovers adds up what the rescue removes.
type leftovers struct {
	paths []string
	bytes int64
}

func (l *leftovers) file(p string) {
	if fi, err := os.Lstat(p); err == nil {
		l.paths = append(l.paths, p)
		l.bytes += fi.Size()
	}
}

// dir counts the files under dir but those named skip at its top.
func (l *leftovers) dir(dir string, skip ...string) {
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		for _, s := range skip {
			if p == filepath.Join(dir, s) {
				return nil
			}
		}
		l.file(p)
		return nil
	})
}

// taskServer is a remote server of the dead task's context, with its
// aegir home when the context names one.
type taskServer struct {
	ref  provision.ServerRef
	home string
}

// rescueServers are the remote servers of the dead task's context, each
// once: where it may have left a directory of its own.
func rescueServers(c *provision.Job) []taskServer {
	refs := []taskServer{{c.Web(), c.Site.Web.Home}, {c.DB(), ""}}
	if c.HasTarget() {
		t := c.AtTarget()
		refs = append(refs, taskServer{t.Web(), c.Target.Web.Home}, taskServer{t.DB(), ""})
	}
	seen := map[string]bool{}
	var out []taskServer
	for _, r := range refs {
		key := fmt.Sprintf("%s@%s:%d %s", r.ref.SSHUser, r.ref.Host, r.ref.SSHPort, r.home)
		if r.ref.Host == "" || r.ref.IsLocal() || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, r)
	}
	return out
}

// rescueRemote kills the process groups the dead task left running on a
// remote server (procs, those of every server), then removes its
// directory there; a server that cannot be reached only gets a warning.
// It returns the server's executor's Host when it reached it.
func rescueRemote(ctx context.Context, env *engine.Env, s taskServer, id int64, procs []exec.RemoteProcess) (reached string) {
	ex, err := env.Connect(ctx, s.ref)
	if err == nil {
		reached = ex.Host()
		for _, p := range procs {
			if p.Host != ex.Host() {
				continue
			}
			if killed, kerr := exec.KillRemote(ctx, ex, p); kerr != nil {
				env.Logf(provision.LevelWarning, "could not kill process group %s (%s) on %s, which task %d left running: %v; kill it by hand: kill -9 -%s",
					p.PID, p.Name, ex.Host(), id, kerr, p.PID)
			} else if killed {
				env.Logf(provision.LevelWarning, "killed process group %s (%s) on %s, which task %d had started and left running", p.PID, p.Name, ex.Host(), id)
			}
		}
		dir := exec.TaskDir(s.home, id)
		if s.home == "" {
			dir, err = exec.RemoteTaskDir(ctx, ex, id)
		}
		if err == nil {
			if _, serr := ex.Lstat(ctx, dir); serr != nil {
				return reached // nothing there
			}
			if err = ex.RemoveAll(ctx, dir); err == nil {
				env.Logf(provision.LevelWarning, "removed %s on %s, the temporary directory task %d left there", dir, ex.Host(), id)
				return reached
			}
		}
	}
	env.Logf(provision.LevelWarning, "could not clean up after task %d on %s: %v; remove HOME/tmp/task-%d there by hand", id, s.ref.Name, err, id)
	return reached
}

// staleLocks are the lock files the dead task may have left in the
// journal directory: its own, and its site's.
func staleLocks(home string, c *provision.Job) []string {
	jp := journalPath(home, c.TaskID)
	var out []string
	if _, err := os.Stat(jp); errors.Is(err, fs.ErrNotExist) {
		// With a journal, site.rescue plays it back under that lock.
		out = append(out, strings.TrimSuffix(jp, ".json")+".lock")
	}
	domains := []string{c.Site.Domain}
	if c.Target != nil {
		domains = append(domains, c.Target.Domain)
	}
	for _, domain := range domains {
		if domain != "" && !strings.ContainsAny(domain, "/\x00") {
			out = append(out, strings.TrimSuffix(siteLockPath(home, domain), ".json")+".lock")
		}
	}
	return out
}

// releaseStaleLocks lets go the state's move locks the dead task held
// (its site's, and its task's when it left no journal for site.rescue to
// play back under that lock): each is taken over and released when its
// holder is dead (its lease run out, or a process of this host gone), and
// left alone when it is a live process's.
func releaseStaleLocks(ctx context.Context, env *engine.Env, c *provision.Job) {
	var names []string
	if _, err := env.Journals.Load(ctx, c.TaskID); errors.Is(err, engine.ErrNoJournal) {
		names = append(names, taskLockName(c.TaskID))
	}
	for _, domain := range []string{c.Site.Domain, targetDomain(c)} {
		if domain != "" {
			names = append(names, siteLockName(domain))
		}
	}
	for _, name := range names {
		if h, err := env.Journals.Lock(ctx, name, false); err == nil {
			h.Release()
		}
	}
}

func targetDomain(c *provision.Job) string {
	if c.Target != nil {
		return c.Target.Domain
	}
	return ""
}
