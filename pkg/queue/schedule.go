package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// QueueConfig is one scheduled queue's settings (config keys
// queue.NAME.enabled and queue.NAME.frequency).
type QueueConfig struct {
	Name      string        // cron, backup, stats or cert
	Enabled   bool          //
	Frequency time.Duration // each site gets the queue's task once per Frequency
	// The backup queue's clean-up (config backup.keep and backup.max_age):
	// each run of the queue deletes, through backup.delete tasks, the
	// backups BackupsToPrune selects. Zero: no limit of that kind.
	Keep   int
	MaxAge time.Duration
}

// Validate checks the name and frequency.
func (q QueueConfig) Validate() error {
	if kindOf(q.Name) == nil {
		return fmt.Errorf("unknown queue %q: the queues are %s", q.Name, strings.Join(QueueNames(), ", "))
	}
	if q.Frequency <= 0 {
		return fmt.Errorf("queue %s: frequency must be positive (e.g. 1h), not %s", q.Name, q.Frequency)
	}
	return nil
}

// queueKind ties a scheduled queue to the task it creates and the sites
// column that records the last successful run.
type queueKind struct {
	name, taskType, column string
}

var queueKinds = []queueKind{
	{"cron", entities.TaskSiteCron, "last_cron"},
	{"backup", entities.TaskSiteBackup, "last_backup"},
	{"stats", entities.TaskSiteStats, "last_stats"},
	{CertQueue, TaskSiteCert, ""}, // see cert.go
}

func kindOf(name string) *queueKind {
	for i := range queueKinds {
		if queueKinds[i].name == name {
			return &queueKinds[i]
		}
	}
	return nil
}

func kindOfTask(typ string) *queueKind {
	for i := range queueKinds {
		if queueKinds[i].taskType == typ {
			return &queueKinds[i]
		}
	}
	return nil
}

// QueueNames lists the scheduled queues.
func QueueNames() []string {
	out := make([]string, len(queueKinds))
	for i, k := range queueKinds {
		out[i] = k.name
	}
	return out
}

// DefaultQueues are the queues' default settings: cron hourly, backup daily
// (off until the administrator turns it on), statistics hourly.
func DefaultQueues() []QueueConfig {
	return []QueueConfig{
		{Name: "cron", Enabled: true, Frequency: time.Hour},
		{Name: "backup", Enabled: false, Frequency: 24 * time.Hour},
		{Name: "stats", Enabled: true, Frequency: time.Hour},
		{Name: CertQueue, Enabled: true, Frequency: 24 * time.Hour},
	}
}

// ItemsPerRun is how many sites one run of a queue takes so that every site
// is served once per frequency when a run happens every interval:
// ceil(sites × interval / frequency).
func ItemsPerRun(sites int, interval, frequency time.Duration) int {
	if sites <= 0 || interval <= 0 || frequency <= 0 {
		return 0
	}
	n := (int64(sites)*int64(interval) + int64(frequency) - 1) / int64(frequency)
	return int(min(n, int64(sites)))
}

// A queue run is due when its last run is at least interval − interval/10
// ago (cron starts dispatches a little early or late), and a site is due
// when its last run is at least frequency − interval/2 ago (so that the run
// nearest to a full frequency takes it, not the one after).
func (d *Dispatcher) runDueBefore(now time.Time) int64 {
	i := d.interval()
	return now.Add(-i + i/10).UnixMilli()
}

func (d *Dispatcher) siteDueBefore(q QueueConfig, now time.Time) int64 {
	return now.Add(-q.Frequency + d.interval()/2).UnixMilli()
}

// lastRun is the later of the queue's last task for the site and the site's
// last successful run: a backup the administrator ran by hand counts, and a
// site whose task failed still goes to the back of the line.
func lastRun(k *queueKind) string {
	return `MAX(COALESCE(q.last_queued, 0), COALESCE(s.` + k.column + `, 0))`
}

// dueQuery is how a queue finds its items: the query that counts what its
// batches are sized by, the FROM and WHERE of its due sites (?1 queue name,
// ?2 due before, ?3 task type), their order, and the value of ?2.
type dueQuery struct {
	count, from, order string
	before             int64
}

func (d *Dispatcher) dueQuery(k *queueKind, q QueueConfig, now time.Time) dueQuery {
	if k.name == CertQueue {
		return certDue(now)
	}
	return dueQuery{count: `SELECT COUNT(*) FROM sites WHERE status = 'installed'`, from: dueFrom(k), order: lastRun(k), before: d.siteDueBefore(q, now)}
}

