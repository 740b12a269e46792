package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	_ "github.com/aegir-project/aegir/pkg/provision/tasks" // registers the back end's task types
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// runOrQueue finishes a command that recorded task t: with queue it prints
// the task id for the dispatcher; otherwise it runs the task now with its
// log on stderr and exits with the task's result. Its output is one line
// (Success: site a.test installed in 0.6 s) for people; with --format,
// --fields or --field, what after returns (the changed record), the line
// then going to stderr.
func (a *App) runOrQueue(t *entities.Task, queue bool, after func() (any, error)) error {
	if t.Master != "" && t.Master != a.master() {
		return a.printTied(t) // with --queue too: this master's dispatch does not run it
	}
	if queue {
		return a.printQueued(t)
	}
	done, err := a.runTask(t)
	if err != nil {
		return err
	}
	if err := taskExit(done); err != nil {
		return err
	}
	if after == nil || a.plainTable() {
		a.taskDone(done, a.plainTable())
		return nil
	}
	v, err := after()
	if err != nil {
		return err
	}
	a.taskDone(done, false)
	if v == nil {
		return nil
	}
	return a.print(v)
}

// queueSiteTask records task typ (with opts) on site v in st, then runs
// it or, with queue, only queues it (runOrQueue).
func (a *App) queueSiteTask(st *store.Store, v *entities.Site, typ string, opts map[string]string, queue bool, after func() (any, error)) error {
	t, err := a.queueOn(st, v, typ, opts)
	if err != nil {
		return err
	}
	return a.runOrQueue(t, queue, after)
}

// queueOn records task typ (with opts) on site v: the one way every
// command (and the API) queues a site's task. An exclusive invocation
// refuses a site that has a task queued or running (*store.HeldError)
// instead of queueing behind it.
func (a *App) queueOn(st *store.Store, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	return a.queueOnFor(st, "", v, typ, opts)
}

// queueOnFor is queueOn for a task tied to master (Task.Master; "":
// none).
func (a *App) queueOnFor(st *store.Store, master string, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	if a.exclusive {
		return st.QueueSiteTaskIfFreeFor(a.ctx, master, v, typ, opts)
	}
	return st.QueueSiteTaskFor(a.ctx, master, v, typ, opts)
}

// taskDone prints the end line of a task that worked: on stdout when it
// is the command's result, else on stderr unless --quiet.
func (a *App) taskDone(t *entities.Task, result bool) {
	w := a.IO.Err
	if result {
		w = a.IO.Out
	} else if a.quiet {
		return
	}
	line := a.paint(w, output.StatusColor(entities.TaskSuccess), "Success:") + " " + taskSentence(t, true)
	if t.Status == entities.TaskWarning {
		line += fmt.Sprintf(", with %s (aegir task log %d)", a.paint(w, output.StatusColor(entities.TaskWarning), "warnings"), t.ID)
	}
	fmt.Fprintln(w, line)
}

// taskSentence names what task t did, for its end line: "site a.test
// installed in 0.6 s", or when it failed "site a.test install failed
// after 0.6 s".
func taskSentence(t *entities.Task, ok bool) string {
	noun, verb, _ := strings.Cut(t.Type, ".")
	if noun == "" || verb == "" {
		noun, verb = t.TargetKind, t.Type
	}
	var s string
	if ok {
		done, known := taskDoneWords[verb]
		if !known {
			done = verb + " done"
		}
		s = fmt.Sprintf("%s %s %s", noun, t.Target, done)
	} else {
		s = fmt.Sprintf("%s %s %s failed", noun, t.Target, verb)
	}
	if t.Started != nil && t.Finished != nil {
		if ok {
			s += " in "
		} else {
			s += " after "
		}
		s += seconds(t.Finished.Sub(*t.Started))
	}
	return s
}

