package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// scheduleNow is the tests' time of a queue run.
var scheduleNow = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// withSites opens a store with the fixture and n installed sites.
func withSites(t *testing.T, n int) (*Store, []int64) {
	t.Helper()
	s := open(t)
	fixture(t, s)
	return s, installedSites(t, s, n)
}

// installedSites adds n installed sites q0.test ... on the fixture's
// platform and returns their ids in order.
func installedSites(t *testing.T, s *Store, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var platform, server int64
	if err := s.db.QueryRowContext(ctx, `SELECT p.id, p.server_id FROM platforms p WHERE p.name = 'p1'`).Scan(&platform, &server); err != nil {
		t.Fatal(err)
	}
	ids := []int64{}
	for i := range n {
		id, err := insert(ctx, s.db, `INSERT INTO sites (domain, platform_id, db_server_id, status, created) VALUES (?, ?, ?, 'installed', 0)`,
			fmt.Sprintf("q%d.test", i), platform, server)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func exec(t *testing.T, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func targets(ts []*entities.Task) []int64 {
	out := []int64{}
	for _, t := range ts {
		out = append(out, t.TargetID)
	}
	return out
}

// queuedOf lists the target ids of the queued tasks of typ, in id order.
func queuedOf(t *testing.T, s *Store, typ string) []int64 {
	t.Helper()
	ts, err := s.ListTasks(context.Background(), TaskFilter{Type: typ, Status: entities.TaskQueued})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ts)
	return targets(ts)
}

func lastQueued(t *testing.T, s *Store, queue string, site int64) *time.Time {
	t.Helper()
	var v sql.NullInt64
	err := s.db.QueryRow(`SELECT last_queued FROM queue_items WHERE queue = ? AND site_id = ?`, queue, site).Scan(&v)
	if err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return fromNullMs(v)
}

// A run takes the due installed sites, never run first, then the least
// recently run (the later of queued by the queue and last ended well), up
// to its limit; it skips sites not installed, with the task pending, or
// run recently; it is not run again until it is due.
func TestRunScheduleTakesDueSitesLeastRecentFirst(t *testing.T) {
	s, q := withSites(t, 8)
	ctx := context.Background()
	now := scheduleNow
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	exec(t, s, `UPDATE sites SET last_cron = ? WHERE id = ?`, ms(-3*time.Hour), q[0])
	exec(t, s, `INSERT INTO queue_items (queue, site_id, last_queued) VALUES ('cron', ?, ?)`, q[1], ms(-5*time.Hour))
	exec(t, s, `UPDATE sites SET last_cron = ? WHERE id = ?`, ms(-10*time.Minute), q[2])
	exec(t, s, `UPDATE sites SET status = 'disabled' WHERE id = ?`, q[3])
	pending := queuedTask(t, s, entities.TaskSiteCron, q[4])
	// q[5], q[6], q[7] never ran cron; q[7]'s stats ran just now.
	exec(t, s, `INSERT INTO queue_items (queue, site_id, last_queued) VALUES ('stats', ?, ?)`, q[7], ms(0))
	exec(t, s, `UPDATE sites SET last_stats = ? WHERE id = ?`, ms(0), q[7])

	var counted []int
	run := func(at time.Time, limit int) ScheduleOutcome {
		t.Helper()
		out, err := s.RunSchedule(ctx, ScheduleRun{
			Schedule:  Schedule{Queue: "cron", TaskType: entities.TaskSiteCron, Rule: DueAfterLastRun, DueBefore: at.Add(-time.Hour)},
			Now:       at,
			RunBefore: at.Add(-time.Minute),
			Limit:     func(items int) int { counted = append(counted, items); return limit },
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run(now, 3)
	if !out.Ran || out.Items != 7 || out.Limit != 3 || !slices.Equal(counted, []int{7}) {
		t.Fatalf("first run: ran %v, items %d, limit %d, counted %v; want 7 installed sites, 3 taken", out.Ran, out.Items, out.Limit, counted)
	}
	if got, want := targets(out.Tasks), []int64{q[5], q[6], q[7]}; !slices.Equal(got, want) {
		t.Fatalf("first run took %v, want the never-run %v", got, want)
	}
	for i, task := range out.Tasks {
		stored := get(t, s, task.ID)
		if stored.Type != entities.TaskSiteCron || stored.TargetKind != entities.TargetSite || stored.Status != entities.TaskQueued ||
			stored.Target != fmt.Sprintf("q%d.test", i+5) || !stored.Created.Equal(now) {
			t.Fatalf("task %+v", stored)
		}
		if lq := lastQueued(t, s, "cron", task.TargetID); lq == nil || !lq.Equal(now) {
			t.Fatalf("site %d: queue_items last_queued %v, want %v", task.TargetID, lq, now)
		}
	}
	if got := queuedOf(t, s, entities.TaskSiteCron); !slices.Equal(got, []int64{q[4], q[5], q[6], q[7]}) {
		t.Fatalf("queued cron tasks on %v", got)
	}

	// At once again: the queue ran at now, after RunBefore.
	if again := run(now.Add(30*time.Second), 3); again.Ran || len(again.Tasks) != 0 || len(counted) != 1 {
		t.Fatalf("a second run at once: %+v", again)
	}

	// Ten minutes on: the queued sites are not due, the least recently
	// run are, five hours before three.
	later := now.Add(10 * time.Minute)
	out = run(later, 10)
	if got, want := targets(out.Tasks), []int64{q[1], q[0]}; !out.Ran || !slices.Equal(got, want) {
		t.Fatalf("second run took %v (ran %v), want %v", got, out.Ran, want)
	}
	c, err := s.ScheduleStatus(ctx, Schedule{Queue: "cron", TaskType: entities.TaskSiteCron, Rule: DueAfterLastRun, DueBefore: later.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Items != 7 || c.Due != 0 || c.Pending != 6 || c.LastRun == nil || !c.LastRun.Equal(later) {
		t.Fatalf("status %+v, want 7 sites, none due, 6 pending, last run %v", c, later)
	}
	if get(t, s, pending.ID).Status != entities.TaskQueued {
		t.Fatal("the pending task changed")
	}
}

func queuedTask(t *testing.T, s *Store, typ string, site int64) *entities.Task {
	t.Helper()
	task, err := s.QueueTask(context.Background(), typ, entities.TargetSite, site, "site-"+itoa(site), nil)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// Two handles running one due queue at the same moment: one runs it, and
// over the rounds every site gets its task once.
func TestRunScheduleClaimedOnce(t *testing.T) {
	a, b := openPair(t)
	fixture(t, a)
	ctx := context.Background()
	sites := installedSites(t, a, 40)
	now := scheduleNow
	var all []int64
	for round := range 5 {
		at := now.Add(time.Duration(round) * time.Minute)
		outs := make([]ScheduleOutcome, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				outs[i], errs[i] = s.RunSchedule(ctx, ScheduleRun{
					Schedule:  Schedule{Queue: "stats", TaskType: entities.TaskSiteStats, Rule: DueAfterLastRun, DueBefore: at.Add(-time.Hour)},
					Now:       at,
					RunBefore: at.Add(-30 * time.Second),
					Limit:     func(int) int { return 8 },
				})
			}()
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		if outs[0].Ran == outs[1].Ran {
			t.Fatalf("round %d: ran on a %v, on b %v; want exactly one", round, outs[0].Ran, outs[1].Ran)
		}
		n := len(outs[0].Tasks) + len(outs[1].Tasks)
		if n != 8 {
			t.Fatalf("round %d: %d tasks, want 8", round, n)
		}
		all = append(all, targets(outs[0].Tasks)...)
		all = append(all, targets(outs[1].Tasks)...)
	}
	slices.Sort(all)
	if !slices.Equal(all, sites) {
		t.Fatalf("sites given a task: %v, want each of %v once", all, sites)
	}
	if got := queuedOf(t, b, entities.TaskSiteStats); len(got) != 40 {
		t.Fatalf("%d stats tasks stored, want 40", len(got))
	}
}

// The certificate rule: installed or disabled sites with HTTPS whose ACME
// certificate is due, or that have none, earliest first.
func TestRunScheduleCertificates(t *testing.T) {
	s, q := withSites(t, 9)
	ctx := context.Background()
	now := scheduleNow
	exec(t, s, `UPDATE sites SET https = 'on'`)
	cert := func(site int64, source string, renew time.Duration) {
		exec(t, s, `INSERT INTO certificates (site_id, names, source, renew_after, updated) VALUES (?, 'x.test', ?, ?, 0)`,
			site, source, now.Add(renew).UnixMilli())
	}
	cert(q[0], "acme", -time.Hour)
	cert(q[1], "acme", time.Hour) // not yet
	cert(q[2], "admin", -time.Hour)
	cert(q[3], "acme", -time.Minute)
	cert(q[4], "acme", -2*time.Hour) // HTTPS off
	exec(t, s, `UPDATE sites SET https = 'off' WHERE id = ?`, q[4])
	cert(q[5], "acme", -30*time.Minute) // disabled: still served
	exec(t, s, `UPDATE sites SET status = 'disabled' WHERE id = ?`, q[5])
	// q[6]: no certificate.
	cert(q[7], "acme", -4*time.Hour) // still queued
	exec(t, s, `UPDATE sites SET status = 'queued' WHERE id = ?`, q[7])
	cert(q[8], "acme", -5*time.Hour) // its renewal already waits
	queuedTask(t, s, "site.cert", q[8])

	sc := Schedule{Queue: "cert", TaskType: "site.cert", Rule: DueForCertificate, DueBefore: now}
	c, err := s.ScheduleStatus(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if c.Items != 6 || c.Due != 4 || c.Pending != 1 || c.LastRun != nil {
		t.Fatalf("status before %+v, want 6 sites, 4 due, 1 pending, never run", c)
	}
	out, err := s.RunSchedule(ctx, ScheduleRun{Schedule: sc, Now: now, RunBefore: now.Add(-time.Minute), Limit: func(n int) int { return n }})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := targets(out.Tasks), []int64{q[6], q[0], q[5], q[3]}; out.Items != 6 || !slices.Equal(got, want) {
		t.Fatalf("took %v of %d, want %v of 6", got, out.Items, want)
	}
	if c, _ := s.ScheduleStatus(ctx, sc); c.Due != 0 || c.Pending != 5 || c.LastRun == nil || !c.LastRun.Equal(now) {
		t.Fatalf("status after %+v", c)
	}
}

// A recorded last run makes the site not due; a task type without a last
// run cannot be recorded or scheduled by last run, and such a run changes
// nothing.
func TestRecordSiteLastRun(t *testing.T) {
	s, q := withSites(t, 2)
	ctx := context.Background()
	now := scheduleNow
	if err := s.RecordSiteLastRun(ctx, q[0], entities.TaskSiteBackup, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	var lb, lc sql.NullInt64
	if err := s.db.QueryRow(`SELECT last_backup, last_cron FROM sites WHERE id = ?`, q[0]).Scan(&lb, &lc); err != nil {
		t.Fatal(err)
	}
	if !lb.Valid || lb.Int64 != now.Add(-time.Hour).UnixMilli() || lc.Valid {
		t.Fatalf("last_backup %v, last_cron %v", lb, lc)
	}
	run := ScheduleRun{
		Schedule: Schedule{Queue: "backup", TaskType: entities.TaskSiteBackup, Rule: DueAfterLastRun, DueBefore: now.Add(-2 * time.Hour)},
		Now:      now, RunBefore: now, Limit: func(n int) int { return n },
	}
	out, err := s.RunSchedule(ctx, run)
	if err != nil || !slices.Equal(targets(out.Tasks), []int64{q[1]}) {
		t.Fatalf("backup run took %v (%v), want only %d", targets(out.Tasks), err, q[1])
	}

	if err := s.RecordSiteLastRun(ctx, q[0], entities.TaskSiteVerify, now); err == nil {
		t.Fatal("recorded a last run of site.verify")
	}
	bad := run
	bad.Queue, bad.TaskType = "cert", "site.cert"
	if _, err := s.RunSchedule(ctx, bad); err == nil {
		t.Fatal("ran site.cert by last run")
	}
	if c, _ := s.ScheduleStatus(ctx, Schedule{Queue: "cert", TaskType: "site.cert", Rule: DueForCertificate, DueBefore: now}); c.LastRun != nil || c.Pending != 0 {
		t.Fatalf("the refused run left %+v", c)
	}
}

// PrunableBackups selects backups beyond the newest keep of each site and
// those older than the cutoff, never a site's newest, and nothing when
// there is no limit.
func TestPrunableBackups(t *testing.T) {
	s, q := withSites(t, 2)
	ctx := context.Background()
	now := scheduleNow
	day := 24 * time.Hour
	backup := func(site int64, age time.Duration) int64 { return backupAged(t, s, site, now, age) }
	// Site 0: 4, 1, 3 and 2 days old (inserted out of order); site 1: one, 90 days old.
	a4, a1, a3, a2 := backup(q[0], 4*day), backup(q[0], day), backup(q[0], 3*day), backup(q[0], 2*day)
	backup(q[1], 90*day)
	for _, c := range []struct {
		name   string
		keep   int
		before time.Time
		want   []int64
	}{
		{"no limit", 0, time.Time{}, []int64{}},
		{"keep 2", 2, time.Time{}, []int64{a4, a3}},
		{"keep 1", 1, time.Time{}, []int64{a4, a3, a2}},
		{"older than 2.5 days", 0, now.Add(-60 * time.Hour), []int64{a4, a3}},
		{"keep 3 or older than 1.5 days", 3, now.Add(-36 * time.Hour), []int64{a4, a3, a2}},
		{"keep 10, older than an hour", 10, now.Add(-time.Hour), []int64{a4, a3, a2}},
	} {
		got, err := s.PrunableBackups(ctx, c.keep, c.before)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", c.name, got, want)
		}
		if slices.Contains(got, a1) {
			t.Errorf("%s: selected site 0's newest backup", c.name)
		}
	}
}

// QueueBackupTasks queues a task on each existing backup that has none
// queued or processing, and only there.
func TestQueueBackupTasks(t *testing.T) {
	s, q := withSites(t, 1)
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		id, err := s.TestInsert(`INSERT INTO backups (site_id, path, created) VALUES (?, ?, ?)`, q[0], fmt.Sprintf("/b/%d", i), i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := s.QueueTask(ctx, entities.TaskBackupDelete, entities.TargetBackup, ids[1], "by hand", nil); err != nil {
		t.Fatal(err)
	}
	at := scheduleNow
	ts, err := s.QueueBackupTasks(ctx, entities.TaskBackupDelete, []int64{ids[0], ids[1], ids[2], 9999}, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := targets(ts); !slices.Equal(got, []int64{ids[0], ids[2]}) {
		t.Fatalf("queued on %v, want %v", got, []int64{ids[0], ids[2]})
	}
	for _, task := range ts {
		stored := get(t, s, task.ID)
		if stored.Type != entities.TaskBackupDelete || stored.TargetKind != entities.TargetBackup || !stored.Created.Equal(at) ||
			stored.Target != "q0.test backup "+itoa(task.TargetID) {
			t.Fatalf("task %+v", stored)
		}
	}
	// Processing counts as pending too; a backup whose task ended gets a new one.
	claimed, err := s.ClaimTask(ctx, claimFor("w", at), ts[0].ID)
	if err != nil || claimed == nil {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	if again, err := s.QueueBackupTasks(ctx, entities.TaskBackupDelete, ids, at, nil); err != nil || len(again) != 0 {
		t.Fatalf("queued again %v (%v) while every backup has one pending", targets(again), err)
	}
	if ok, err := s.FinishTask(ctx, claimed.ID, "w", TaskEnd{Status: entities.TaskError, Error: "disk", Finished: at}); err != nil || !ok {
		t.Fatalf("finish: %v, %v", ok, err)
	}
	if again, err := s.QueueBackupTasks(ctx, entities.TaskBackupDelete, ids, at, nil); err != nil || !slices.Equal(targets(again), []int64{ids[0]}) {
		t.Fatalf("after the failed delete: queued on %v (%v), want %v", targets(again), err, ids[0])
	}
}

// A client's quota of backups keeps the newest N backups of its sites in
// all: the older ones are selected, never a site's newest, and the sites
// of other clients are not touched.
func TestPrunableBackupsClientQuota(t *testing.T) {
	s, q := withSites(t, 3)
	ctx := context.Background()
	now := scheduleNow
	day := 24 * time.Hour
	for _, c := range []struct {
		name  string
		quota int
		sites []int64
	}{{"quota1", 3, q[:2]}, {"quota2", 0, q[2:]}} {
		cl := &entities.Client{Name: c.name}
		if err := s.AddClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
		cl.QuotaBackups = int64(c.quota)
		if err := s.UpdateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
		for _, id := range c.sites {
			if _, err := s.db.Exec(`UPDATE sites SET client_id = ? WHERE id = ?`, cl.ID, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	backup := func(site int64, age time.Duration) int64 { return backupAged(t, s, site, now, age) }
	// acme's sites: site 0 with backups 1, 2 and 5 days old, site 1 with 3
	// and 4 days old; the newest 3 of acme are 1, 2 and 3 days old; 4 days
	// old is site 1's newest but one, 5 days old site 0's oldest.
	backup(q[0], day)
	backup(q[0], 2*day)
	b5 := backup(q[0], 5*day)
	backup(q[1], 3*day)
	b4 := backup(q[1], 4*day)
	for i := range 5 { // quota2: no quota
		backup(q[2], 9*day+time.Duration(i)*time.Hour)
	}
	got, err := s.PrunableBackups(ctx, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{min(b4, b5), max(b4, b5)}; !slices.Equal(got, want) {
		t.Fatalf("selected %v, want %v", got, want)
	}
	// A quota of 1 still keeps each site's newest.
	if _, err := s.db.Exec(`UPDATE clients SET quota_backups = 1 WHERE name = 'quota1'`); err != nil {
		t.Fatal(err)
	}
	got, err = s.PrunableBackups(ctx, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("quota 1: selected %v, want the 3 backups that are not a site's newest", got)
	}
	c, err := s.GetClient(ctx, "quota1")
	if err != nil || c.Backups != 5 {
		t.Fatalf("client quota1 counts %d backups (%v), want 5", c.Backups, err)
	}
}

// backupAged records a backup of site made age before now.
func backupAged(t *testing.T, s *Store, site int64, now time.Time, age time.Duration) int64 {
	t.Helper()
	id, err := s.TestInsert(`INSERT INTO backups (site_id, path, created) VALUES (?, ?, ?)`, site, fmt.Sprintf("/b/%d-%s", site, age), now.Add(-age).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return id
}