// dueFrom selects the due sites of a queue: ?1 queue name, ?2 due before
// (ms), ?3 task type. Installed sites only, and none that already has a
// queued or processing task of the type.
func dueFrom(k *queueKind) string {
	return ` FROM sites s LEFT JOIN queue_items q ON q.queue = ?1 AND q.site_id = s.id
	WHERE s.status = 'installed' AND ` + lastRun(k) + ` <= ?2
	AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.target_kind = 'site' AND t.target_id = s.id AND t.status IN ('queued', 'processing') AND +t.type = ?3)`
}

// Schedule lets every enabled queue that is due create its tasks: each
// takes ItemsPerRun due sites, least recently run first (never run first),
// and queues a site.cron, site.backup or site.stats task for each. A
// conditional update of queue_runs claims the run, so two dispatchers
// never both schedule one queue. It returns the tasks created per queue.
//
// The queue records when it gave a site a task (queue_items); the
// dispatcher records the site's last successful run (sites.last_cron,
// last_backup, last_stats: the task's start time) when such a task ends in
// success or warning, whoever queued it.
func (d *Dispatcher) Schedule(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	var errs []error
	for _, q := range d.Queues {
		if !q.Enabled {
			continue
		}
		if err := q.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := d.scheduleQueue(ctx, q, d.now())
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %s: %w", q.Name, err))
		}
		if n > 0 {
			out[q.Name] = n
		}
	}
	return out, errors.Join(errs...)
}

