package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// claimable is the rule a queued task t must meet to be claimed: nothing
// runs on its target, and it is the oldest queued task of its target, so
// the tasks of one target run one at a time and in creation order. Tasks
// on different targets (two sites on one database server, a site and its
// platform) run independently.
const claimable = `t.status = 'queued'
	AND NOT EXISTS (SELECT 1 FROM tasks b WHERE b.target_kind = t.target_kind AND b.target_id = t.target_id AND b.status = 'processing')
	AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.target_kind = t.target_kind AND o.target_id = t.target_id AND o.status = 'queued' AND o.id < t.id)`

// claimSQL claims up to ?4 tasks in one statement: SQLite's single writer
// makes it atomic, so two dispatchers never get the same task. At most one
// task of a target can be claimable, so one claim never takes two tasks of
// one target either.
const claimSQL = `UPDATE tasks SET status = 'processing', started = ?1, attempt = attempt + 1, lease_until = ?2, worker = ?3
WHERE id IN (SELECT t.id FROM tasks t WHERE ` + claimable + ` ORDER BY t.id LIMIT ?4)
RETURNING ` + store.TaskColumns

// claimOneSQL claims the task ?4 if it is claimable.
const claimOneSQL = `UPDATE tasks SET status = 'processing', started = ?1, attempt = attempt + 1, lease_until = ?2, worker = ?3
WHERE id IN (SELECT t.id FROM tasks t WHERE t.id = ?4 AND ` + claimable + `)
RETURNING ` + store.TaskColumns

// claim marks up to limit claimable tasks processing for worker, with a
// lease until now+lease, and returns them in id order.
func claim(ctx context.Context, db *sql.DB, now time.Time, lease time.Duration, worker string, limit int) ([]*entities.Task, error) {
	return claimQuery(ctx, db, claimSQL, now, lease, worker, limit)
}

// claimTask claims the one task id; nil if it is not claimable.
func claimTask(ctx context.Context, db *sql.DB, now time.Time, lease time.Duration, worker string, id int64) (*entities.Task, error) {
	ts, err := claimQuery(ctx, db, claimOneSQL, now, lease, worker, id)
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	return ts[0], nil
}

func claimQuery(ctx context.Context, db *sql.DB, q string, now time.Time, lease time.Duration, worker string, arg any) ([]*entities.Task, error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the store opens with _txlock=immediate
	if err != nil {
		return nil, fmt.Errorf("queue: claiming tasks: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, q, now.UnixMilli(), now.Add(lease).UnixMilli(), worker, arg)
	if err != nil {
		return nil, fmt.Errorf("queue: claiming tasks: %w", err)
	}
	out, err := scanTasks(rows)
	if err != nil {
		return nil, fmt.Errorf("queue: claiming tasks: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("queue: claiming tasks: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// scanTasks reads every row of store.TaskColumns, then closes rows.
func scanTasks(rows *sql.Rows) ([]*entities.Task, error) {
	defer rows.Close()
	var out []*entities.Task
	for rows.Next() {
		t, err := store.ScanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ErrBusy is matched (errors.Is) by every *BusyError.
var ErrBusy = errors.New("target is busy")

// BusyError says that a task cannot run now because another task holds its
// target: one is running on it, or one was queued on it earlier and must
// run first. The CLI maps it to exit code 4.
type BusyError struct {
	Task   *entities.Task // the task that was asked to run
	Holder *entities.Task // the task in its way
	Hint   string
}

func (e *BusyError) Error() string {
	h := e.Holder
	if h.Status == entities.TaskProcessing {
		return fmt.Sprintf("%s %s is busy: task %d (%s) is running on it", e.Task.TargetKind, e.Task.Target, h.ID, h.Type)
	}
	return fmt.Sprintf("%s %s is busy: task %d (%s) was queued on it earlier and runs first", e.Task.TargetKind, e.Task.Target, h.ID, h.Type)
}

// Is lets errors.Is(err, ErrBusy) match.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

func newBusyError(t, holder *entities.Task) *BusyError {
	hint := fmt.Sprintf("task %d stays queued and runs after it: follow task %d with aegir task log %d --follow, then run aegir hosting dispatch (or aegir task cancel %d)",
		t.ID, holder.ID, holder.ID, t.ID)
	if holder.Status == entities.TaskQueued {
		hint = fmt.Sprintf("task %d stays queued behind it: run both with aegir hosting dispatch, or cancel it with aegir task cancel %d", t.ID, holder.ID)
	}
	return &BusyError{Task: t, Holder: holder, Hint: hint}
}

// holder finds the task that keeps t from being claimed: a processing task
// on its target, else the oldest queued one before it. Nil if none.
func holder(ctx context.Context, db *sql.DB, t *entities.Task) (*entities.Task, error) {
	h, err := store.ScanTask(db.QueryRowContext(ctx, `SELECT `+store.TaskColumns+` FROM tasks
		WHERE target_kind = ? AND target_id = ? AND id <> ? AND (status = 'processing' OR (status = 'queued' AND id < ?))
		ORDER BY status = 'processing' DESC, id LIMIT 1`, t.TargetKind, t.TargetID, t.ID, t.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return h, err
}

// WorkerID names this process as a task's worker: "pid@hostname". The
// rescuer on the same host uses the pid to tell a dead dispatcher at once,
// without waiting for its lease to run out.
func WorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return strconv.Itoa(os.Getpid()) + "@" + host
}

// parseWorker splits "pid@hostname".
func parseWorker(w string) (pid int, host string, ok bool) {
	p, h, found := strings.Cut(w, "@")
	if !found {
		return 0, "", false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		return 0, "", false
	}
	return n, h, true
}
