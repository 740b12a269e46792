package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// QueueConfig is one scheduled queue's settings (config keys
// queue.NAME.enabled and queue.NAME.frequency).
type QueueConfig struct {
	Name      string        // cron, backup, stats, health or cert
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

// queueKind ties a scheduled queue to the task it creates and the rule
// by which the store finds its due sites.
type queueKind struct {
	name, taskType string
	due            store.DueRule
}

var queueKinds = []queueKind{
	{"cron", entities.TaskSiteCron, store.DueAfterLastRun},
	{"backup", entities.TaskSiteBackup, store.DueAfterLastRun},
	{"stats", entities.TaskSiteStats, store.DueAfterLastRun},
	{"health", entities.TaskSiteHealth, store.DueAfterLastRun},
	{CertQueue, TaskSiteCert, store.DueForCertificate}, // see cert.go
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
// (off until the administrator turns it on), statistics and health checks
// hourly, certificates daily.
func DefaultQueues() []QueueConfig {
	return []QueueConfig{
		{Name: "cron", Enabled: true, Frequency: time.Hour},
		{Name: "backup", Enabled: false, Frequency: 24 * time.Hour},
		{Name: "stats", Enabled: true, Frequency: time.Hour},
		{Name: "health", Enabled: true, Frequency: time.Hour},
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
// nearest to a full frequency takes it, not the one after). The cert queue
// takes the certificates whose renewal time has come (cert.go).
func (d *Dispatcher) runDueBefore(now time.Time) time.Time {
	i := d.interval()
	return now.Add(-i + i/10)
}

// schedule is queue q as the store sees it at now.
func (d *Dispatcher) schedule(k *queueKind, q QueueConfig, now time.Time) store.Schedule {
	before := now.Add(-q.Frequency + d.interval()/2)
	if k.due == store.DueForCertificate {
		before = now
	}
	return store.Schedule{Queue: q.Name, TaskType: k.taskType, Rule: k.due, DueBefore: before}
}

// Schedule lets every enabled queue that is due create its tasks: each
// takes ItemsPerRun due sites, least recently run first (never run first),
// and queues a site.cron, site.backup, site.stats or site.health task for
// each. The
// store claims the run (Store.RunSchedule), so two dispatchers never both
// schedule one queue. It returns the tasks created per queue.
//
// The queue records when it gave a site a task; the dispatcher records the
// site's last successful run (the task's start time) when such a task ends
// in success or warning, whoever queued it.
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
	run, err := d.Store.RunSchedule(ctx, store.ScheduleRun{
		Schedule:  d.schedule(k, q, now),
		Now:       now,
		RunBefore: d.runDueBefore(now),
		Limit:     func(items int) int { return ItemsPerRun(items, d.interval(), q.Frequency) },
	})
	if err != nil || !run.Ran {
		return 0, err
	}
	if len(run.Tasks) > 0 {
		d.logf("queue: %s: queued %d %s task(s) (%d installed sites, %d a run)", q.Name, len(run.Tasks), k.taskType, run.Items, run.Limit)
	}
	if k.name == "backup" {
		n, err := d.pruneBackups(ctx, q, now)
		return len(run.Tasks) + n, err
	}
	return len(run.Tasks), nil
}

// pruneBackups queues a backup.delete task for every backup the retention
// rules of q select that has none queued or running yet.
func (d *Dispatcher) pruneBackups(ctx context.Context, q QueueConfig, now time.Time) (int, error) {
	ids, err := BackupsToPrune(ctx, d.Store, q.Keep, q.MaxAge, now)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// The delete of an archive another master holds, in a backups
	// directory this one does not share, is tied to that master.
	me := Master()
	ts, err := d.Store.QueueBackupTasks(ctx, entities.TaskBackupDelete, ids, now, func(b *entities.Backup) string { return TiedElsewhere(b, me, d.BackupDir) })
	if err != nil {
		return 0, err
	}
	if len(ts) > 0 {
		tied := map[string]int{}
		for _, t := range ts {
			if t.Master != "" {
				tied[t.Master]++
			}
		}
		var of []string
		for _, m := range slices.Sorted(maps.Keys(tied)) {
			of = append(of, fmt.Sprintf("%d for master %s, which holds their archives", tied[m], m))
		}
		more := ""
		if len(of) > 0 {
			more = "; " + strings.Join(of, ", ")
		}
		d.logf("queue: backup: queued %d backup.delete task(s) (keep %d per site, none older than %s)%s", len(ts), q.Keep, q.MaxAge, more)
	}
	return len(ts), nil
}

// recordLastRun sets the site's last run of a scheduled task type that
// ended well (Store.RecordSiteLastRun) to the task's start time.
func (d *Dispatcher) recordLastRun(ctx context.Context, t *entities.Task) error {
	k := kindOfTask(t.Type)
	if k == nil || k.due != store.DueAfterLastRun || t.TargetKind != entities.TargetSite {
		return nil
	}
	at := d.now()
	if t.Started != nil {
		at = *t.Started
	}
	return d.Store.RecordSiteLastRun(ctx, t.TargetID, t.Type, at)
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
	now := d.now()
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
		c, err := d.Store.ScheduleStatus(ctx, d.schedule(k, q, now))
		if err != nil {
			return nil, err
		}
		s := QueueStatus{Name: q.Name, Enabled: q.Enabled, TaskType: k.taskType, Frequency: formatDuration(q.Frequency), Sites: c.Items,
			ItemsPerRun: ItemsPerRun(c.Items, d.interval(), q.Frequency), LastRun: c.LastRun, Pending: c.Pending}
		if q.Frequency > 0 {
			s.ItemsDue = c.Due
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
