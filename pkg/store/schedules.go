package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// The scheduled queues' state: queue_runs records when each queue last
// ran (a conditional update of it claims a run, so two dispatchers never
// both run one queue), queue_items when a queue last gave a site a task,
// and sites.last_cron, last_backup and last_stats when such a task last
// ended well. The policy (which queues, how often, how many sites a run
// takes) is pkg/queue's; the store finds the due sites and queues their
// tasks.

// DueRule is how a scheduled queue finds its due sites.
type DueRule int

const (
	// DueAfterLastRun: installed sites whose last run of the queue's task
	// is at or before the due time, least recently run first (never run
	// first). The last run is the later of when the queue last gave the
	// site the task and when such a task last ended well
	// (RecordSiteLastRun): a run done by hand counts, and a site whose
	// task fails still goes to the back of the line. A run's size is
	// reckoned on the installed sites. Only the task types of
	// siteLastRunColumn have this rule.
	DueAfterLastRun DueRule = iota
	// DueForCertificate: installed or disabled sites with HTTPS whose ACME
	// certificate's renewal time (certificates.renew_after) is at or
	// before the due time, or that have no certificate at all; earliest
	// renewal first. A run's size is reckoned on those sites.
	DueForCertificate
)

// siteLastRunColumn is the sites column that records, per task type, the
// start of its last task that ended well.
var siteLastRunColumn = map[string]string{
	entities.TaskSiteCron:   "last_cron",
	entities.TaskSiteBackup: "last_backup",
	entities.TaskSiteStats:  "last_stats",
	// A health check's time, whichever task made it (a verify too); a
	// site.health task records it with the health (SaveSiteHealth).
	entities.TaskSiteHealth: "health_checked",
}

// Schedule is a scheduled queue as the store sees it.
type Schedule struct {
	Queue     string    // its name
	TaskType  string    // the task it gives a due site; a site with one queued or processing is not due
	Rule      DueRule   // how it finds its due sites
	DueBefore time.Time // a site is due when its last run (or renewal time) is at or before this
}

// ScheduleRun is one run of a scheduled queue.
type ScheduleRun struct {
	Schedule
	Now       time.Time           // the run's time: the queue's last run, its tasks' creation, when it gave each site its task
	RunBefore time.Time           // the run happens only if the queue never ran or last ran at or before this
	Limit     func(items int) int // how many due sites the run takes, given how many sites the queue serves; nil: none
}

// ScheduleOutcome is what a run of a scheduled queue did.
type ScheduleOutcome struct {
	Ran   bool             // false: the queue was not due, or another dispatcher ran it meanwhile
	Items int              // the sites the queue serves, as the run counted them
	Limit int              // how many due sites the run could take
	Tasks []*entities.Task // the tasks it queued, in the order of the due sites
}

// ScheduleCounts is a scheduled queue's state, for its status.
type ScheduleCounts struct {
	Items   int        // the sites it serves, as a run counts them
	Due     int        // the sites due at DueBefore that have no task of the type pending
	Pending int        // its task type's tasks queued or processing, on any target
	LastRun *time.Time // its last run; nil: never
}

// dueSQL is how a schedule's sites are found: the statement that counts
// the sites it serves, the FROM and WHERE of its due sites (?1 queue
// name, ?2 due before in ms, ?3 task type), the condition that leaves out
// those with a task of the type pending (to append to from), and their
// order.
type dueSQL struct{ count, from, notPending, order string }

func (sc Schedule) sql(d dialect) (dueSQL, error) {
	notPending := `
	AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.target_kind = 'site' AND t.target_id = s.id AND t.status IN ('queued', 'processing') AND ` + d.noIndex("t.type") + ` = ?3)`
	switch sc.Rule {
	case DueAfterLastRun:
		col, ok := siteLastRunColumn[sc.TaskType]
		if !ok {
			return dueSQL{}, fmt.Errorf("store: task type %q records no last run: it cannot be scheduled by last run", sc.TaskType)
		}
		lastRun := d.greatest(`COALESCE(q.last_queued, 0)`, `COALESCE(s.`+col+`, 0)`)
		return dueSQL{
			count: `SELECT COUNT(*) FROM sites WHERE status = 'installed'`,
			from: ` FROM sites s LEFT JOIN queue_items q ON q.queue = ?1 AND q.site_id = s.id
	WHERE s.status = 'installed' AND ` + lastRun + ` <= ?2 AND CAST(?3 AS TEXT) = ?3`,
			notPending: notPending,
			order:      lastRun,
		}, nil
	case DueForCertificate:
		const certs = ` FROM sites s LEFT JOIN certificates c ON c.site_id = s.id
	WHERE s.status IN ('installed', 'disabled') AND s.https <> 'off' AND (c.source = 'acme' OR c.site_id IS NULL)`
		return dueSQL{
			count:      `SELECT COUNT(*)` + certs,
			from:       certs + ` AND COALESCE(c.renew_after, 0) <= ?2 AND CAST(?1 AS TEXT) = ?1 AND CAST(?3 AS TEXT) = ?3`,
			notPending: notPending,
			order:      `COALESCE(c.renew_after, 0)`,
		}, nil
	}
	return dueSQL{}, fmt.Errorf("store: unknown due rule %d", sc.Rule)
}

