package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/store"
)

func parseTaskID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, invalid("task ID", s, "must be a positive whole number (aegir task list shows them)")
	}
	return id, nil
}

// taskView is a task with its log, for task show.
type taskView struct {
	entities.Task `yaml:",inline"`
	// Progress is a platform migrate's: its sites done, failed and left.
	Progress *hosting.MigrateProgress `json:"progress,omitempty" yaml:"progress,omitempty"`
	Log      []entities.LogLine       `json:"log" yaml:"log"`
}

func (a *App) taskCmd() *cobra.Command {
	c := &cobra.Command{Use: "task", Short: "Tasks: every change, carried out by the back end, with its log"}
	c.AddCommand(newTaskListCmd(a, nil),
		newArgCmd(a, &cobra.Command{Use: "show ID", Short: "Show a task and its log"}, runTaskShow, nil),
		newTaskLogCmd(a, nil),
		newArgCmd(a, &cobra.Command{Use: "retry ID", Short: "Queue a failed or cancelled task again (as a new task)"}, runTaskRetry, nil),
		newArgCmd(a, &cobra.Command{Use: "cancel ID", Short: "Cancel a queued task"}, runTaskCancel, nil))
	return c
}

// TaskListOptions are task list's: its filters, the site as typed (a
// domain or an alias).
type TaskListOptions struct {
	*App
	Filter store.TaskFilter
	Site   string
}

func newTaskListCmd(a *App, runF func(*TaskListOptions) error) *cobra.Command {
	o := &TaskListOptions{App: a}
	cmd := bind(&cobra.Command{Use: "list [--status S] [--site DOMAIN] [--type T]", Short: "List tasks, newest first"}, o, runF, runTaskList)
	f := cmd.Flags()
	f.StringVar(&o.Filter.Status, "status", "", "only tasks in this status: "+fmt.Sprint(entities.TaskStatuses))
	f.StringVar(&o.Site, "site", "", "only tasks on this site")
	f.StringVar(&o.Filter.Type, "type", "", "only tasks of this type, e.g. site.install")
	f.Int64Var(&o.Filter.Parent, "parent", 0, "only the tasks task ID ran as its parts (a platform migrate's site moves)")
	intFlag(f, &o.Filter.Limit, "limit", 100, "at most this many tasks (0: all)")
	return cmd
}

