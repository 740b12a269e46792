package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision"
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
		Handler:  r.Handle,
		Notify:   a.notifier(),
		Cleanup:  r.Rescue,
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
	return wordedNotifier{ns}
}

// wordedNotifier tells of a failed task with its hint worded as the
// command line's commands, as the command line shows it.
type wordedNotifier struct{ queue.Notifier }

func (n wordedNotifier) Notify(ctx context.Context, f *queue.Failure) error {
	g := *f
	t := *f.Task
	g.Task, g.LogTail = &t, slices.Clone(f.LogTail)
	wordTaskHint(g.Task, g.LogTail)
	return n.Notifier.Notify(ctx, &g)
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
	// The foreground keeps the whole outcome: a login-reset's one-time
	// link is shown once and never stored.
	d.Handler = func(ctx context.Context, t *entities.Task, log func(level, msg string)) queue.Outcome {
		out = r.Run(ctx, t, provision.LoggerFunc(log))
		return out.Queue()
	}
	done, err := d.RunTask(a.ctx, t.ID)
	echo.end(done)
	var busy *queue.BusyError
	if errors.As(err, &busy) {
		return nil, nil, &Error{Code: ExitBusy, Err: err, Hint: busy.Hint, Fix: busy.Fix}
	}
	if err != nil {
		return nil, nil, err
	}
	return done, &out, nil
}