// queueLastRun reads when queue name last ran; nil: never.
func queueLastRun(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (*time.Time, error) {
	var last sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT last_run FROM queue_runs WHERE name = ?`, name).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return fromNullMs(last), nil
}

// claimRun records now as the last run of name (a row of queue_runs) if
// it never ran or last ran at or before before, in tx; false when it is
// not due (another dispatcher ran it meanwhile).
func claimRun(ctx context.Context, tx *sql.Tx, name string, now, before time.Time) (bool, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO queue_runs (name, last_run) VALUES (?, NULL) ON CONFLICT DO NOTHING`, name); err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE queue_runs SET last_run = ? WHERE name = ? AND (last_run IS NULL OR last_run <= ?)`,
		ms2(now), name, ms2(before))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ClaimRun claims a run of the periodic work name (a prune) for now,
// when it never ran or last ran at or before before: of two dispatchers
// that try at once, one gets true. A read comes first, so that a run
// not due takes no write lock.
func (s *Store) ClaimRun(ctx context.Context, name string, now, before time.Time) (bool, error) {
	last, err := queueLastRun(ctx, s.db, name)
	if err != nil || last != nil && last.After(before) {
		return false, err
	}
	ran := false
	err = s.tx(ctx, func(tx *sql.Tx) error {
		ran, err = claimRun(ctx, tx, name, now, before)
		return err
	})
	return ran, err
}

// ReleaseRun makes the periodic work name, claimed for claimed, due
// again at once (it stopped with work left), unless another run was
// claimed since.
func (s *Store) ReleaseRun(ctx context.Context, name string, claimed time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE queue_runs SET last_run = NULL WHERE name = ? AND last_run = ?`, name, ms2(claimed))
	return err
}

// RunSchedule runs a scheduled queue if it is due (never ran, or last ran
// at or before r.RunBefore): in one transaction it records r.Now as the
// queue's last run, takes up to r.Limit(items) due sites in the rule's
// order (then by id), queues a task of r.TaskType on each (created
// r.Now) and records that the queue gave it one. The conditional update
// of the queue's last run claims the run: of two dispatchers running a
// due queue at once, one gets Ran.
func (s *Store) RunSchedule(ctx context.Context, r ScheduleRun) (ScheduleOutcome, error) {
	out := ScheduleOutcome{Tasks: []*entities.Task{}}
	dq, err := r.sql(s.dialect)
	if err != nil {
		return out, err
	}
	// A read first: most polls find the queue not due, and need not take
	// the write lock.
	last, err := queueLastRun(ctx, s.db, r.Queue)
	if err != nil {
		return out, err
	}
	if last != nil && last.After(r.RunBefore) {
		return out, nil
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		out = ScheduleOutcome{Tasks: []*entities.Task{}}
		if ran, err := claimRun(ctx, tx, r.Queue, r.Now, r.RunBefore); err != nil || !ran {
			return err // !ran: another dispatcher ran it meanwhile
		}
		out.Ran = true
		if err := tx.QueryRowContext(ctx, dq.count).Scan(&out.Items); err != nil {
			return err
		}
		if r.Limit != nil {
			out.Limit = r.Limit(out.Items)
		}
		// The sites with a task of the type pending are left out after
		// the read rather than by a NOT EXISTS in it, which would look
		// each of the queue's sites up in tasks (at 100,000 sites, more
		// than half of the run's time): the first Limit + pending due
		// sites hold the first Limit of those without one.
		prows, err := tx.QueryContext(ctx, `SELECT DISTINCT target_id FROM tasks WHERE status IN ('queued', 'processing') AND target_kind = 'site' AND type = ?`, r.TaskType)
		if err != nil {
			return err
		}
		pending, err := scanColumn[int64](prows)
		if err != nil {
			return err
		}
		skip := make(map[int64]bool, len(pending))
		for _, id := range pending {
			skip[id] = true
		}
		rows, err := tx.QueryContext(ctx, `SELECT s.id, s.domain`+dq.from+` ORDER BY `+dq.order+`, s.id LIMIT ?4`,
			r.Queue, ms2(r.DueBefore), r.TaskType, out.Limit+len(pending))
		if err != nil {
			return err
		}
		all, err := scanAll(rows, func(rs *sql.Rows, p *siteRef) error { return rs.Scan(&p.id, &p.domain) })
		if err != nil {
			return err
		}
		picks := make([]siteRef, 0, out.Limit)
		for _, p := range all {
			if !skip[p.id] && len(picks) < out.Limit {
				picks = append(picks, p)
			}
		}
		// The tasks and the queue's marks go in multi-row statements.
		ts, err := s.insertSiteTasksAt(ctx, tx, r.Now, r.TaskType, picks)
		if err != nil {
			return err
		}
		out.Tasks = ts
		const batch = 500
		for lo := 0; lo < len(picks); lo += batch {
			part := picks[lo:min(lo+batch, len(picks))]
			var q strings.Builder
			q.WriteString(`INSERT INTO queue_items (queue, site_id, last_queued) VALUES `)
			args := make([]any, 0, 3*len(part))
			for i, p := range part {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString(`(?, ?, ?)`)
				args = append(args, r.Queue, p.id, ms2(r.Now))
			}
			q.WriteString(` ON CONFLICT (queue, site_id) DO UPDATE SET last_queued = excluded.last_queued`)
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return ScheduleOutcome{Tasks: []*entities.Task{}}, err
	}
	return out, nil
}

// ScheduleStatus counts a scheduled queue's sites, due sites and pending
// tasks, and reads when it last ran.
func (s *Store) ScheduleStatus(ctx context.Context, sc Schedule) (ScheduleCounts, error) {
	var c ScheduleCounts
	dq, err := sc.sql(s.dialect)
	if err != nil {
		return c, err
	}
	if err := s.db.QueryRowContext(ctx, dq.count).Scan(&c.Items); err != nil {
		return c, err
	}
	if c.LastRun, err = queueLastRun(ctx, s.db, sc.Queue); err != nil {
		return c, err
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*)`+dq.from+dq.notPending, sc.Queue, ms2(sc.DueBefore), sc.TaskType).Scan(&c.Due); err != nil {
		return c, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tasks WHERE status IN ('queued', 'processing') AND `+s.dialect.noIndex("type")+` = ?`, sc.TaskType).Scan(&c.Pending)
	return c, err
}