// seconds is a task's duration as its end line says it: 0.6 s, 42 ms.
func seconds(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// taskDoneWords say what the verb of a task type did, for its end line.
var taskDoneWords = map[string]string{
	"verify": "verified", "import": "imported", "delete": "deleted", "install": "installed",
	"disable": "disabled", "enable": "enabled", "login-reset": "login link made", "backup": "backed up",
	"restore": "restored", "migrate": "migrated", "clone": "cloned", "cron": "cron run",
	"stats": "statistics read", "health": "health checked", "updatedb": "database updated", "cert": "certificate installed",
	"sync": "synced", "lock": "locked", "unlock": "unlocked",
}

// printQueued prints a queued task: its id alone in table format (for
// scripts: id=$(aegir site install ... --queue)), the task otherwise.
func (a *App) printQueued(t *entities.Task) error {
	if a.plainTable() {
		fmt.Fprintln(a.IO.Out, t.ID)
		a.infof("queued task %d (%s %s); run it with: aegir hosting dispatch", t.ID, t.Type, t.Target)
		return nil
	}
	return a.print(t)
}

// master names this master (config master, else queue.Master's
// default), as the tasks it claims and the backups it writes record it.
func (a *App) master() string {
	queue.SetMaster(a.cfg.GetString("master"))
	return queue.Master()
}

// tiedTo names the master a task on backup b is tied to (a delete, with
// del, or a restore): the one that holds its archive when this master
// does not share its backups directory (queue.TiedElsewhere); "" for
// none.
func (a *App) tiedTo(b *entities.Backup, del bool) string {
	dir := ""
	if del {
		dir = filepath.Join(a.home, "backups")
	}
	return queue.TiedElsewhere(b, a.master(), dir)
}

// printTied tells of task t, queued tied to another master instead of
// run here: what it is, where it runs, and how to follow it. Its id goes
// on stdout as printQueued's does.
func (a *App) printTied(t *entities.Task) error {
	if !a.plainTable() {
		return a.print(t)
	}
	fmt.Fprintln(a.IO.Out, t.ID)
	a.infof("queued task %d (%s %s) for master %s, which holds the backup archive (this master, %s, does not share its backups directory): it runs there at that master's next queue run; follow it with: aegir task log %d --follow (if master %s is gone for good: aegir master forget %s)",
		t.ID, t.Type, t.Target, t.Master, a.master(), t.ID, t.Master, t.Master)
	return nil
}

// newPool is the connection pool of this invocation, its SSH host keys
// kept in the state (hosting.StateKnownHosts), whichever its engine, so
// that masters sharing it trust the same keys. The home's known_hosts is
// imported (what aegir did not write there) and written from the state;
// the lines it had that the state refuses are warned about. Its tasks'
// ACME account is the state's too (hosting.StateACMEAccounts).
func (a *App) newPool(st *store.Store) (*engine.Pool, error) {
	pool := engine.NewPool(a.home)
	kh := a.knownHosts(st, pool.KnownHostsFile())
	pool.Master = queue.Master() // knownHosts named it
	if _, err := kh.Import(a.ctx); err != nil {
		return nil, &Error{Code: ExitFailed, Err: fmt.Errorf("importing the SSH host keys of %s into the state: %w", pool.KnownHostsFile(), err),
			Hint: "check that the state answers (" + a.stateSetting() + ") and that " + pool.KnownHostsFile() + " can be read and written, then try again"}
	}
	pool.KnownHosts = kh
	// One ACME account for every master sharing the state, on either engine.
	pool.ACMEAccounts = &hosting.StateACMEAccounts{Store: st}
	return pool, nil
}

// forgetCommand is the server edit that replaces the host key of host:
// for the servers at that address (SERVER when none is).
func (a *App) forgetCommand(st *store.Store, host string) string {
	var cmds []string
	if servers, err := st.ListServers(a.ctx); err == nil {
		for _, s := range servers {
			if !s.IsLocal() && hosting.HostOf(s.Host, s.SSHPort) == host {
				cmds = append(cmds, wordFix(entities.Do("server.edit", s.Name, "forget-host-key", "accept-host-key")))
			}
		}
	}
	if len(cmds) == 0 {
		cmds = append(cmds, wordFix(entities.Do("server.edit", "SERVER", "forget-host-key", "accept-host-key")))
	}
	return strings.Join(cmds, "; ")
}

// knownHosts keeps the SSH host keys in the state, mirrored in file.
func (a *App) knownHosts(st *store.Store, file string) *hosting.StateKnownHosts {
	queue.SetMaster(a.cfg.GetString("master")) // the keys it records name it
	kh := &hosting.StateKnownHosts{Store: st, File: file, Master: queue.Master(), Warnf: func(c hosting.ImportConflict) {
		a.warnf("%s: %s", c, a.forgetCommand(st, c.Host))
	}}
	if servers, err := st.ListServers(a.ctx); err == nil {
		for _, s := range servers {
			if !s.IsLocal() {
				kh.Hosts = append(kh.Hosts, hosting.HostOf(s.Host, s.SSHPort))
			}
		}
	}
	return kh
}

// runner is the front end's task runner for this invocation.
func (a *App) runner() (*hosting.Runner, error) {
	st, err := a.Store()
	if err != nil {
		return nil, err
	}
	queue.SetMaster(a.cfg.GetString("master")) // tasks' workers, move locks and backups name it
	pool, err := a.newPool(st)
	if err != nil {
		return nil, err
	}
	if st.Dialect() == "postgres" {
		// Several masters may share it: moves' journals and locks, and
		// tasks' processes on remote servers, are kept there, where
		// another master's rescue reads them.
		pool.Journals = &hosting.StateJournals{Store: st, Lease: a.cfg.GetDuration("lease")}
		pool.Processes = &hosting.StateProcesses{Store: st}
	}
	return &hosting.Runner{Store: st, Home: a.home, Pool: pool, Settings: hosting.Settings{
		WebUser: a.cfg.GetString("web_user"), WebGroup: a.cfg.GetString("web_group"), BackupDir: filepath.Join(a.home, "backups"),
		ACME: a.acmeSettings(),
		FPM: provision.FPMSpec{PoolDir: a.cfg.GetString("php_fpm.pool_dir"), TestCmd: a.cfg.GetString("php_fpm.test_cmd"),
			ReloadCmd: a.cfg.GetString("php_fpm.reload_cmd"), RuntimeDir: a.cfg.GetString("php_fpm.runtime_dir"),
			DisableFunctions: a.cfg.GetString("php_fpm.disable_functions"), LogrotateFile: a.cfg.GetString("php_fpm.logrotate_file"),
			Helper: a.cfg.GetString("php_fpm.helper")},
		Master: queue.Master(),
	}}, nil
}

// taskEcho shows a foreground task's log lines on stderr as they come:
// aegir's own lines (info, warnings, errors); with --verbose also the
// commands run, what they printed and debug lines; with --quiet none. The
// task's log keeps every line (aegir task log ID).
//
// An error line, and the hint line after it, wait for the next line: the
// back end's last lines of a failed task are its error and hint, which the
// end line (Error: ... / hint: ...) says once.
type taskEcho struct {
	a    *App
	mu   sync.Mutex
	held []entities.LogLine
}

func (e *taskEcho) line(l entities.LogLine) {
	if e.a.quiet || (!e.a.verbose && verboseLevel(l.Level)) {
		return
	}
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case l.Level == provision.LevelError:
		e.flush()
		e.held = []entities.LogLine{l}
		return
	case len(e.held) == 1 && l.Level == provision.LevelInfo && strings.HasPrefix(l.Message, "hint: "):
		e.held = append(e.held, l)
		return
	}
	e.flush()
	e.a.writeLogLine(e.a.IO.Err, l)
}

