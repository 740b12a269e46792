package cli

import (
	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/store"
)

// Every command is built the same way: its constructor (newSiteInstallCmd)
// only parses the arguments and flags into an Options struct
// (SiteInstallOptions), which holds them and the invocation (*App: streams,
// the state, configuration and output settings), then calls the command's
// run function (runSiteInstall) with it. A test either fills an Options
// value and calls the run function, or passes its own runF to the
// constructor to see what was parsed.

// runWith runs the command's options o: with runF when a test gave one,
// else with run, the command's own.
func runWith[O any](o O, runF, run func(O) error) error {
	if runF != nil {
		return runF(o)
	}
	return run(o)
}

// bind makes cmd take exactly as many positional arguments as args names,
// parse them into args, and then run o with runWith.
func bind[O any](cmd *cobra.Command, o O, runF, run func(O) error, args ...*string) *cobra.Command {
	cmd.Args = cobra.ExactArgs(len(args))
	if len(args) == 0 {
		cmd.Args = cobra.NoArgs
	}
	cmd.RunE = func(_ *cobra.Command, a []string) error {
		for i, p := range args {
			*p = a[i]
		}
		return runWith(o, runF, run)
	}
	return cmd
}

// printStored opens the state, reads a record or a list from it with
// read, and prints it.
func (a *App) printStored(read func(st *store.Store) (any, error)) error {
	st, err := a.Store()
	if err != nil {
		return err
	}
	v, err := read(st)
	if err != nil {
		return err
	}
	return a.print(v)
}

// ListOptions are those of a list without flags of its own (client
// list, server list, cert list): the invocation alone.
type ListOptions struct{ *App }

// newListCmd is cmd, a list without flags of its own, running run.
func newListCmd(a *App, cmd *cobra.Command, run, runF func(*ListOptions) error) *cobra.Command {
	return bind(cmd, &ListOptions{App: a}, runF, run)
}

// ByServerOptions are those of a list filtered by --server (platform
// list, service list).
type ByServerOptions struct {
	*App
	Server string
}

// newByServerListCmd is cmd, a list with the --server filter (usage
// says what it keeps), running run.
func newByServerListCmd(a *App, cmd *cobra.Command, usage string, run, runF func(*ByServerOptions) error) *cobra.Command {
	o := &ByServerOptions{App: a}
	bind(cmd, o, runF, run)
	cmd.Flags().StringVar(&o.Server, "server", "", usage)
	return cmd
}

// TaskVerbOptions are those of a verb that records one task (Type) on the
// record its argument names (Target: a server, platform or site) and runs
// it, or with Queue only queues it: server verify, platform verify, site
// cron and the like.
type TaskVerbOptions struct {
	*App
	Type   string // entities.Task*
	Target string
	Queue  bool
}

// newTaskVerbCmd is the verb use of task type typ, running run.
func newTaskVerbCmd(a *App, use, short, typ string, run, runF func(*TaskVerbOptions) error) *cobra.Command {
	o := &TaskVerbOptions{App: a, Type: typ}
	cmd := bind(&cobra.Command{Use: use, Short: short}, o, runF, run, &o.Target)
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "only queue the task; print its id")
	return cmd
}

// ArgOptions are those of a verb that takes one argument and no flags of
// its own (site show DOMAIN, task retry ID, backup verify ID): the
// argument as typed.
type ArgOptions struct {
	*App
	Arg string
}

// newArgCmd is cmd, a verb of one argument, running run.
func newArgCmd(a *App, cmd *cobra.Command, run, runF func(*ArgOptions) error) *cobra.Command {
	o := &ArgOptions{App: a}
	return bind(cmd, o, runF, run, &o.Arg)
}
