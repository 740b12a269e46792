package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/queue"
)

// dispatcher is the task dispatcher of this invocation: the queue runs
// tasks through the front end's runner.
func (a *App) dispatcher() (*queue.Dispatcher, *hosting.Runner, error) {
	r, err := a.runner()
	if err != nil {
		return nil, nil, err
	}
	d := &queue.Dispatcher{
		Store:    r.Store,
		Workers:  a.cfg.GetInt("workers"),
		Lease:    a.cfg.GetDuration("lease"),
		Interval: a.cfg.GetDuration("queue.interval"),
		Handler: func(ctx context.Context, t *entities.Task, log func(level, msg string)) queue.Outcome {
			// A task waiting for a reload it shares lends its worker to the next.
			wctx := engine.WithSharedWait(ctx, func() func() { return queue.ReleaseWorker(ctx) })
			return queueOutcome(r.Run(wctx, t, provision.LoggerFunc(log)))
		},
		Notify: a.notifier(),
		Cleanup: func(ctx context.Context, t *entities.Task) (bool, error) {
			return r.Cleanup(ctx, t, provision.LoggerFunc(func(level, msg string) {
				_ = r.Store.AppendLog(ctx, t.ID, entities.LogLine{Level: level, Message: "clean-up: " + msg})
			}))
		},
		Logf: func(format string, args ...any) {
			if a.verbose {
				fmt.Fprintf(a.IO.Err, "dispatch: "+format+"\n", args...)
			}
		},
	}
	return d, r, nil
}

// notifier is who hears of failed tasks, from the notify.* settings.
func (a *App) notifier() queue.Notifier {
	var ns queue.Notifiers
	if cmd := a.cfg.GetString("notify.command"); cmd != "" {
		ns = append(ns, &queue.CommandNotifier{Argv: []string{"sh", "-c", cmd}})
	}
	if to := a.cfg.GetString("notify.email.to"); to != "" {
		ns = append(ns, &queue.MailNotifier{Addr: a.cfg.GetString("notify.email.smtp"), From: a.cfg.GetString("notify.email.from"), To: []string{to}})
	}
	if len(ns) == 0 {
		return nil
	}
	return ns
}

// runTask claims task t and runs it in the foreground, its log on stderr.
func (a *App) runTask(t *entities.Task) (*entities.Task, error) {
	done, _, err := a.runTaskOutcome(t)
	return done, err
}

// runTaskOutcome is runTask that also returns the back end's outcome.
func (a *App) runTaskOutcome(t *entities.Task) (*entities.Task, *hosting.Outcome, error) {
	d, r, err := a.dispatcher()
	if err != nil {
		return nil, nil, err
	}
	defer r.Pool.Close()
	echo := &taskEcho{a: a}
	d.Echo = func(_ *entities.Task, l entities.LogLine) { echo.line(l) }
	var out hosting.Outcome
	d.Handler = func(ctx context.Context, t *entities.Task, log func(level, msg string)) queue.Outcome {
		out = r.Run(ctx, t, provision.LoggerFunc(log))
		return queueOutcome(out)
	}
	done, err := d.RunTask(a.ctx, t.ID)
	echo.end(done)
	var busy *queue.BusyError
	if errors.As(err, &busy) {
		return nil, nil, &Error{Code: ExitBusy, Err: err, Hint: busy.Hint}
	}
	if err != nil {
		return nil, nil, err
	}
	return done, &out, nil
}

func queueOutcome(o hosting.Outcome) queue.Outcome {
	return queue.Outcome{Status: o.Status, Error: o.Error, Hint: o.Hint, Code: o.Code, Result: o.Result}
}
