package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision"
)

// runTask claims task t and runs it in the foreground.
func (a *App) runTask(t *entities.Task) (*entities.Task, error) {
	done, _, err := a.runTaskOutcome(t)
	return done, err
}

// runTaskOutcome is runTask that also returns the back end's outcome.
func (a *App) runTaskOutcome(t *entities.Task) (*entities.Task, *hosting.Outcome, error) {
	st, err := a.Store()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now().UnixMilli()
	res, err := st.DB().ExecContext(a.ctx, `UPDATE tasks SET status = 'processing', started = ?, attempt = attempt + 1, worker = ?, lease_until = ?
		WHERE id = ? AND status = 'queued'
		AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.target_kind = tasks.target_kind AND o.target_id = tasks.target_id AND (o.status = 'processing' OR (o.status = 'queued' AND o.id < tasks.id)))`,
		now, fmt.Sprintf("%d@%s", os.Getpid(), host), now+int64(10*time.Minute/time.Millisecond), t.ID)
	if err != nil {
		return nil, nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, nil, &Error{Code: ExitBusy, Err: fmt.Errorf("%s %s is busy: another task holds it", t.TargetKind, t.Target),
			Hint: fmt.Sprintf("task %d stays queued; see aegir task list --status processing, or let aegir hosting dispatch run it", t.ID)}
	}
	r, err := a.runner()
	if err != nil {
		return nil, nil, err
	}
	defer r.Pool.Close()
	show := a.logWriter()
	out := r.Run(a.ctx, t, provision.LoggerFunc(func(level, msg string) {
		show.Log(level, msg)
		_ = st.AppendLog(a.ctx, t.ID, entities.LogLine{Time: time.Now(), Level: level, Message: msg})
	}))
	if err := st.FinishTask(a.ctx, t.ID, out.Status, out.Error, out.Hint, out.Code, out.Result); err != nil {
		return nil, nil, err
	}
	done, err := st.GetTask(a.ctx, t.ID)
	return done, &out, err
}
