package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// A running task's life in the tasks table: a dispatcher claims it (status
// processing, its worker and a lease), renews the lease while it runs, and
// records its end; a dispatcher that finds a processing task whose lease
// ran out or whose worker is gone rescues it (the same end, error). Every
// change after the claim is conditional on the task still being
// processing for the same worker, so a dispatcher that was declared dead
// cannot overwrite what its rescuer recorded.

// claimable is the rule a queued task t must meet to be claimed: nothing
// runs on its target, and it is the oldest queued task of its target, so
// the tasks of one target run one at a time and in creation order. Tasks
// on different targets (two sites on one database server, a site and its
// platform) run independently. A task tied to a master (tasks.master)
// is claimable by that master alone (?5: the claimer's master); it keeps
// its place in its target's order, so for every other master the
// target's later tasks wait until its master runs it or it is cancelled.
const claimable = `t.status = 'queued' AND t.master IN ('', ?5)
	AND NOT EXISTS (SELECT 1 FROM tasks b WHERE b.target_kind = t.target_kind AND b.target_id = t.target_id AND b.status = 'processing')
	AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.target_kind = t.target_kind AND o.target_id = t.target_id AND o.status = 'queued' AND o.id < t.id)`

// claimSQL claims up to ?4 tasks in one statement. On SQLite its single
// writer makes it atomic, so two dispatchers never get the same task. It
// skips children (parent_id): their parent claims each one by id. At most
// one task of a target can be claimable, so one claim never takes two
// tasks of one target either.
//
// On PostgreSQL (skipLocked) several masters claim at once: each locks the
// tasks it picks, FOR UPDATE SKIP LOCKED, and passes over those another
// claimer holds. A task another claimer took meanwhile is no longer queued
// when its lock is granted (PostgreSQL checks the newest row), so it is
// skipped; a claim whose snapshot shows a target's older task queued or
// processing takes none of the target's newer ones; and tasks are inserted
// under writerLock, so a task with a lower id is never committed after a
// higher one of its target was seen. Per-target order and one task at a
// time on a target hold across claimers.
const claimSQL = `UPDATE tasks SET status = 'processing', started = ?1, attempt = attempt + 1, lease_until = ?2, worker = ?3
WHERE id IN (SELECT t.id FROM tasks t WHERE ` + claimable + ` AND t.parent_id IS NULL ORDER BY t.id LIMIT ?4 /*skip*/)
RETURNING ` + taskCols

// claimOneSQL claims the task ?4 if it is claimable.
const claimOneSQL = `UPDATE tasks SET status = 'processing', started = ?1, attempt = attempt + 1, lease_until = ?2, worker = ?3
WHERE id IN (SELECT t.id FROM tasks t WHERE t.id = ?4 AND ` + claimable + ` /*skip*/)
RETURNING ` + taskCols

// skipLocked is q for PostgreSQL: its subquery locks the rows it picks,
// skipping those locked by another claimer.
func skipLocked(q string) string {
	return strings.Replace(q, "/*skip*/", "FOR UPDATE OF t SKIP LOCKED", 1)
}

var claimSQLPostgres, claimOneSQLPostgres = skipLocked(claimSQL), skipLocked(claimOneSQL)

// Claim says who claims queued tasks and until when.
type Claim struct {
	Worker     string    // the claimer, recorded in tasks.worker ("pid@master/machine": queue.WorkerID)
	Now        time.Time // the claimed tasks' start
	LeaseUntil time.Time // the claimer holds them until then, unless it renews the lease
	Master     string    // the claimer's master: it also claims the tasks tied to it
}

// ClaimTasks marks up to limit claimable tasks processing for c.Worker and
// returns them in id order (none: an empty slice). A task is claimable when
// nothing is processing on its target and no older task of its target is
// queued.
func (s *Store) ClaimTasks(ctx context.Context, c Claim, limit int) ([]*entities.Task, error) {
	if s.dialect == postgresDialect {
		return s.claim(ctx, claimSQLPostgres, c, limit)
	}
	return s.claim(ctx, claimSQL, c, limit)
}

// ClaimTask claims the one task id; nil if it is not claimable (not
// queued, or another task holds its target: see TaskHolder).
func (s *Store) ClaimTask(ctx context.Context, c Claim, id int64) (*entities.Task, error) {
	q := claimOneSQL
	if s.dialect == postgresDialect {
		q = claimOneSQLPostgres
	}
	ts, err := s.claim(ctx, q, c, id)
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	return ts[0], nil
}

