package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	pexec "github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() { extraCommands = append(extraCommands, (*App).hostingCmd) }

func (a *App) hostingCmd() *cobra.Command {
	c := &cobra.Command{Use: "hosting", Short: "The dispatcher: run queued tasks and the cron, backup and statistics queues"}

	dispatch := newDispatcherCmd(a, "dispatch [--workers N]",
		"One pass: rescue tasks of dead dispatchers, run the queues that are due, run queued tasks; then exit",
		`One pass over every queue, for system cron to run each minute (see
aegir hosting cron-install): tasks left running by a dispatcher that died are
marked failed, the cron, backup and statistics queues that are due queue
their tasks, then queued tasks run, --workers at a time (never two on one
site, platform or server at once), until none is left that can run.
A second dispatch started meanwhile never runs a task twice. On SIGTERM it
starts nothing more and waits for the running tasks.

Once an hour (on one master of those that share the state) it also deletes
the finished tasks older than tasks.keep, with their logs, and the audit log
entries older than audit.keep, beside the tasks it runs; the newest task of
each type on each site, platform or server stays (docs/configuration.md,
Retention).

With --format json (or yaml) it prints the pass as one record: rescued,
scheduled, ran, failed, delivered and, when a prune was due, pruned (tasks,
log_lines, audit, processes, more): docs/json.md, dispatch.

Failed tasks are reported by the notify.* settings, not by the exit code:
it exits 0 unless the dispatch itself failed.`, runDispatch, nil)

	queued := newDispatcherCmd(a, "queued [--workers N]",
		"The dispatcher as a long-running daemon (SIGTERM lets running tasks finish)",
		`Run the dispatcher until SIGTERM or SIGINT: it does what hosting dispatch
does, looking for work every second and starting the next task as soon as
one ends. On SIGTERM it starts nothing more, waits for the running tasks to
finish, and exits 0; a second signal stops it at once.`, runQueued, nil)

	queues := newListCmd(a, &cobra.Command{
		Use:   "queues",
		Short: "Each scheduled queue: enabled, frequency, items per run, last run, items due",
	}, runQueues, nil)

	c.AddCommand(dispatch, queued, queues, newCronInstallCmd(a, nil))
	return c
}

func runDispatch(o *DispatchOptions, d *queue.Dispatcher) error {
	if err := o.checkPrint(queue.Summary{}); err != nil {
		return err
	}
	o.checkSSHKeys(d.Store)
	sum, err := d.RunOnce(o.ctx)
	if sum != nil {
		if perr := o.printSummary(sum); perr != nil {
			return perr
		}
	}
	return err
}

func runQueued(o *DispatchOptions, d *queue.Dispatcher) error {
	if !o.quiet {
		d.Logf = func(format string, args ...any) {
			fmt.Fprintf(o.IO.Err, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
		}
	}
	o.infof("%s aegir dispatcher: %d worker(s), state %s; stop with SIGTERM", time.Now().Format(time.RFC3339), d.Workers, o.stateShown())
	o.checkSSHKeys(d.Store)
	if err := d.Serve(o.ctx); err != nil {
		var moved *store.MovedError
		if errors.As(err, &moved) {
			return o.movedErr(moved) // exit 2: run it on the new state
		}
		return err
	}
	o.infof("%s aegir dispatcher stopped", time.Now().Format(time.RFC3339))
	return nil
}

func runQueues(o *ListOptions) error {
	qs, err := o.queueConfigs()
	if err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	d := &queue.Dispatcher{Store: st, Interval: o.cfg.GetDuration("queue.interval"), Queues: qs}
	v, err := d.Status(o.ctx)
	if err != nil {
		return err
	}
	return o.print(v)
}

// CronInstallOptions are hosting cron-install's: whether only to print
// the crontab line.
type CronInstallOptions struct {
	*App
	Print bool
}

func newCronInstallCmd(a *App, runF func(*CronInstallOptions) error) *cobra.Command {
	o := &CronInstallOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "cron-install [--print]",
		Short: "Add the crontab line that runs hosting dispatch (--print: only print it)",
		Long: `Add to the current user's crontab the line that runs aegir hosting dispatch
every queue.interval (default each minute) for this aegir home, replacing
an earlier aegir line for the same home and keeping every other line.
With --print, print the line only (for /etc/cron.d or a configuration
management tool).`,
	}, o, runF, runCronInstall)
	cmd.Flags().BoolVar(&o.Print, "print", false, "print the crontab line instead of installing it")
	return cmd
}

func runCronInstall(o *CronInstallOptions) error {
	line, err := o.cronLine()
	if err != nil {
		return err
	}
	if o.Print {
		fmt.Fprintln(o.IO.Out, line)
		return nil
	}
	return o.installCronLine(line)
}

// maxWorkers bounds --workers and the workers setting: each worker holds
// its own connections and processes, and 99999999999 of them ran the
// dispatcher out of memory before it started.
const maxWorkers = 256

// DispatchOptions are hosting dispatch's and hosting queued's: the
// number of workers (WorkersSet: --workers was given; else the workers
// setting).
type DispatchOptions struct {
	*App
	Workers    int
	WorkersSet bool
}

