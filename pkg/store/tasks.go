package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

const taskCols = `id, type, target_kind, target_id, target, status, options, created, started, finished, error, hint, fix, attempt, lease_until, worker, COALESCE(parent_id, 0), master`

// scanTask reads a row of taskCols.
func scanTask(sc interface{ Scan(...any) error }) (*entities.Task, error) {
	var t entities.Task
	var opts, fix string
	var created int64
	var started, finished, lease sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Type, &t.TargetKind, &t.TargetID, &t.Target, &t.Status, &opts, &created, &started, &finished, &t.Error, &t.Hint, &fix, &t.Attempt, &lease, &t.Worker, &t.Parent, &t.Master); err != nil {
		return nil, err
	}
	t.Created = fromMs(created)
	t.Started = fromNullMs(started)
	t.Finished = fromNullMs(finished)
	t.LeaseUntil = fromNullMs(lease)
	t.Fix = parseFix(fix)
	if opts != "" && opts != "{}" {
		_ = json.Unmarshal([]byte(opts), &t.Options)
	}
	return &t, nil
}

// insertTask queues a task in tx, created now.
func (s *Store) insertTask(ctx context.Context, tx *sql.Tx, typ, kind string, targetID int64, target string, opts map[string]string) (*entities.Task, error) {
	return s.insertTaskAt(ctx, tx, s.Now(), typ, kind, targetID, target, opts)
}

// insertTaskAt is the one statement that queues a task: every task is
// created through it, in the caller's transaction.
func (s *Store) insertTaskAt(ctx context.Context, tx *sql.Tx, created time.Time, typ, kind string, targetID int64, target string, opts map[string]string) (*entities.Task, error) {
	return s.insertChildAt(ctx, tx, created, 0, "", typ, kind, targetID, target, opts)
}

// insertTasks is the one statement that records tasks (with a taskRow
// per task): a task is made here and nowhere else.
const (
	insertTasks = `INSERT INTO tasks (type, target_kind, target_id, target, status, options, created, parent_id, master) VALUES `
	taskRow     = `(?, ?, ?, ?, 'queued', ?, ?, ?, ?)`
)

// siteRef is a site a task is queued on.
type siteRef struct {
	id     int64
	domain string
}

// insertSiteTasksAt records a queued task of type typ, without options,
// on each of sites (each site once), in multi-row statements of a few
// hundred tasks: one statement per task was most of a scheduled queue's
// run on PostgreSQL at 100,000 sites. The tasks come in the order of
// sites.
func (s *Store) insertSiteTasksAt(ctx context.Context, tx *sql.Tx, created time.Time, typ string, sites []siteRef) ([]*entities.Task, error) {
	const batch = 500
	at := ms2(created)
	out := make([]*entities.Task, 0, len(sites))
	for lo := 0; lo < len(sites); lo += batch {
		part := sites[lo:min(lo+batch, len(sites))]
		var q strings.Builder
		q.WriteString(insertTasks)
		args := make([]any, 0, 8*len(part))
		for i, v := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(taskRow)
			args = append(args, typ, entities.TargetSite, v.id, v.domain, "{}", at, sql.NullInt64{}, "")
		}
		q.WriteString(` RETURNING id, target_id`)
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		type made struct{ id, site int64 }
		ids, err := scanAll(rows, func(rs *sql.Rows, m *made) error { return rs.Scan(&m.id, &m.site) })
		if err != nil {
			return nil, err
		}
		idOf := make(map[int64]int64, len(ids))
		for _, m := range ids {
			idOf[m.site] = m.id
		}
		for _, v := range part {
			out = append(out, &entities.Task{ID: idOf[v.id], Type: typ, TargetKind: entities.TargetSite, TargetID: v.id, Target: v.domain,
				Status: entities.TaskQueued, Created: fromMs(at)})
		}
	}
	return out, nil
}