// RecordSiteLastRun records at as the start of the last task of taskType
// (site.cron, site.backup or site.stats) that ended well on site siteID.
// A site.health task records nothing here: its health check's time is
// recorded with the health it found.
func (s *Store) RecordSiteLastRun(ctx context.Context, siteID int64, taskType string, at time.Time) error {
	col, ok := siteLastRunColumn[taskType]
	if !ok {
		return fmt.Errorf("store: task type %q records no last run", taskType)
	}
	if taskType == entities.TaskSiteHealth {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE sites SET `+col+` = ? WHERE id = ?`, ms2(at), siteID)
	return err
}

// PrunableBackups selects, per site, every backup beyond the newest keep
// (keep ≤ 0: no count limit), every backup created before createdBefore
// (zero: no age limit), and, per client with a quota of backups, every
// backup of its sites beyond the newest quota_backups of them, except the
// newest backup of each site, however old (it may be all that is left of a
// disabled or deleted site). The ids come in ascending order. It only reads.
func (s *Store) PrunableBackups(ctx context.Context, keep int, createdBefore time.Time) ([]int64, error) {
	cutoff := int64(-1) << 62 // no age limit: nothing is that old
	if !createdBefore.IsZero() {
		cutoff = ms2(createdBefore)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM (
		SELECT b.id, b.created, ROW_NUMBER() OVER (PARTITION BY b.site_id ORDER BY b.created DESC, b.id DESC) AS n,
			ROW_NUMBER() OVER (PARTITION BY x.client_id ORDER BY b.created DESC, b.id DESC) AS cn, COALESCE(c.quota_backups, 0) AS quota
		FROM backups b JOIN sites x ON x.id = b.site_id LEFT JOIN clients c ON c.id = x.client_id) r
		WHERE n > 1 AND ((?1 > 0 AND n > ?1) OR created < ?2 OR (quota > 0 AND cn > quota))
		ORDER BY id`, keep, cutoff)
	if err != nil {
		return nil, err
	}
	return scanColumn[int64](rows)
}

// QueueBackupTasks queues a task of typ (created at) on each backup of ids
// that still exists and has no task queued or processing, in one
// transaction, and returns the tasks queued. Its target reads "DOMAIN
// backup ID". tie, if not nil, names the master each task is tied to
// (Task.Master) from the backup's site, path and master ("": none).
func (s *Store) QueueBackupTasks(ctx context.Context, typ string, ids []int64, at time.Time, tie func(b *entities.Backup) string) ([]*entities.Task, error) {
	out := []*entities.Task{}
	if len(ids) == 0 {
		return out, nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = []*entities.Task{}
		for _, id := range ids {
			b := entities.Backup{ID: id}
			err := tx.QueryRowContext(ctx, `SELECT x.domain, b.path, b.master FROM backups b JOIN sites x ON x.id = b.site_id
				WHERE b.id = ? AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.target_kind = 'backup' AND t.target_id = b.id AND t.status IN ('queued', 'processing'))`,
				id).Scan(&b.Site, &b.Path, &b.Master)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			master := ""
			if tie != nil {
				master = tie(&b)
			}
			t, err := s.insertChildAt(ctx, tx, at, 0, master, typ, entities.TargetBackup, id, b.Site+" backup "+itoa(id), nil)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return []*entities.Task{}, err
	}
	return out, nil
}
