package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func TestItemsPerRun(t *testing.T) {
	for _, c := range []struct {
		sites               int
		interval, frequency time.Duration
		want                int
	}{
		{0, time.Minute, time.Hour, 0},
		{1, time.Minute, time.Hour, 1},
		{60, time.Minute, time.Hour, 1},
		{61, time.Minute, time.Hour, 2},
		{120, time.Minute, time.Hour, 2},
		{10000, time.Minute, time.Hour, 167},
		{10000, time.Minute, 24 * time.Hour, 7},
		{5, time.Hour, time.Minute, 5}, // never more than every site
		{100, time.Minute, 0, 0},
	} {
		if got := ItemsPerRun(c.sites, c.interval, c.frequency); got != c.want {
			t.Errorf("ItemsPerRun(%d, %s, %s) = %d, want %d", c.sites, c.interval, c.frequency, got, c.want)
		}
	}
}

// countTasks counts the tasks of a type per site id.
func countTasks(t *testing.T, st *store.Store, typ string) map[int64]int {
	t.Helper()
	rows, err := st.TestQuery(`SELECT target_id, COUNT(*) FROM tasks WHERE type = ? GROUP BY target_id`, typ)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

// passes runs n dispatches a minute apart on the controlled clock.
func passes(t *testing.T, d *Dispatcher, clk *clock, n int) (created []int) {
	t.Helper()
	for i := 0; i < n; i++ {
		sum, err := d.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, v := range sum.Scheduled {
			c += v
		}
		created = append(created, c)
		clk.Add(time.Minute)
	}
	return created
}

func allEqual(t *testing.T, counts map[int64]int, sites []int64, want int) {
	t.Helper()
	for _, id := range sites {
		if counts[id] != want {
			t.Fatalf("site %d got %d tasks, want %d (all: %v)", id, counts[id], want, counts)
		}
	}
}

// 120 sites, hourly cron, a dispatch a minute: two sites a pass, every site
// exactly once an hour, and its last cron recorded.
func TestCronSpreadsOverTheFrequency(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	sites := seedSites(t, st, 120)
	d := &Dispatcher{Store: st, Handler: succeed, Workers: 4, Queues: []QueueConfig{{Name: "cron", Enabled: true, Frequency: time.Hour}}}
	created := passes(t, d, clk, 60)
	for i, n := range created {
		if n != 2 {
			t.Fatalf("pass %d created %d tasks, want 2: %v", i, n, created)
		}
	}
	allEqual(t, countTasks(t, st, entities.TaskSiteCron), sites, 1)
	var noCron int
	_ = st.TestQueryRow(`SELECT COUNT(*) FROM sites WHERE last_cron IS NULL`).Scan(&noCron)
	if noCron != 0 {
		t.Fatalf("%d sites without last_cron after their cron ran", noCron)
	}
	passes(t, d, clk, 60)
	allEqual(t, countTasks(t, st, entities.TaskSiteCron), sites, 2)
}

// Few sites: ceil() gives one a pass, but a site is only taken when due,
// so ten sites still get cron once an hour, not every ten minutes.
func TestFewSitesNotMoreOftenThanFrequency(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	sites := seedSites(t, st, 10)
	d := &Dispatcher{Store: st, Handler: succeed, Queues: []QueueConfig{{Name: "cron", Enabled: true, Frequency: time.Hour}}}
	passes(t, d, clk, 60)
	allEqual(t, countTasks(t, st, entities.TaskSiteCron), sites, 1)
	passes(t, d, clk, 1) // minute 60: the first site is due again
	if c := countTasks(t, st, entities.TaskSiteCron); c[sites[0]] != 2 || c[sites[1]] != 1 {
		t.Fatalf("at minute 60: %v", c)
	}
}

// A site whose cron always fails still goes to the back of the line.
func TestFailingSiteDoesNotStarveOthers(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	sites := seedSites(t, st, 3)
	d := &Dispatcher{Store: st, Queues: []QueueConfig{{Name: "cron", Enabled: true, Frequency: 3 * time.Minute}},
		Handler: func(_ context.Context, task *entities.Task, _ func(string, string, ...entities.Action)) Outcome {
			if task.TargetID == sites[0] {
				return Outcome{Status: entities.TaskError, Error: "cron.php returned 500"}
			}
			return Outcome{}
		}}
	passes(t, d, clk, 9)
	allEqual(t, countTasks(t, st, entities.TaskSiteCron), sites, 3)
	var failedCron *int64
	_ = st.TestQueryRow(`SELECT last_cron FROM sites WHERE id = ?`, sites[0]).Scan(&failedCron)
	if failedCron != nil {
		t.Fatalf("a site whose cron failed has last_cron %d", *failedCron)
	}
}

// Never-run sites go first, then the least recently run; sites that are
// not installed or already have the task pending are skipped; a run done
// by hand (recent last_backup) counts.
func TestSchedulePicksLeastRecentlyRun(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	s := seedSites(t, st, 8)
	now := clk.Now()
	day := 24 * time.Hour
	mustExec(t, st, `UPDATE sites SET last_backup = ? WHERE id = ?`, now.Add(-3*day).UnixMilli(), s[0])
	mustExec(t, st, `UPDATE sites SET last_backup = ? WHERE id = ?`, now.Add(-5*day).UnixMilli(), s[1])
	mustExec(t, st, `UPDATE sites SET last_backup = ? WHERE id = ?`, now.Add(-time.Hour).UnixMilli(), s[2]) // by hand, an hour ago
	mustExec(t, st, `UPDATE sites SET status = 'disabled' WHERE id = ?`, s[3])
	mustExec(t, st, `UPDATE sites SET status = 'queued' WHERE id = ?`, s[4])
	queueTask(t, st, entities.TaskSiteBackup, entities.TargetSite, s[5])
	// s[6], s[7]: never backed up.
	d := &Dispatcher{Store: st, Handler: succeed, Interval: 6 * time.Hour,
		Queues: []QueueConfig{{Name: "backup", Enabled: true, Frequency: day}}}
	// 6 installed sites × 6 h / 24 h = 2 a run: the two never run.
	got, err := d.Schedule(ctx)
	if err != nil || got["backup"] != 2 {
		t.Fatalf("Schedule = %v, %v", got, err)
	}
	c := countTasks(t, st, entities.TaskSiteBackup)
	if c[s[6]] != 1 || c[s[7]] != 1 || c[s[1]] != 0 {
		t.Fatalf("first run picked %v", c)
	}
	// The same run again: not due (the queue ran just now).
	if got, _ := d.Schedule(ctx); len(got) != 0 {
		t.Fatalf("a second Schedule at once created %v", got)
	}
	clk.Add(6 * time.Hour)
	if got, _ := d.Schedule(ctx); got["backup"] != 2 {
		t.Fatalf("second run: %v", got)
	}
	c = countTasks(t, st, entities.TaskSiteBackup)
	if c[s[1]] != 1 || c[s[0]] != 1 {
		t.Fatalf("second run should take the five- then three-day-old backups: %v", c)
	}
	clk.Add(6 * time.Hour)
	if got, _ := d.Schedule(ctx); len(got) != 0 {
		t.Fatalf("third run: nothing is due (s[2] was backed up by hand, s[5] has a task queued), got %v", got)
	}
	if c := countTasks(t, st, entities.TaskSiteBackup); c[s[2]] != 0 || c[s[3]] != 0 || c[s[4]] != 0 || c[s[5]] != 1 {
		t.Fatalf("skipped sites got tasks: %v", c)
	}
}

// Two dispatchers on two handles scheduling at the same moment create one
// batch between them.
func TestTwoDispatchersScheduleOnce(t *testing.T) {
	st1, path := newStore(t)
	st2 := openStore(t, path)
	clk := newClock()
	st1.Now, st2.Now = clk.Now, clk.Now
	seedSites(t, st1, 600)
	qs := []QueueConfig{{Name: "cron", Enabled: true, Frequency: time.Hour}, {Name: "stats", Enabled: true, Frequency: time.Hour}}
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		results := make([]map[string]int, 2)
		for i, st := range []*store.Store{st1, st2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := &Dispatcher{Store: st, Queues: qs}
				r, err := d.Schedule(context.Background())
				if err != nil {
					t.Error(err)
				}
				results[i] = r
			}()
		}
		wg.Wait()
		for _, q := range []string{"cron", "stats"} {
			if n := results[0][q] + results[1][q]; n != 10 {
				t.Fatalf("round %d: %s created %d + %d tasks, want 10 in all", round, q, results[0][q], results[1][q])
			}
		}
		clk.Add(time.Minute)
	}
}