func (s *Store) claim(ctx context.Context, q string, c Claim, arg any) ([]*entities.Task, error) {
	var out []*entities.Task
	// One statement; on SQLite in BEGIN IMMEDIATE (the store opens with
	// _txlock=immediate), on PostgreSQL without writerLock: SKIP LOCKED
	// lets claimers work side by side.
	err := s.txLock(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, ms2(c.Now), ms2(c.LeaseUntil), c.Worker, arg, c.Master)
		if err != nil {
			return err
		}
		out, err = scanTasks(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming tasks: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// scanTasks reads every row of taskCols, then closes rows.
func scanTasks(rows *sql.Rows) ([]*entities.Task, error) {
	defer rows.Close()
	out := []*entities.Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TaskHolder finds the task that keeps t from being claimed: a processing
// task on its target, else the oldest queued one before it. Nil if none.
func (s *Store) TaskHolder(ctx context.Context, t *entities.Task) (*entities.Task, error) {
	h, err := scanTask(s.db.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks
		WHERE target_kind = ? AND target_id = ? AND id <> ? AND (status = 'processing' OR (status = 'queued' AND id < ?))
		ORDER BY status = 'processing' DESC, id LIMIT 1`, t.TargetKind, t.TargetID, t.ID, t.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return h, err
}

// ProcessingTasks lists the tasks marked processing, oldest first.
func (s *Store) ProcessingTasks(ctx context.Context) ([]*entities.Task, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE status = 'processing' ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return scanTasks(rows)
}

// RenewLease extends the lease of task id, which worker runs, to until.
// False (and nothing changed) when the task is no longer processing for
// worker: another dispatcher rescued it.
func (s *Store) RenewLease(ctx context.Context, id int64, worker string, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET lease_until = ? WHERE id = ? AND status = 'processing' AND worker = ?`,
		ms2(until), id, worker)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// TaskEnd is how a task ended.
type TaskEnd struct {
	Status   string // success, warning or error
	Error    string
	Hint     string // what the administrator should do
	Fix      []entities.Action
	Code     string // a stable error code
	Result   any    // saved as the task's JSON result; nil: none
	Finished time.Time
}

// FinishTask records the end of task id, which worker runs: its status,
// error, hint, code and result; the lease is dropped. False (and nothing
// changed) when the task is no longer processing for worker: another
// dispatcher rescued it meanwhile.
func (s *Store) FinishTask(ctx context.Context, id int64, worker string, end TaskEnd) (bool, error) {
	return s.endTask(ctx, id, worker, nil, end)
}

// RescueTask records the end of t, a task found processing whose
// dispatcher died, provided it still is processing with the worker and
// lease it had when read (t.Worker, t.LeaseUntil): a lease renewed
// meanwhile wins, and of two rescuers only one gets true.
func (s *Store) RescueTask(ctx context.Context, t *entities.Task, end TaskEnd) (bool, error) {
	var lease any // NULL: the task never had a lease
	if t.LeaseUntil != nil {
		lease = ms2(*t.LeaseUntil)
	}
	return s.endTask(ctx, t.ID, t.Worker, &lease, end)
}

// endTask is the one statement that ends a running task. lease, if not
// nil, adds the condition that the lease is still the one read.
func (s *Store) endTask(ctx context.Context, id int64, worker string, lease *any, end TaskEnd) (bool, error) {
	var rb []byte
	if end.Result != nil {
		var err error
		if rb, err = json.Marshal(end.Result); err != nil {
			rb, _ = json.Marshal(map[string]string{"unencodable_result": err.Error()})
		}
	}
	q := `UPDATE tasks SET status = ?, error = ?, hint = ?, fix = ?, error_code = ?, result = ?, finished = ?, lease_until = NULL
		WHERE id = ? AND status = 'processing' AND worker = ?`
	args := []any{end.Status, end.Error, end.Hint, fixText(end.Fix), end.Code, string(rb), ms2(end.Finished), id, worker}
	if lease != nil {
		q += ` AND ` + s.dialect.isSame("lease_until", "?")
		args = append(args, *lease)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ClearRescuedError turns rescued task id, which ended in error, into a
// warning without error, hint or code: its work turned out to be done
// when its dispatcher died, and the rescue finished it.
func (s *Store) ClearRescuedError(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tasks SET status = 'warning', error = '', hint = '', fix = '', error_code = '' WHERE id = ?`, id)
	return err
}

// TaskLogTail returns the last n lines of a task's log, oldest first.
func (s *Store) TaskLogTail(ctx context.Context, taskID int64, n int) ([]entities.LogLine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT time, level, message, fix FROM
		(SELECT id, time, level, message, fix FROM task_log WHERE task_id = ? ORDER BY id DESC LIMIT ?) l ORDER BY id`, taskID, n)
	if err != nil {
		return []entities.LogLine{}, err
	}
	defer rows.Close()
	out := []entities.LogLine{}
	for rows.Next() {
		var l entities.LogLine
		var ms int64
		var fix string
		if err := rows.Scan(&ms, &l.Level, &l.Message, &fix); err != nil {
			return out, err
		}
		l.Time = fromMs(ms)
		l.Fix = parseFix(fix)
		out = append(out, l)
	}
	return out, rows.Err()
}