func (e *taskEcho) flush() {
	for _, h := range e.held {
		e.a.writeLogLine(e.a.IO.Err, h)
	}
	e.held = nil
}

// end shows the lines still held unless they are task t's own error and
// hint, which its end line says.
func (e *taskEcho) end(t *entities.Task) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t != nil && len(e.held) > 0 && e.held[0].Message == t.Error &&
		(len(e.held) == 1 || e.held[1].Message == "hint: "+t.Hint) {
		e.held = nil
	}
	e.flush()
}

// verboseLevel says whether lines of this level are shown only with
// --verbose: what commands printed, the commands themselves, debug.
func verboseLevel(level string) bool {
	return level == provision.LevelDebug || level == provision.LevelCommand || level == provision.LevelOutput
}

func (a *App) writeLogLine(w io.Writer, l entities.LogLine) {
	ts := l.Time.Local().Format("15:04:05")
	level := a.paint(w, output.StatusColor(l.Level), fmt.Sprintf("%-7s", l.Level))
	msg := l.Message
	if len(l.Fix) > 0 {
		msg = wordHint(msg, l.Fix)
	}
	for i, line := range strings.Split(strings.TrimRight(output.Printable(msg), "\n"), "\n") {
		if i == 0 {
			fmt.Fprintf(w, "%s %s %s\n", ts, level, line)
		} else {
			fmt.Fprintf(w, "%s %s   %s\n", ts, level, line)
		}
	}
}
