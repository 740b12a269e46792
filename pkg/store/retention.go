package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"
)

// Retention of the state's history (the configuration's tasks.keep and
// audit.keep; pkg/queue's Dispatcher.Prune runs it). Without it the tasks
// the scheduled queues make every few minutes, their log lines and the
// API's audit log grow without bound.
//
// What a prune never deletes, and why (everything in the state that
// refers to a task by its id was checked):
//
//   - A task that has not ended (queued, processing): the queue's own.
//   - The newest task of each type on each target (target_kind,
//     target_id, type), however old: site show, the dashboard and the
//     API show a target's last tasks (its last verify, its last backup),
//     task retry retries the last failure of a kind, and platform migrate
//     --status reads the last migrate of a platform. The newest is never
//     deleted, so a target always keeps one task of each type it ever had.
//   - A task with a move journal (move_journals) or whose lock is held
//     (move_locks, "task-ID", the name pkg/provision/tasks gives it:
//     TestTaskLockName there): a half-done move's rescue plays it back by
//     the task's id.
//   - A child task (a platform migrate's site moves) apart from its
//     parent: the progress of a migrate is read from its children, so a
//     parent and its children are deleted together, and only when none of
//     them is to be kept (a child that is the newest move of its site
//     keeps its whole migrate). A task whose children have children of
//     their own is kept (no task makes those; deleting them in order is
//     not worth its code).
//
// What else refers to tasks, and is left as it is: the audit log's
// task_id and the webhook deliveries' JSON (a task.failed event) are
// records of what happened and keep the id of a task pruned since (its
// show then says it was not found); a backup refers to no task; log
// lines go with their task, and so do its records of process groups on
// remote servers (task_processes). Those records also go, in batches of
// their own, when their task is gone (deleted before this prune existed)
// or ended before the cutoff but is kept: a record is meant to go with
// its command's end or the task's rescue, and one left that long (a
// rescue that could not reach its server) would only make a rescue kill
// a pid that is another process's by now.
//
// Deleting is done in transactions of at most Batch tasks (with their
// log lines and children), so that a prune never holds SQLite's one
// writer lock for long, and on SQLite it pauses between two batches
// (yieldWriter): a claim of another dispatcher waits about one batch
// (docs/benchmarks.md, Retention). On PostgreSQL, two masters that prune at once delete disjoint
// rows or the same ones (a DELETE of a row already gone deletes nothing);
// the queue lets only one prune an hour anyway (ClaimRun).
//
// The SQLite file does not shrink: its freed pages are reused by the rows
// written after, so a state pruned regularly stops growing at the size of
// what it keeps. No VACUUM is run (it rewrites the whole file while
// holding the database; docs/configuration.md says how to run one).

// PruneBatch is how many tasks, or audit entries, one prune transaction
// deletes at most, unless PruneRule.Batch says otherwise.
const PruneBatch = 1000

// PruneRule says what Prune deletes.
type PruneRule struct {
	// TasksBefore: the tasks that ended before it (zero: none).
	TasksBefore time.Time
	// AuditBefore: the audit log's entries made before it (zero: none).
	AuditBefore time.Time
	// Batch is how many tasks, or entries, a transaction deletes at most
	// (0: PruneBatch).
	Batch int
	// MaxBatches is how many transactions of each kind one Prune runs at
	// most (0: as many as it takes); More then says whether some are left.
	MaxBatches int
}

// Pruned is what Prune deleted.
type Pruned struct {
	Tasks    int64 `json:"tasks" yaml:"tasks"`         // tasks, children included
	LogLines int64 `json:"log_lines" yaml:"log_lines"` // their log lines
	Audit    int64 `json:"audit" yaml:"audit"`         // audit log entries
	// Processes: records of process groups on remote servers
	// (task_processes) of the tasks deleted, of tasks gone, and of tasks
	// that ended before the cutoff.
	Processes int64 `json:"processes" yaml:"processes"`
	More      bool  `json:"more" yaml:"more"` // MaxBatches stopped it before the end
}

// mayGo is the condition under which task X (an alias, replaced) may go
// as far as it alone goes (?1: the cutoff): it ended before ?1, a newer
// task of its type is on its target (tasks_target_type answers that with
// one probe), and no move journal or lock is its: see the list above.
// A top-level task needs its children's leave too (pruneTasks).
const mayGo = `X.finished < ?1 AND X.status NOT IN ('queued', 'processing')
	AND EXISTS (SELECT 1 FROM tasks n WHERE n.target_kind = X.target_kind AND n.target_id = X.target_id AND n.type = X.type AND n.id > X.id)
	AND NOT EXISTS (SELECT 1 FROM move_journals j WHERE j.task_id = X.id)
	AND NOT EXISTS (SELECT 1 FROM move_locks l WHERE l.name = 'task-' || X.id)`