// insertChildAt is insertTaskAt for a task with a parent (0: none), tied
// to master ("": none; see Task.Master).
func (s *Store) insertChildAt(ctx context.Context, tx *sql.Tx, created time.Time, parent int64, master, typ, kind string, targetID int64, target string, opts map[string]string) (*entities.Task, error) {
	ob := []byte("{}")
	if len(opts) > 0 {
		ob, _ = json.Marshal(opts)
	}
	at := ms2(created)
	id, err := insert(ctx, tx, insertTasks+taskRow,
		typ, kind, targetID, target, string(ob), at, sql.NullInt64{Int64: parent, Valid: parent != 0}, master)
	if err != nil {
		return nil, err
	}
	return &entities.Task{ID: id, Type: typ, TargetKind: kind, TargetID: targetID, Target: target, Status: entities.TaskQueued, Options: opts, Created: fromMs(at), Parent: parent, Master: master}, nil
}

// QueueChildTask records a queued task of type typ on site v as a child
// of task parent. The dispatcher's claims skip children: only their
// parent runs them (by id: the queue's RunTask), so it queues each one
// just before it runs it.
func (s *Store) QueueChildTask(ctx context.Context, parent int64, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	var t *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = s.insertChildAt(ctx, tx, s.Now(), parent, "", typ, entities.TargetSite, v.ID, v.Domain, opts)
		return err
	})
	return t, err
}

// CancelChildren cancels the children of task parent that are still
// queued (a parent that stopped, or died, before it ran them), so that
// they hold back no other task of their sites. It returns how many.
func (s *Store) CancelChildren(ctx context.Context, parent int64, why string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET status = 'cancelled', finished = ?, error = ? WHERE parent_id = ? AND status = 'queued'`, s.now(), why, parent)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// QueueTask records a queued task.
func (s *Store) QueueTask(ctx context.Context, typ, kind string, targetID int64, target string, opts map[string]string) (*entities.Task, error) {
	return s.QueueTaskFor(ctx, "", typ, kind, targetID, target, opts)
}

// QueueTaskFor records a queued task tied to master (Task.Master; "": a
// task any master may run).
func (s *Store) QueueTaskFor(ctx context.Context, master, typ, kind string, targetID int64, target string, opts map[string]string) (*entities.Task, error) {
	var t *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = s.insertChildAt(ctx, tx, s.Now(), 0, master, typ, kind, targetID, target, opts)
		return err
	})
	return t, err
}

// GetTask finds a task by id.
func (s *Store) GetTask(ctx context.Context, id int64) (*entities.Task, error) {
	t, err := scanTask(s.db.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "task", Name: itoa(id)}
	}
	return t, err
}

// TaskFilter narrows ListTasks.
type TaskFilter struct {
	Status     string
	Type       string
	TargetKind string
	TargetID   int64
	Target     string
	Parent     int64 // only the children of this task
	Limit      int   // 0: no limit
}

// ListTasks lists tasks, newest first.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) ([]*entities.Task, error) {
	q := `SELECT ` + taskCols + ` FROM tasks WHERE 1=1`
	var args []any
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.TargetKind != "" {
		q += ` AND target_kind = ?`
		args = append(args, f.TargetKind)
	}
	if f.TargetID != 0 {
		q += ` AND target_id = ?`
		args = append(args, f.TargetID)
	}
	if f.Target != "" {
		q += ` AND target = ?`
		args = append(args, f.Target)
	}
	if f.Parent != 0 {
		q += ` AND parent_id = ?`
		args = append(args, f.Parent)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanTasks(rows)
}

// AppendLog adds lines to a task's log.
func (s *Store) AppendLog(ctx context.Context, taskID int64, lines ...entities.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	return s.txLock(ctx, false, func(tx *sql.Tx) error { // appends: no writer lock needed
		st, err := tx.PrepareContext(ctx, `INSERT INTO task_log (task_id, time, level, message, fix) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, l := range lines {
			if l.Time.IsZero() {
				l.Time = s.Now()
			}
			if _, err := st.ExecContext(ctx, taskID, ms2(l.Time), l.Level, l.Message, fixText(l.Fix)); err != nil {
				return err
			}
		}
		return nil
	})
}

