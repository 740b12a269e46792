package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// Rescue finds the tasks left processing by a dispatcher that died (killed
// with -9, the machine rebooted): those whose lease ran out, and those whose
// worker was a process of this master on this machine (Machine) that no
// longer runs. A worker of another master, or of a master with this one's
// name on another machine, is judged by its lease alone; the latter is
// warned of (Warnf), once a machine. Each is marked
// error with MsgDied and a hint to retry it, a line saying why goes to its
// log, Cleanup runs, and Notify is told. It returns the rescued tasks.
//
// A rescue is a conditional update (the task still processing, same worker,
// same lease), so a lease renewed meanwhile wins and two rescuers never
// both rescue one task.
func (d *Dispatcher) Rescue(ctx context.Context) ([]*entities.Task, error) {
	running, err := d.Store.ProcessingTasks(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: listing running tasks: %w", err)
	}

	now := d.now()
	var rescued []*entities.Task
	for _, t := range running {
		why := ""
		w, parsed := parseWorker(t.Worker)
		if parsed && w.local() && !processAlive(w.pid) {
			why = fmt.Sprintf("its worker %s (process %d on this machine) is no longer running", t.Worker, w.pid)
		} else if t.LeaseUntil == nil || !t.LeaseUntil.After(now) {
			at := "never had one"
			if t.LeaseUntil != nil {
				at = "ran out at " + t.LeaseUntil.Local().Format(time.RFC3339)
			}
			why = fmt.Sprintf("its worker %s stopped renewing the task's lease, which %s", t.Worker, at)
		} else {
			if parsed && w.namesake() {
				d.warnNamesake(w)
			}
			continue
		}
		hint := "see how far it got in its log; once the cause is clear, run it again"
		fix := []entities.Action{entities.Do("task.log", fmt.Sprint(t.ID)), entities.Do("task.retry", fmt.Sprint(t.ID))}
		ours, err := d.Store.RescueTask(ctx, t, store.TaskEnd{Status: entities.TaskError, Error: MsgDied, Hint: hint, Fix: fix, Code: ErrorCodeDied, Finished: now})
		if err != nil {
			return rescued, fmt.Errorf("queue: marking task %d failed: %w", t.ID, err)
		}
		if !ours {
			continue // renewed or rescued by someone else meanwhile
		}
		t.Status, t.Error, t.Hint, t.Fix = entities.TaskError, MsgDied, hint, fix
		t.LeaseUntil = nil
		fin := now
		t.Finished = &fin
		rescued = append(rescued, t)
		d.logf("queue: task %d (%s %s): %s: %s", t.ID, t.Type, t.Target, MsgDied, why)
		bg := context.WithoutCancel(ctx)
		lines := []entities.LogLine{{Time: now, Level: entities.LevelError, Message: MsgDied + ": " + why}}
		finished := false
		if d.Cleanup != nil {
			var err error
			if finished, err = d.Cleanup(bg, t); err != nil {
				lines = append(lines, entities.LogLine{Time: d.now(), Level: entities.LevelWarning, Message: "clean-up after the dead dispatcher failed: " + err.Error()})
			} else {
				lines = append(lines, entities.LogLine{Time: d.now(), Level: entities.LevelDebug, Message: "clean-up after the dead dispatcher done"})
			}
		}
		if finished {
			lines = append(lines, entities.LogLine{Time: d.now(), Level: entities.LevelWarning, Message: "the task's work was done when its dispatcher died; the rescue finished its clean-up and saved its result: nothing to retry"})
			if err := d.Store.ClearRescuedError(bg, t.ID); err != nil {
				d.logf("queue: task %d: marking it finished: %v", t.ID, err)
			} else {
				t.Status, t.Error, t.Hint, t.Fix = entities.TaskWarning, "", "", nil
			}
		}
		if err := d.Store.AppendLog(bg, t.ID, lines...); err != nil {
			d.logf("queue: task %d: writing its log: %v", t.ID, err)
		}
		if !finished {
			d.notifyFailure(bg, t.ID, ErrorCodeDied)
		}
	}
	return rescued, nil
}

// warnNamesake tells Warnf, once for each machine, that a master with this
// one's name on another machine holds leases in the state.
func (d *Dispatcher) warnNamesake(w worker) {
	d.mu.Lock()
	if d.namesakes == nil {
		d.namesakes = map[string]bool{}
	}
	seen := d.namesakes[w.machine]
	d.namesakes[w.machine] = true
	d.mu.Unlock()
	if seen {
		return
	}
	msg := fmt.Sprintf("another master named %q (machine %s; this one is %s) holds leases here: give each master its own master: in aegir.yaml", w.master, w.machine, Machine())
	if d.Warnf != nil {
		d.Warnf("%s", msg)
	} else {
		d.logf("queue: %s", msg)
	}
}