func mayGoAs(alias string) string { return strings.ReplaceAll(mayGo, "X.", alias+".") }

// pruneWindow is the next Batch top-level tasks that ended before ?1,
// after (finished, id) (?2, ?3), oldest first: a range of tasks_finished
// and nothing else, so that each batch reads Batch tasks however many
// there are. (With the conditions of prunableTask in the same query,
// PostgreSQL's planner joined every old task with the table and sorted
// them for each batch: 140 ms a batch at 50,000 tasks, growing with them.)
const pruneWindow = `SELECT id, finished FROM tasks WHERE parent_id IS NULL AND finished < ?1
	AND (finished, id) > (?2, ?3) ORDER BY finished, id LIMIT ?4`

// Prune deletes what r says, in batches (see above), and returns what it
// deleted. What it deleted stays deleted when it fails part of the way.
func (s *Store) Prune(ctx context.Context, r PruneRule) (Pruned, error) {
	var p Pruned
	if r.Batch <= 0 {
		r.Batch = PruneBatch
	}
	if !r.TasksBefore.IsZero() {
		if err := s.pruneTasks(ctx, r, &p); err != nil {
			return p, err
		}
		if err := s.pruneProcesses(ctx, r, &p); err != nil {
			return p, err
		}
	}
	if !r.AuditBefore.IsZero() {
		if err := s.pruneAudit(ctx, r, &p); err != nil {
			return p, err
		}
	}
	return p, nil
}

// pruneTasks deletes the tasks that may go, a batch a transaction. The
// tasks it passes over (kept) are passed once: each batch starts after
// the last candidate of the one before.
func (s *Store) pruneTasks(ctx context.Context, r PruneRule, p *Pruned) error {
	cut := ms2(r.TasksBefore)
	var afterFinished, afterID int64 = -1, 0
	for n := 0; ; n++ {
		if r.MaxBatches > 0 && n == r.MaxBatches {
			p.More = true
			return nil
		}
		full := false
		began := time.Now()
		err := s.tx(ctx, func(tx *sql.Tx) error {
			type cand struct{ id, finished int64 }
			rows, err := tx.QueryContext(ctx, pruneWindow, cut, afterFinished, afterID, r.Batch)
			if err != nil {
				return err
			}
			cs, err := scanAll(rows, func(rs *sql.Rows, c *cand) error { return rs.Scan(&c.id, &c.finished) })
			if err != nil || len(cs) == 0 {
				return err
			}
			full = len(cs) == r.Batch
			afterFinished, afterID = cs[len(cs)-1].finished, cs[len(cs)-1].id
			window := make([]int64, len(cs))
			for i, c := range cs {
				window[i] = c.id
			}
			// Of the window, the tasks that may go by themselves (a probe
			// or two each), then their children, each with whether it is
			// to be kept, then which of those have children: by
			// tasks_parent. A child kept, or with children, keeps its
			// parent and siblings. (One query with the children's
			// conditions in a NOT EXISTS made PostgreSQL read every task
			// in the table for each batch.)
			prows, err := tx.QueryContext(ctx, `SELECT t.id FROM tasks t WHERE t.id IN (`+joinIDs(window)+`) AND t.parent_id IS NULL AND `+mayGoAs("t"), cut)
			if err != nil {
				return err
			}
			ids, err := scanColumn[int64](prows)
			if err != nil || len(ids) == 0 {
				return err
			}
			krows, err := tx.QueryContext(ctx, `SELECT c.parent_id, c.id, CASE WHEN `+mayGoAs("c")+` THEN 0 ELSE 1 END
				FROM tasks c WHERE c.parent_id IN (`+joinIDs(ids)+`)`, cut)
			if err != nil {
				return err
			}
			type child struct {
				parent, id int64
				keep       int
			}
			cs2, err := scanAll(krows, func(rs *sql.Rows, c *child) error { return rs.Scan(&c.parent, &c.id, &c.keep) })
			if err != nil {
				return err
			}
			kept := map[int64]bool{}
			parentOf := map[int64]int64{}
			for _, c := range cs2 {
				parentOf[c.id] = c.parent
				if c.keep != 0 {
					kept[c.parent] = true
				}
			}
			if len(cs2) > 0 { // children with children keep their family
				ids := make([]int64, 0, len(cs2))
				for _, c := range cs2 {
					ids = append(ids, c.id)
				}
				grows, err := tx.QueryContext(ctx, `SELECT DISTINCT parent_id FROM tasks WHERE parent_id IN (`+joinIDs(ids)+`)`)
				if err != nil {
					return err
				}
				fathers, err := scanColumn[int64](grows)
				if err != nil {
					return err
				}
				for _, id := range fathers {
					kept[parentOf[id]] = true
				}
			}
			var kids []int64
			for _, c := range cs2 {
				if !kept[c.parent] {
					kids = append(kids, c.id)
				}
			}
			ids = slices.DeleteFunc(ids, func(id int64) bool { return kept[id] })
			// The log lines explicitly (rather than by the cascade) to
			// count them; the children before their parents.
			for _, q := range []struct {
				sql string
				ids []int64
				n   *int64
			}{
				{`DELETE FROM task_log WHERE task_id IN (`, kids, &p.LogLines},
				{`DELETE FROM task_log WHERE task_id IN (`, ids, &p.LogLines},
				{`DELETE FROM task_processes WHERE task_id IN (`, kids, &p.Processes},
				{`DELETE FROM task_processes WHERE task_id IN (`, ids, &p.Processes},
				{`DELETE FROM tasks WHERE id IN (`, kids, &p.Tasks},
				{`DELETE FROM tasks WHERE id IN (`, ids, &p.Tasks},
			} {
				for lo := 0; lo < len(q.ids); lo += r.Batch {
					res, err := tx.ExecContext(ctx, q.sql+joinIDs(q.ids[lo:min(lo+r.Batch, len(q.ids))])+`)`)
					if err != nil {
						return err
					}
					k, _ := res.RowsAffected()
					*q.n += k
				}
			}
			return nil
		})
		if err != nil || !full {
			return err
		}
		if err := s.yieldWriter(ctx, time.Since(began)); err != nil {
			return err
		}
	}
}