// TaskLog returns a task's log lines with ids above after (0: all), and
// the id of the last line returned.
func (s *Store) TaskLog(ctx context.Context, taskID, after int64) ([]entities.LogLine, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, time, level, message, fix FROM task_log WHERE task_id = ? AND id > ? ORDER BY id`, taskID, after)
	if err != nil {
		return nil, after, err
	}
	defer rows.Close()
	out := []entities.LogLine{}
	last := after
	for rows.Next() {
		var l entities.LogLine
		var tm int64
		var fix string
		if err := rows.Scan(&last, &tm, &l.Level, &l.Message, &fix); err != nil {
			return nil, last, err
		}
		l.Time = fromMs(tm)
		l.Fix = parseFix(fix)
		out = append(out, l)
	}
	return out, last, rows.Err()
}

// TaskResult returns the JSON result the back end gave for a task.
func (s *Store) TaskResult(ctx context.Context, id int64) (string, error) {
	var r string
	err := s.db.QueryRowContext(ctx, `SELECT result FROM tasks WHERE id = ?`, id).Scan(&r)
	return r, err
}

// CancelTask cancels a queued task. A task in any other status is a conflict.
func (s *Store) CancelTask(ctx context.Context, id int64) error {
	t, err := s.GetTask(ctx, id)
	if err != nil {
		return err
	}
	ok, err := s.CancelQueued(ctx, id, "cancelled by the administrator")
	if err != nil {
		return err
	}
	if !ok {
		return &ConflictError{Field: "id", Msg: "task " + itoa(id) + " is " + t.Status + ", not queued: only queued tasks can be cancelled"}
	}
	return nil
}

// CancelQueued cancels task id, with why as its error, if it is queued;
// false when it is not.
func (s *Store) CancelQueued(ctx context.Context, id int64, why string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET status = 'cancelled', finished = ?, error = ? WHERE id = ? AND status = 'queued'`, s.now(), why, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RetryTask queues a new task with the same type, target and options as a
// finished one that failed or was cancelled.
func (s *Store) RetryTask(ctx context.Context, id int64) (*entities.Task, error) {
	t, err := s.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Status != entities.TaskError && t.Status != entities.TaskCancelled && t.Status != entities.TaskWarning {
		return nil, &ConflictError{Field: "id", Msg: "task " + itoa(id) + " is " + t.Status + ": only tasks that ended in error, warning or cancelled can be retried"}
	}
	if gone, err := s.targetGone(ctx, t); err != nil {
		return nil, err
	} else if gone {
		hint, fix := "nothing is left to retry it on", []entities.Action(nil)
		if t.TargetKind == entities.TargetSite {
			hint, fix = "bring the site back first", []entities.Action{entities.Do("site.restore", t.Target)}
			if _, err := s.GetSite(ctx, t.Target); err == nil {
				hint = "site " + t.Target + " is there again as a new record: run the task on it anew (its tasks are listed with the site)"
				fix = []entities.Action{entities.Do("task.list", "", "site="+t.Target)}
			}
		}
		return nil, &ConflictError{Field: "id", Msg: "task " + itoa(id) + " was on " + t.TargetKind + " " + t.Target + ", which was deleted since", Hint: hint, Fix: fix}
	}
	// A task tied to a master stays tied: its work is still only there.
	return s.QueueTaskFor(ctx, t.Master, t.Type, t.TargetKind, t.TargetID, t.Target, t.Options)
}

// targetGone reports whether a task's target was deleted (a backup: forgotten).
func (s *Store) targetGone(ctx context.Context, t *entities.Task) (bool, error) {
	q := map[string]string{
		entities.TargetSite:     `SELECT status = 'deleted' FROM sites WHERE id = ?`,
		entities.TargetPlatform: `SELECT status = 'deleted' FROM platforms WHERE id = ?`,
		entities.TargetServer:   `SELECT status = 'deleted' FROM servers WHERE id = ?`,
		entities.TargetBackup:   `SELECT 0 FROM backups WHERE id = ?`,
	}[t.TargetKind]
	if q == "" {
		return false, nil
	}
	var gone bool
	err := s.db.QueryRowContext(ctx, q, t.TargetID).Scan(&gone)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return gone, err
}

// fixText is actions as a fix column holds them: a JSON list, "" for none.
func fixText(fix []entities.Action) string {
	if len(fix) == 0 {
		return ""
	}
	b, _ := json.Marshal(fix)
	return string(b)
}

// parseFix reads a fix column (fixText).
func parseFix(s string) []entities.Action {
	if s == "" {
		return nil
	}
	var fix []entities.Action
	_ = json.Unmarshal([]byte(s), &fix)
	return fix
}