// newDispatcherCmd is a command that runs the dispatcher: the --workers
// flag, then the dispatcher built from the settings, and signal handling
// around run.
func newDispatcherCmd(a *App, use, short, long string, run func(*DispatchOptions, *queue.Dispatcher) error, runF func(*DispatchOptions) error) *cobra.Command {
	o := &DispatchOptions{App: a}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.WorkersSet = cmd.Flags().Changed("workers")
			return runWith(o, runF, func(o *DispatchOptions) error { return runDispatcher(o, run) })
		},
	}
	intFlag(cmd.Flags(), &o.Workers, "workers", 0, "tasks run at once (default: the workers setting, 2)")
	return cmd
}

func runDispatcher(o *DispatchOptions, run func(*DispatchOptions, *queue.Dispatcher) error) error {
	d, done, err := o.hostingDispatcher(o.Workers, o.WorkersSet)
	if err != nil {
		return err
	}
	defer done()
	defer o.secondSignalStops()()
	return run(o, d)
}

// hostingDispatcher is the dispatcher of hosting dispatch and queued: the
// task runner, the workers (flag, else config), and the scheduled queues.
// done closes the runner's server connections.
func (a *App) hostingDispatcher(workers int, given bool) (d *queue.Dispatcher, done func(), err error) {
	if given && workers < 1 {
		return nil, nil, invalid("--workers", strconv.Itoa(workers), "must be 1 or more")
	}
	if workers > maxWorkers {
		return nil, nil, invalid("--workers", strconv.Itoa(workers), fmt.Sprintf("must be at most %d", maxWorkers))
	}
	qs, err := a.queueConfigs()
	if err != nil {
		return nil, nil, err
	}
	d, r, err := a.dispatcher()
	if err != nil {
		return nil, nil, err
	}
	if workers > 0 {
		d.Workers = workers
	}
	if d.Workers < 1 {
		r.Pool.Close()
		return nil, nil, &Error{Code: ExitUsage, Err: fmt.Errorf("invalid workers setting %d: must be 1 or more", d.Workers), Hint: "fix workers in " + filepath.Join(a.home, "aegir.yaml")}
	}
	d.Queues = qs
	return d, func() { r.Pool.Close() }, nil
}

// secondSignalStops makes a second SIGTERM or SIGINT end the process at
// once: the first one cancelled a.ctx, after which the dispatcher waits for
// its running tasks. The returned func ends the watch.
func (a *App) secondSignalStops() func() {
	end := make(chan struct{})
	go func() {
		select {
		case <-a.ctx.Done():
			signal.Reset(os.Interrupt, syscall.SIGTERM)
		case <-end:
		}
	}()
	return func() { close(end) }
}

// queueConfigs reads queue.NAME.enabled and queue.NAME.frequency (their
// values were checked when the configuration was read: checkConfig).
func (a *App) queueConfigs() ([]queue.QueueConfig, error) {
	var qs []queue.QueueConfig
	for _, name := range queue.QueueNames() {
		q := queue.QueueConfig{Name: name, Enabled: a.cfg.GetBool("queue." + name + ".enabled"), Frequency: a.cfg.GetDuration("queue." + name + ".frequency"),
			Keep: a.cfg.GetInt("backup.keep"), MaxAge: a.cfg.GetDuration("backup.max_age")}
		if err := q.Validate(); err != nil {
			return nil, a.configInvalid("queue."+name+".frequency", a.cfg.GetString("queue."+name+".frequency"), err.Error())
		}
		qs = append(qs, q)
	}
	return qs, nil
}

// printSummary reports a dispatch pass: as a record under --format json,
// yaml or csv, --fields or --field; in table format one line on stderr
// when it did something.
func (a *App) printSummary(s *queue.Summary) error {
	if !a.plainTable() {
		return a.print(s)
	}
	pruned := s.Pruned != nil && (s.Pruned.Tasks > 0 || s.Pruned.Audit > 0 || s.Pruned.Processes > 0)
	if s.Ran == 0 && len(s.Rescued) == 0 && len(s.Scheduled) == 0 && !pruned {
		return nil
	}
	var parts []string
	for _, name := range queue.QueueNames() {
		if n := s.Scheduled[name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s queued %d", name, n))
		}
	}
	if len(s.Rescued) > 0 {
		parts = append(parts, fmt.Sprintf("%d task(s) of a dead dispatcher marked failed", len(s.Rescued)))
	}
	parts = append(parts, fmt.Sprintf("ran %d task(s), %d failed", s.Ran, s.Failed))
	if pruned {
		what := fmt.Sprintf("pruned %d old task(s) with %d log line(s) and %d audit entries", s.Pruned.Tasks, s.Pruned.LogLines, s.Pruned.Audit)
		if s.Pruned.Processes > 0 {
			what += fmt.Sprintf(", and %d record(s) of remote processes of tasks gone or long ended", s.Pruned.Processes)
		}
		parts = append(parts, what)
	}
	a.infof("dispatch: %s", strings.Join(parts, "; "))
	if s.Failed > 0 {
		a.infof("see them: aegir task list --status error")
	}
	return nil
}