func TestQueueStatus(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	s := seedSites(t, st, 130)
	mustExec(t, st, `UPDATE sites SET last_cron = ? WHERE id = ?`, clk.Now().UnixMilli(), s[0])
	d := &Dispatcher{Store: st, Queues: []QueueConfig{{Name: "cron", Enabled: true, Frequency: time.Hour}, {Name: "stats", Enabled: false, Frequency: 2 * time.Hour}}}
	if _, err := d.Schedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	qs, err := d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != len(DefaultQueues()) {
		t.Fatalf("%d queues", len(qs))
	}
	cron, backup, stats := qs[0], qs[1], qs[2]
	// 130 sites, 3 a run; one ran just now, three were just queued.
	if cron.Name != "cron" || !cron.Enabled || cron.Frequency != "1h" || cron.Sites != 130 || cron.ItemsPerRun != 3 ||
		cron.ItemsDue != 126 || cron.Pending != 3 || cron.LastRun == nil || !cron.LastRun.Equal(clk.Now()) {
		t.Fatalf("cron %+v", cron)
	}
	if backup.Enabled || backup.Frequency != "24h" || backup.ItemsDue != 130 || backup.LastRun != nil {
		t.Fatalf("backup (not configured) %+v", backup)
	}
	if stats.Enabled || stats.Frequency != "2h" || stats.ItemsPerRun != 2 || stats.Pending != 0 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestQueueConfigValidate(t *testing.T) {
	if err := (QueueConfig{Name: "mail", Frequency: time.Hour}).Validate(); err == nil {
		t.Fatal("unknown queue accepted")
	}
	if err := (QueueConfig{Name: "cron"}).Validate(); err == nil {
		t.Fatal("zero frequency accepted")
	}
	for _, q := range DefaultQueues() {
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if got := formatDuration(90 * time.Minute); got != "1h30m" {
		t.Fatalf("formatDuration = %q", got)
	}
}

// The health queue: 120 sites, hourly, a dispatch a minute: two sites a
// pass, every site once an hour, in site.health tasks. A site whose health
// a verify checked just now waits a full frequency: its last health check
// counts as the queue's last run.
func TestHealthQueueSpreadsAndCountsAVerify(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	sites := seedSites(t, st, 120)
	mustExec(t, st, `UPDATE sites SET health_status = 'ok', health_checked = ? WHERE id = ?`, clk.Now().UnixMilli(), sites[0])
	d := &Dispatcher{Store: st, Handler: succeed, Workers: 4, Queues: []QueueConfig{{Name: "health", Enabled: true, Frequency: time.Hour}}}
	created := passes(t, d, clk, 60)
	for i, n := range created[:59] {
		if n != 2 {
			t.Fatalf("pass %d created %d tasks, want 2: %v", i, n, created)
		}
	}
	c := countTasks(t, st, entities.TaskSiteHealth)
	if c[sites[0]] != 0 {
		t.Fatalf("the site checked by a verify got %d health tasks within the hour", c[sites[0]])
	}
	allEqual(t, c, sites[1:], 1)
	passes(t, d, clk, 1) // minute 60: the verified site is due
	if c := countTasks(t, st, entities.TaskSiteHealth); c[sites[0]] != 1 {
		t.Fatalf("at minute 60 the verified site has %d health tasks, want 1: %v", c[sites[0]], c)
	}
	var on bool
	for _, q := range DefaultQueues() {
		if q.Name == "health" {
			on = q.Enabled && q.Frequency == time.Hour
		}
	}
	if !on {
		t.Fatal("the health queue is not on, hourly, by default")
	}
}
