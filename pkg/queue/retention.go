package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/store"
)

// BackupsToPrune selects the backups the backup garbage collection should
// delete: per site, every backup beyond the newest keep, and every backup
// created before now − maxAge; per client with a quota of backups
// (aegir client edit --quota-backups N), the oldest backups of its sites
// beyond N of them. The newest backup of a site is never
// selected, however old (it may be all that is left of a disabled or
// deleted site). keep ≤ 0 means no count limit, maxAge ≤ 0 no age limit.
// It only reads (Store.PrunableBackups); deleting the files and rows is the
// caller's work (backup.delete tasks). The ids come in ascending order.
func BackupsToPrune(ctx context.Context, st *store.Store, keep int, maxAge time.Duration, now time.Time) ([]int64, error) {
	var before time.Time // zero: no age limit
	if maxAge > 0 {
		before = now.Add(-maxAge)
	}
	return st.PrunableBackups(ctx, keep, before)
}

// Retention of the state's history: finished tasks with their log lines
// (tasks.keep) and the audit log (audit.keep). What is never deleted, and
// why, is Store.Prune's.
const (
	// DefaultKeepTasks is how long a finished task is kept (config
	// tasks.keep).
	DefaultKeepTasks = 90 * 24 * time.Hour
	// DefaultKeepAudit is how long an audit log entry is kept (config
	// audit.keep).
	DefaultKeepAudit = 365 * 24 * time.Hour
	// PruneEvery is how often the state is pruned: of all the masters
	// that share it, one prunes once per PruneEvery (a claim in
	// queue_runs), so the dispatches of every minute seldom do.
	PruneEvery = time.Hour
	// PruneRun is the prune's row in queue_runs.
	PruneRun = "prune"

	// pruneMaxBatches bounds one dispatch's prune: at most this many
	// batches (of store.PruneBatch) of tasks, of process records, of
	// audit entries and (Watch) of webhook deliveries; what is left goes
	// at the next dispatch. A state that was never pruned
	// (millions of tasks) is pruned over a few dispatches, none of which
	// spends more than a few seconds on it.
	pruneMaxBatches = 100
)

// Prune deletes the finished tasks older than KeepTasks and the audit
// entries older than KeepAudit, if no prune ran in the last PruneEvery
// (on any master), and logs what it deleted. A prune stopped with work
// left (pruneMaxBatches) is due again at the next dispatch. It returns
// what it deleted (nil: it did not run).
func (d *Dispatcher) Prune(ctx context.Context) (*store.Pruned, error) {
	keepTasks, keepAudit := keepFor(d.KeepTasks, DefaultKeepTasks), keepFor(d.KeepAudit, DefaultKeepAudit)
	if keepTasks < 0 && keepAudit < 0 {
		return nil, nil
	}
	now := d.now()
	ran, err := d.Store.ClaimRun(ctx, PruneRun, now, now.Add(-PruneEvery))
	if err != nil || !ran {
		return nil, err
	}
	r := store.PruneRule{MaxBatches: pruneMaxBatches}
	if keepTasks > 0 {
		r.TasksBefore = now.Add(-keepTasks)
	}
	if keepAudit > 0 {
		r.AuditBefore = now.Add(-keepAudit)
	}
	p, err := d.Store.Prune(ctx, r)
	if p.More || err != nil {
		err = errors.Join(err, d.Store.ReleaseRun(context.WithoutCancel(ctx), PruneRun, now))
	}
	if p.Tasks > 0 || p.Audit > 0 || p.Processes > 0 || p.More {
		var parts []string
		if keepTasks > 0 {
			parts = append(parts, fmt.Sprintf("%d finished tasks (%d log lines) that ended more than %s ago", p.Tasks, p.LogLines, formatDuration(keepTasks)))
			if p.Processes > 0 {
				parts = append(parts, fmt.Sprintf("%d records of processes on remote servers of tasks gone or ended that long ago", p.Processes))
			}
		}
		if keepAudit > 0 {
			parts = append(parts, fmt.Sprintf("%d audit entries older than %s", p.Audit, formatDuration(keepAudit)))
		}
		more := ""
		if p.More {
			more = "; more are left for the next dispatch"
		}
		d.logf("queue: pruned %s%s", strings.Join(parts, " and "), more)
	}
	if err != nil {
		return &p, fmt.Errorf("queue: pruning the state: %w", err)
	}
	return &p, nil
}

// keepFor is a keep setting: 0 is def, < 0 forever.
func keepFor(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
