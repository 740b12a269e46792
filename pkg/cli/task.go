package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
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
	Log           []entities.LogLine `json:"log" yaml:"log"`
}

func (a *App) taskCmd() *cobra.Command {
	c := &cobra.Command{Use: "task", Short: "Tasks: every change, carried out by the back end, with its log"}

	var f store.TaskFilter
	var site string
	list := &cobra.Command{
		Use: "list [--status S] [--site DOMAIN] [--type T]", Short: "List tasks, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Status != "" {
				if err := entities.ValidateOneOf("--status", f.Status, entities.TaskStatuses...); err != nil {
					return err
				}
			}
			if f.Type != "" {
				if err := entities.ValidateOneOf("--type", f.Type, provision.Tasks()...); err != nil {
					return err
				}
			}
			if f.Limit < 0 {
				return invalid("--limit", strconv.Itoa(f.Limit), "must be 0 (no limit) or more")
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			if site != "" {
				if f.Target, err = a.siteFilter(st, site); err != nil {
					return err
				}
				f.TargetKind = entities.TargetSite
			}
			v, err := st.ListTasks(a.ctx, f)
			if err != nil {
				return err
			}
			return a.print(v)
		},
	}
	list.Flags().StringVar(&f.Status, "status", "", "only tasks in this status: "+fmt.Sprint(entities.TaskStatuses))
	list.Flags().StringVar(&site, "site", "", "only tasks on this site")
	list.Flags().StringVar(&f.Type, "type", "", "only tasks of this type, e.g. site.install")
	intFlag(list.Flags(), &f.Limit, "limit", 100, "at most this many tasks (0: all)")

	show := &cobra.Command{
		Use: "show ID", Short: "Show a task and its log", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, t, err := a.task(args[0])
			if err != nil {
				return err
			}
			id := t.ID
			if a.plainTable() {
				return a.print(t)
			}
			lines, _, err := st.TaskLog(a.ctx, id, 0)
			if err != nil {
				return err
			}
			return a.print(taskView{Task: *t, Log: lines})
		},
	}

	var follow bool
	logc := &cobra.Command{
		Use: "log ID [--follow]", Short: "Print a task's log (--follow: until the task ends)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, t, err := a.task(args[0])
			if err != nil {
				return err
			}
			id := t.ID
			if !follow {
				lines, _, err := st.TaskLog(a.ctx, id, 0)
				if err != nil {
					return err
				}
				if a.format == "table" {
					for _, l := range lines {
						a.writeLogLine(a.IO.Out, l)
					}
					return nil
				}
				return a.print(lines)
			}
			var after int64
			for {
				lines, last, err := st.TaskLog(a.ctx, id, after)
				if err != nil {
					return err
				}
				after = last
				for _, l := range lines {
					a.writeLogLine(a.IO.Out, l)
				}
				if t.Status != entities.TaskQueued && t.Status != entities.TaskProcessing && len(lines) == 0 {
					return taskExit(t)
				}
				select {
				case <-a.ctx.Done():
					return a.ctx.Err()
				case <-time.After(300 * time.Millisecond):
				}
				if t, err = st.GetTask(a.ctx, id); err != nil {
					return err
				}
			}
		},
	}
	logc.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until the task ends; exit with its result")

	retry := &cobra.Command{
		Use: "retry ID", Short: "Queue a failed or cancelled task again (as a new task)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, old, err := a.task(args[0])
			if err != nil {
				return err
			}
			t, err := st.RetryTask(a.ctx, old.ID)
			if err != nil {
				return err
			}
			return a.printQueued(t)
		},
	}
	cancel := &cobra.Command{
		Use: "cancel ID", Short: "Cancel a queued task", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, t, err := a.task(args[0])
			if err != nil {
				return err
			}
			id := t.ID
			if err := st.CancelTask(a.ctx, id); err != nil {
				return err
			}
			a.infof("task %d cancelled", id)
			return nil
		},
	}
	c.AddCommand(list, show, logc, retry, cancel)
	return c
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
	return &errTaskFailed{ID: t.ID, Msg: t.Error, Hint: t.Hint, Task: t}
}

func (a *App) packageCmd() *cobra.Command {
	c := &cobra.Command{Use: "package", Short: "Packages: the modules, themes, profiles and plugins found on platforms and sites"}
	var platform, site, typ string
	list := &cobra.Command{
		Use: "list [--platform P | --site DOMAIN] [--type module|theme|profile|plugin]", Short: "List packages", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if platform != "" && site != "" {
				return invalid("--site", site, "cannot be given with --platform")
			}
			if err := validNames("--platform", platform); err != nil {
				return err
			}
			if typ != "" {
				if err := entities.ValidateOneOf("--type", typ, entities.PackageModule, entities.PackageTheme, entities.PackageProfile, entities.PackagePlugin, entities.PackageCore); err != nil {
					return err
				}
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			f := store.PackageFilter{Type: typ}
			if platform != "" {
				p, err := st.GetPlatform(a.ctx, platform)
				if err != nil {
					return err
				}
				f.PlatformID = p.ID
			}
			if site != "" {
				d, err := siteName("--site", site)
				if err != nil {
					return err
				}
				_, s, err := a.site(d)
				if err != nil {
					return err
				}
				f.SiteID = s.ID
			}
			v, err := st.ListPackages(a.ctx, f)
			if err != nil {
				return err
			}
			return a.print(v)
		},
	}
	list.Flags().StringVar(&platform, "platform", "", "packages on this platform")
	list.Flags().StringVar(&site, "site", "", "packages of this site")
	list.Flags().StringVar(&typ, "type", "", "only this type: module, theme, profile, plugin or core")
	c.AddCommand(list)
	return c
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