// cronMarker ends the crontab line, naming the aegir home, so that
// cron-install finds its own line again.
func (a *App) cronMarker() string { return "# aegir dispatch " + a.home }

// cronLine is the crontab line that runs hosting dispatch every
// queue.interval for this home.
func (a *App) cronLine() (string, error) {
	iv := a.cfg.GetDuration("queue.interval")
	var when string
	switch m := int(iv / time.Minute); {
	case iv%time.Minute != 0 || m < 1:
		return "", &Error{Code: ExitUsage, Err: fmt.Errorf("queue.interval %s cannot be a cron schedule: it must be whole minutes", iv),
			Hint: "set queue.interval to 1m, 5m, 1h ... in " + filepath.Join(a.home, "aegir.yaml")}
	case m == 1:
		when = "* * * * *"
	case m < 60 && 60%m == 0:
		when = fmt.Sprintf("*/%d * * * *", m)
	case m == 60:
		when = "0 * * * *"
	default:
		return "", &Error{Code: ExitUsage, Err: fmt.Errorf("queue.interval %s cannot be a cron schedule: it must divide an hour (1m, 2m, 5m, 10m, 15m, 30m, 1h)", iv),
			Hint: "change queue.interval in " + filepath.Join(a.home, "aegir.yaml")}
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if p, err := filepath.EvalSymlinks(self); err == nil {
		self = p
	}
	cmd := pexec.QuoteArgv([]string{self, "--home", a.home, "hosting", "dispatch", "--quiet"})
	return when + " " + cmd + " " + a.cronMarker(), nil
}

// installCronLine puts line in the current user's crontab through the
// crontab program, in place of an earlier line for this home.
func (a *App) installCronLine(line string) error {
	crontab, err := exec.LookPath("crontab")
	if err != nil {
		return &Error{Code: ExitFailed, Err: errors.New("the crontab program is not installed"),
			Hint: "install cron (apt-get install cron), or add this line to a crontab yourself: " + line}
	}
	var cur, errb bytes.Buffer
	list := exec.CommandContext(a.ctx, crontab, "-l")
	list.Stdout, list.Stderr = &cur, &errb
	if err := list.Run(); err != nil && !strings.Contains(errb.String(), "no crontab") {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("crontab -l: %v: %s", err, strings.TrimSpace(errb.String())), Hint: "check that this user may use cron (/etc/cron.allow)"}
	}
	next, changed := mergeCrontab(cur.String(), line, a.cronMarker())
	if !changed {
		a.infof("the crontab already runs: %s", line)
		return nil
	}
	errb.Reset()
	install := exec.CommandContext(a.ctx, crontab, "-")
	install.Stdin, install.Stderr = strings.NewReader(next), &errb
	if err := install.Run(); err != nil {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("crontab -: %v: %s", err, strings.TrimSpace(errb.String())), Hint: "add this line to a crontab yourself: " + line}
	}
	a.infof("crontab line installed: %s", line)
	return nil
}

// mergeCrontab returns the crontab cur with line in place of every line
// that ends with marker (or added at the end), and whether it changed.
func mergeCrontab(cur, line, marker string) (string, bool) {
	var out []string
	placed := false
	for _, l := range strings.Split(strings.TrimRight(cur, "\n"), "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), marker) {
			if !placed {
				out = append(out, line)
				placed = true
			}
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if !placed {
		out = append(out, line)
	}
	next := strings.Join(out, "\n") + "\n"
	return next, next != cur
}

// checkSSHKeys warns, for a PostgreSQL state (which several masters may
// share), of each server whose SSH key is not on this master: the state
// holds the key's path, and every master must have the key there. It
// warns too of each server reached as localhost: that is each master's
// own machine, so its tasks would run on whichever master claims them,
// each writing its own config/SERVER and reloading its own web server.
func (a *App) checkSSHKeys(st *store.Store) {
	if st.Dialect() != "postgres" {
		return
	}
	servers, err := st.ListServers(a.ctx)
	if err != nil {
		a.warnf("listing the servers to check their SSH keys: %v", err)
		return
	}
	for _, s := range servers {
		if s.IsLocal() {
			a.warnf("server %s is reached as %s, which is each master's own machine: with a state that several masters may share, its tasks run on whichever master claims them, on that master's machine and its config/%s; give the server a remote address (aegir server edit %s --host HOST --ssh-user USER), or run one master (docs/masters.md)",
				s.Name, orLocalhost(s.Host), s.Name, s.Name)
		}
		if s.SSHKey == "" {
			continue
		}
		if _, err := os.Stat(s.SSHKey); err != nil {
			a.warnf("server %s: its SSH key %s is not on this master (%s): its tasks that this master claims fail here until the key is copied to that path (docs/masters.md)", s.Name, s.SSHKey, a.master())
		}
	}
}

// orLocalhost is host, or localhost for none.
func orLocalhost(host string) string {
	if host == "" {
		return "localhost"
	}
	return host
}
