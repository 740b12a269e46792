package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
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
		Store:            r.Store,
		Workers:          a.cfg.GetInt("workers"),
		Lease:            a.cfg.GetDuration("lease"),
		Interval:         a.cfg.GetDuration("queue.interval"),
		Handler:          r.Handle,
		BackupDir:        r.Settings.BackupDir,
		Notify:           a.notifier(),
		Cleanup:          r.Rescue,
		CertExpiringDays: certExpiringDays(a.cfg.GetInt("webhooks.cert_expiring_days")),
		KeepDeliveries:   a.cfg.GetDuration("webhooks.keep"),
		KeepTasks:        a.keepSetting("tasks.keep"),
		KeepAudit:        a.keepSetting("audit.keep"),
		Warnf:            a.warnf,
		Logf: func(format string, args ...any) {
			if a.verbose {
				fmt.Fprintf(a.IO.Err, "dispatch: "+format+"\n", args...)
			}
		},
	}
	r.RunChild = d.RunTask // a platform migrate runs its site moves itself
	return d, r, nil
}

// certExpiringDays is the dispatcher's setting for the configuration's
// webhooks.cert_expiring_days: 0 there is never (-1), as the dispatcher's
// 0 is its default.
func certExpiringDays(days int) int {
	if days <= 0 {
		return -1
	}
	return days
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
	wordLines(g.LogTail)
	g.Word = wordFix
	return n.Notifier.Notify(ctx, &g)
}

// runTask claims task t and runs it in the foreground, its log on stderr.
func (a *App) runTask(t *entities.Task) (*entities.Task, error) {
	done, _, err := a.runTaskLink(t)
	return done, err
}

// runTaskLink is runTask that also returns the one-time login link the
// task made (a login-reset), shown once and never stored. It runs the
// task through the same handler as the dispatcher.
func (a *App) runTaskLink(t *entities.Task) (*entities.Task, string, error) {
	d, r, err := a.dispatcher()
	if err != nil {
		return nil, "", err
	}
	defer r.Pool.Close()
	echo := &taskEcho{a: a}
	d.Echo = func(_ *entities.Task, l entities.LogLine) { echo.line(l) }
	r.KeepLoginLinks = true
	done, err := d.RunTask(a.ctx, t.ID)
	echo.end(done)
	link := r.TakeLoginLink(t.ID)
	var busy *queue.BusyError
	if errors.As(err, &busy) {
		return nil, "", &Error{Code: ExitBusy, Err: err, Hint: busy.Hint, Fix: busy.Fix}
	}
	var tied *queue.TiedError
	if errors.As(err, &tied) {
		hint, fix := queue.TiedHint(tied.Task)
		return nil, "", &Error{Code: ExitBusy, Err: err, Hint: hint, Fix: fix}
	}
	if err != nil {
		return nil, "", err
	}
	return done, link, nil
}
