package cli

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	extraCommands = append(extraCommands, (*App).masterCmd)
}

func (a *App) masterCmd() *cobra.Command {
	c := &cobra.Command{Use: "master", Short: "The masters sharing the state (docs/masters.md): list them, forget one gone for good"}
	c.AddCommand(
		newListCmd(a, &cobra.Command{
			Use: "list", Short: "List the masters the state knows of: last seen, tasks held and waiting, backups, this one",
			Long: `List every master the state knows of: those named by the worker of a task they
ran, by a task tied to them (a backup delete or restore of an archive in their
backups directory) or by a backup recorded on them. For each: when it last
started or finished a task (never: none), the tasks it runs now (holds), the
queued tasks tied to it (waiting, which only it may run), the backups
recorded in its backups directory, and whether it is this master (this).`,
		}, runMasterList, nil),
		newArgCmd(a, &cobra.Command{
			Use: "forget NAME", Short: "Forget a master gone for good: cancel the tasks tied to it, delete its backup records",
			Long: `Forget master NAME, gone for good (its machine decommissioned), after asking
(-y asks nothing). In one transaction: its queued tied tasks (backup deletes
and restores of archives in its backups directory, which only it may run and
which hold their site's later tasks) are cancelled, and the records of the
backups held on it are deleted, so that the keep-N clean-up queues no more
deletes for it. The archives themselves, on its disk, are not touched.

Refused for this master, and for a master that runs a task under a lease
that has not run out (it is alive: stop it first). A master that is up but
idle holds no lease: make sure it is gone before forgetting it.`,
		}, runMasterForget, nil),
	)
	return c
}

func runMasterList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) {
		ms, err := st.Masters(o.ctx)
		if err != nil {
			return nil, err
		}
		this := o.master()
		found := false
		for _, m := range ms {
			if m.Name == this {
				m.This, found = true, true
			}
		}
		if !found {
			ms = append([]*entities.Master{{Name: this, LastSeen: "never", This: true}}, ms...)
		}
		return ms, nil
	})
}

func runMasterForget(o *ArgOptions) error {
	name := o.Arg
	if name == "" {
		return invalid("NAME", name, "must name a master (see: aegir master list)")
	}
	this := o.master()
	if name == this {
		return &Error{Code: ExitUsage, Err: fmt.Errorf("master %s is this master: a master does not forget itself", name),
			Hint: "run aegir master forget on another master sharing the state"}
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	ms, err := st.Masters(o.ctx)
	if err != nil {
		return err
	}
	var m *entities.Master
	for _, x := range ms {
		if x.Name == name {
			m = x
		}
	}
	if m == nil {
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("the state knows of no master %s", name), Hint: "see those it knows of: aegir master list"}
	}
	if err := o.confirm(fmt.Sprintf("Forget master %s (last seen %s), gone for good? %d queued tasks tied to it are cancelled and the records of its %d backups deleted (the archives on its disk are not touched).",
		name, m.LastSeen, m.Waiting, m.Backups)); err != nil {
		return err
	}
	why := fmt.Sprintf("master %s was forgotten by master %s (aegir master forget): only it could run this task", name, this)
	f, held, err := st.ForgetMaster(o.ctx, name, why)
	if held != nil {
		return &Error{Code: ExitUsage, Err: fmt.Errorf("master %s holds task %d under a lease until %s: it is alive; stop it first", name, held.Task, held.Until.UTC().Format(time.RFC3339)),
			Hint: "stop aegir on " + name + " (or wait for its lease to run out), then forget it"}
	}
	var nf *store.NotFoundError
	if errors.As(err, &nf) {
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("the state knows of no master %s", name), Hint: "see those it knows of: aegir master list"}
	}
	if err != nil {
		return err
	}
	ids := ""
	for i, id := range f.Cancelled {
		if i == 0 {
			ids = " (tasks "
		} else {
			ids += ", "
		}
		ids += strconv.FormatInt(id, 10)
	}
	if ids != "" {
		ids += ")"
	}
	o.infof("master %s forgotten: %d queued tasks tied to it cancelled%s, %d backup records deleted (the archives on its disk, if any, are not touched)",
		name, len(f.Cancelled), ids, f.Backups)
	return nil
}