// yieldWriter pauses a prune between two batches on SQLite, for as long
// as the last one took (at most 100 ms): a writer that waits for the lock
// polls (SQLite's busy handler sleeps up to 100 ms between tries), and
// without a pause the next batch takes the lock again before it looks,
// every time: in a benchmark a queued task then waited 1.7 s instead of
// about one batch. PostgreSQL's lock waiters are queued: no pause.
func (s *Store) yieldWriter(ctx context.Context, took time.Duration) error {
	if s.dialect == postgresDialect {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(min(took, 100*time.Millisecond)):
		return nil
	}
}

// pruneProcesses deletes the records of process groups (task_processes)
// whose task is gone, or ended before r.TasksBefore and is kept (the
// newest of its type, a move's with its journal), a batch a statement.
// Only a rescue reads them, and only of a task still processing. There
// are few (a task's records go when it ends): each batch reads them all,
// with a probe of tasks each.
func (s *Store) pruneProcesses(ctx context.Context, r PruneRule, p *Pruned) error {
	n, more, err := s.deleteBatches(ctx, `DELETE FROM task_processes WHERE (task_id, host, pid) IN (
		SELECT o.task_id, o.host, o.pid FROM task_processes o LEFT JOIN tasks t ON t.id = o.task_id
		WHERE t.id IS NULL OR (t.finished < ? AND t.status NOT IN ('queued', 'processing'))
		ORDER BY o.task_id, o.host, o.pid LIMIT ?)`, ms2(r.TasksBefore), r.Batch, r.MaxBatches)
	p.Processes += n
	p.More = p.More || more
	return err
}

// pruneAudit deletes the audit log's entries made before r.AuditBefore,
// oldest first, a batch a statement.
func (s *Store) pruneAudit(ctx context.Context, r PruneRule, p *Pruned) error {
	n, more, err := s.deleteBatches(ctx, `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE time < ? ORDER BY time, id LIMIT ?)`,
		ms2(r.AuditBefore), r.Batch, r.MaxBatches)
	p.Audit += n
	p.More = p.More || more
	return err
}

// deleteBatches runs the DELETE q, whose last argument is the batch's
// size (a LIMIT in its subquery) after arg, until it deletes fewer than
// batch rows, at most maxBatches times (0: no limit; more then says it
// stopped there). It returns the rows it deleted.
func (s *Store) deleteBatches(ctx context.Context, q string, arg any, batch, maxBatches int) (n int64, more bool, err error) {
	for i := 0; ; i++ {
		if maxBatches > 0 && i == maxBatches {
			return n, true, nil
		}
		began := time.Now()
		res, err := s.db.ExecContext(ctx, q, arg, batch)
		if err != nil {
			return n, false, err
		}
		k, _ := res.RowsAffected()
		n += k
		if k < int64(batch) {
			return n, false, nil
		}
		if err := s.yieldWriter(ctx, time.Since(began)); err != nil {
			return n, false, err
		}
	}
}