func runTaskList(o *TaskListOptions) error {
	f := o.Filter
	if f.Status != "" {
		if err := entities.ValidateOneOf("--status", f.Status, entities.TaskStatuses...); err != nil {
			return err
		}
	}
	if f.Type != "" {
		if err := entities.ValidateOneOf("--type", f.Type, append(engine.Tasks(), entities.TaskPlatformMigrate)...); err != nil {
			return err
		}
	}
	if f.Limit < 0 {
		return invalid("--limit", strconv.Itoa(f.Limit), "must be 0 (no limit) or more")
	}
	if f.Parent < 0 {
		return invalid("--parent", strconv.FormatInt(f.Parent, 10), "must be a task ID (aegir task list shows them)")
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	if o.Site != "" {
		if f.Target, err = o.siteFilter(st, o.Site); err != nil {
			return err
		}
		f.TargetKind = entities.TargetSite
	}
	v, err := st.ListTasks(o.ctx, f)
	if err != nil {
		return err
	}
	for i := range v {
		o.wordTask(v[i], nil)
	}
	return o.print(v)
}

func runTaskShow(o *ArgOptions) error {
	st, t, err := o.task(o.Arg)
	if err != nil {
		return err
	}
	var progress *hosting.MigrateProgress
	if t.Type == entities.TaskPlatformMigrate {
		if progress, err = hosting.MigrateProgressOf(o.ctx, st, t); err != nil {
			return err
		}
	}
	if o.plainTable() {
		o.wordTask(t, nil)
		if err := o.print(t); err != nil || progress == nil {
			return err
		}
		fmt.Fprintln(o.IO.Out)
		o.printProgress(o.IO.Out, progress)
		return nil
	}
	lines, _, err := st.TaskLog(o.ctx, t.ID, 0)
	if err != nil {
		return err
	}
	o.wordTask(t, lines)
	return o.print(taskView{Task: *t, Progress: progress, Log: lines})
}

// wordTask words a task's stored hint and the hint line of its log with
// the commands of its fix, as every hint the command line shows; the
// actions stay beside it in JSON and YAML (a table shows the hint only).
func (a *App) wordTask(t *entities.Task, lines []entities.LogLine) {
	wordTaskHint(t, lines)
	if a.format != "json" && a.format != "yaml" {
		t.Fix = nil
		wordLines(lines)
	}
}

// wordLines words each line's message with the commands of its fix, and
// drops the actions.
func wordLines(lines []entities.LogLine) {
	for i, l := range lines {
		if len(l.Fix) > 0 {
			lines[i].Message, lines[i].Fix = wordHint(l.Message, l.Fix), nil
		}
	}
}

// wordTaskHint words t's hint, and the hint line of its log among lines,
// with the commands of its fix.
func wordTaskHint(t *entities.Task, lines []entities.LogLine) {
	if len(t.Fix) == 0 {
		return
	}
	for i, l := range lines {
		if l.Level == provision.LevelInfo && l.Message == "hint: "+t.Hint {
			lines[i].Message = "hint: " + wordHint(t.Hint, t.Fix)
		}
	}
	t.Hint = wordHint(t.Hint, t.Fix)
}

// TaskLogOptions are task log's: the task's ID as typed, whether to
// follow it until it ends, and how often to look for new lines then.
type TaskLogOptions struct {
	*App
	ID     string
	Follow bool
	Poll   time.Duration
}

func newTaskLogCmd(a *App, runF func(*TaskLogOptions) error) *cobra.Command {
	o := &TaskLogOptions{App: a, Poll: 300 * time.Millisecond}
	cmd := bind(&cobra.Command{Use: "log ID [--follow]", Short: "Print a task's log (--follow: until the task ends)"}, o, runF, runTaskLog, &o.ID)
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines until the task ends; exit with its result")
	return cmd
}

func runTaskLog(o *TaskLogOptions) error {
	st, t, err := o.task(o.ID)
	if err != nil {
		return err
	}
	id := t.ID
	if !o.Follow {
		lines, _, err := st.TaskLog(o.ctx, id, 0)
		if err != nil {
			return err
		}
		o.wordTask(t, lines)
		if o.format == "table" {
			for _, l := range lines {
				o.writeLogLine(o.IO.Out, l)
			}
			return nil
		}
		return o.print(lines)
	}
	var after int64
	for {
		lines, last, err := st.TaskLog(o.ctx, id, after)
		if err != nil {
			return err
		}
		after = last
		o.wordTask(&entities.Task{Hint: t.Hint, Fix: t.Fix}, lines)
		for _, l := range lines {
			o.writeLogLine(o.IO.Out, l)
		}
		if t.Status != entities.TaskQueued && t.Status != entities.TaskProcessing && len(lines) == 0 {
			return taskExit(t)
		}
		select {
		case <-o.ctx.Done():
			return o.ctx.Err()
		case <-time.After(o.Poll):
		}
		if t, err = st.GetTask(o.ctx, id); err != nil {
			return err
		}
	}
}

func runTaskRetry(o *ArgOptions) error {
	st, old, err := o.task(o.Arg)
	if err != nil {
		return err
	}
	t, err := st.RetryTask(o.ctx, old.ID)
	if err != nil {
		return err
	}
	return o.printQueued(t)
}

func runTaskCancel(o *ArgOptions) error {
	st, t, err := o.task(o.Arg)
	if err != nil {
		return err
	}
	if err := st.CancelTask(o.ctx, t.ID); err != nil {
		return err
	}
	o.infof("task %d cancelled", t.ID)
	return nil
}

// taskExit is nil for a task that succeeded (or ended in warning) and an
// error carrying exit code 1 otherwise.
func taskExit(t *entities.Task) error {
	switch t.Status {
	case entities.TaskSuccess, entities.TaskWarning:
		return nil
	case entities.TaskCancelled:
		return &Error{Code: ExitFailed, Err: fmt.Errorf("task %d was cancelled", t.ID)}
	}
	return &errTaskFailed{ID: t.ID, Msg: t.Error, Hint: t.Hint, Fix: t.Fix, Task: t}
}

func (a *App) packageCmd() *cobra.Command {
	c := &cobra.Command{Use: "package", Short: "Packages: the modules, themes, profiles and plugins found on platforms and sites"}
	c.AddCommand(newPackageListCmd(a, nil))
	return c
}

// PackageListOptions are package list's: a platform or a site, and the
// type of package.
type PackageListOptions struct {
	*App
	Platform, Site, Type string
}

func newPackageListCmd(a *App, runF func(*PackageListOptions) error) *cobra.Command {
	o := &PackageListOptions{App: a}
	cmd := bind(&cobra.Command{Use: "list [--platform P | --site DOMAIN] [--type module|theme|profile|plugin]", Short: "List packages"},
		o, runF, runPackageList)
	cmd.Flags().StringVar(&o.Platform, "platform", "", "packages on this platform")
	cmd.Flags().StringVar(&o.Site, "site", "", "packages of this site")
	cmd.Flags().StringVar(&o.Type, "type", "", "only this type: module, theme, profile, plugin or core")
	return cmd
}

func runPackageList(o *PackageListOptions) error {
	if o.Platform != "" && o.Site != "" {
		return invalid("--site", o.Site, "cannot be given with --platform")
	}
	if err := validNames("--platform", o.Platform); err != nil {
		return err
	}
	if o.Type != "" {
		if err := entities.ValidateOneOf("--type", o.Type, entities.PackageModule, entities.PackageTheme, entities.PackageProfile, entities.PackagePlugin, entities.PackageCore); err != nil {
			return err
		}
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	f := store.PackageFilter{Type: o.Type}
	if o.Platform != "" {
		p, err := st.GetPlatform(o.ctx, o.Platform)
		if err != nil {
			return err
		}
		f.PlatformID = p.ID
	}
	if o.Site != "" {
		d, err := siteName("--site", o.Site)
		if err != nil {
			return err
		}
		_, s, err := o.site(d)
		if err != nil {
			return err
		}
		f.SiteID = s.ID
	}
	v, err := st.ListPackages(o.ctx, f)
	if err != nil {
		return err
	}
	return o.print(v)
}

// task opens the store and finds the task named by an ID argument.
func (a *App) task(arg string) (*store.Store, *entities.Task, error) {
	id, err := parseTaskID(arg)
	if err != nil {
		return nil, nil, err
	}
	st, err := a.Store()
	if err != nil {
		return nil, nil, err
	}
	t, err := st.GetTask(a.ctx, id)
	return st, t, err
}