func (d *Dispatcher) scheduleQueue(ctx context.Context, q QueueConfig, now time.Time) (int, error) {
	k := kindOf(q.Name)
	db := d.Store.DB()
	runBefore := d.runDueBefore(now)
	// A read first: most polls of Serve find the queue not due, and need
	// not take the write lock.
	var last sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT last_run FROM queue_runs WHERE name = ?`, q.Name).Scan(&last)
	if err == nil && last.Valid && last.Int64 > runBefore {
		return 0, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO queue_runs (name, last_run) VALUES (?, NULL)`, q.Name); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE queue_runs SET last_run = ? WHERE name = ? AND (last_run IS NULL OR last_run <= ?)`, now.UnixMilli(), q.Name, runBefore)
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, nil // another dispatcher ran it meanwhile
	}
	dq := d.dueQuery(k, q, now)
	var sites int
	if err := tx.QueryRowContext(ctx, dq.count).Scan(&sites); err != nil {
		return 0, err
	}
	limit := ItemsPerRun(sites, d.interval(), q.Frequency)
	type pick struct {
		id     int64
		domain string
	}
	var picks []pick
	rows, err := tx.QueryContext(ctx, `SELECT s.id, s.domain`+dq.from+` ORDER BY `+dq.order+`, s.id LIMIT ?4`,
		q.Name, dq.before, k.taskType, limit)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var p pick
		if err := rows.Scan(&p.id, &p.domain); err != nil {
			rows.Close()
			return 0, err
		}
		picks = append(picks, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO tasks (type, target_kind, target_id, target, status, options, created) VALUES (?, 'site', ?, ?, 'queued', '{}', ?)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	mark, err := tx.PrepareContext(ctx, `INSERT INTO queue_items (queue, site_id, last_queued) VALUES (?, ?, ?)
		ON CONFLICT (queue, site_id) DO UPDATE SET last_queued = excluded.last_queued`)
	if err != nil {
		return 0, err
	}
	defer mark.Close()
	for _, p := range picks {
		if _, err := ins.ExecContext(ctx, k.taskType, p.id, p.domain, now.UnixMilli()); err != nil {
			return 0, err
		}
		if _, err := mark.ExecContext(ctx, q.Name, p.id, now.UnixMilli()); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if len(picks) > 0 {
		d.logf("queue: %s: queued %d %s task(s) (%d installed sites, %d a run)", q.Name, len(picks), k.taskType, sites, limit)
	}
	if k.name == "backup" {
		n, err := d.pruneBackups(ctx, q, now)
		return len(picks) + n, err
	}
	return len(picks), nil
}

// pruneBackups queues a backup.delete task for every backup the retention
// rules of q select that has none queued or running yet.
func (d *Dispatcher) pruneBackups(ctx context.Context, q QueueConfig, now time.Time) (int, error) {
	ids, err := BackupsToPrune(ctx, d.Store, q.Keep, q.MaxAge, now)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		res, err := d.Store.DB().ExecContext(ctx, `INSERT INTO tasks (type, target_kind, target_id, target, status, options, created)
			SELECT ?, 'backup', b.id, x.domain || ' backup ' || b.id, 'queued', '{}', ?
			FROM backups b JOIN sites x ON x.id = b.site_id
			WHERE b.id = ? AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.target_kind = 'backup' AND t.target_id = b.id AND t.status IN ('queued', 'processing'))`,
			entities.TaskBackupDelete, now.UnixMilli(), id)
		if err != nil {
			return n, err
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	if n > 0 {
		d.logf("queue: backup: queued %d backup.delete task(s) (keep %d per site, none older than %s)", n, q.Keep, q.MaxAge)
	}
	return n, nil
}

// recordLastRun sets the site's last run of a scheduled task type that
// ended well (sites.last_cron etc.) to the task's start time.
func (d *Dispatcher) recordLastRun(ctx context.Context, t *entities.Task) error {
	k := kindOfTask(t.Type)
	if k == nil || k.column == "" || t.TargetKind != entities.TargetSite {
		return nil
	}
	at := d.now()
	if t.Started != nil {
		at = *t.Started
	}
	_, err := d.Store.DB().ExecContext(ctx, `UPDATE sites SET `+k.column+` = ? WHERE id = ?`, at.UnixMilli(), t.TargetID)
	return err
}

// QueueStatus is one scheduled queue, for `aegir hosting queues`.
type QueueStatus struct {
	Name        string     `json:"name" yaml:"name"`
	Enabled     bool       `json:"enabled" yaml:"enabled"`
	TaskType    string     `json:"task_type" yaml:"task_type"`
	Frequency   string     `json:"frequency" yaml:"frequency"`
	Sites       int        `json:"sites" yaml:"sites"`                 // installed sites (cert: ACME certificates)
	ItemsPerRun int        `json:"items_per_run" yaml:"items_per_run"` // sites one run takes
	ItemsDue    int        `json:"items_due" yaml:"items_due"`         // sites due now, without a pending task
	Pending     int        `json:"pending" yaml:"pending"`             // its tasks queued or running
	LastRun     *time.Time `json:"last_run" yaml:"last_run"`
}

// TableColumns are the default columns of `aegir hosting queues`.
func (QueueStatus) TableColumns() []string {
	return []string{"name", "enabled", "frequency", "items_per_run", "last_run", "items_due", "pending"}
}

// Status reports every scheduled queue: its settings from d.Queues (a queue
// missing there is shown disabled with its default frequency), how many
// sites a run takes, when it last ran and how many sites are due.
func (d *Dispatcher) Status(ctx context.Context) ([]QueueStatus, error) {
	db := d.Store.DB()
	now := d.now()
	var sites int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sites WHERE status = 'installed'`).Scan(&sites); err != nil {
		return nil, err
	}
	out := []QueueStatus{}
	for _, def := range DefaultQueues() {
		q := def
		q.Enabled = false
		for _, c := range d.Queues {
			if c.Name == def.Name {
				q = c
			}
		}
		k := kindOf(q.Name)
		dq := d.dueQuery(k, q, now)
		items := sites
		if k.name == CertQueue {
			if err := db.QueryRowContext(ctx, dq.count).Scan(&items); err != nil {
				return nil, err
			}
		}
		s := QueueStatus{Name: q.Name, Enabled: q.Enabled, TaskType: k.taskType, Frequency: formatDuration(q.Frequency), Sites: items,
			ItemsPerRun: ItemsPerRun(items, d.interval(), q.Frequency)}
		var last sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT last_run FROM queue_runs WHERE name = ?`, q.Name).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if last.Valid {
			t := time.UnixMilli(last.Int64).UTC()
			s.LastRun = &t
		}
		if q.Frequency > 0 {
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*)`+dq.from, q.Name, dq.before, k.taskType).Scan(&s.ItemsDue); err != nil {
				return nil, err
			}
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tasks WHERE status IN ('queued', 'processing') AND +type = ?`, k.taskType).Scan(&s.Pending); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// formatDuration writes 1h, 24h, 1h30m, 45s rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
