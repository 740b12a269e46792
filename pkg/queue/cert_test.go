package queue

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// The cert queue takes the ACME certificates that are due (renew_after
// passed, or a first issuance to retry), earliest first, a few a run, and
// skips admin certificates, sites with HTTPS off or not installed, and
// sites that already have a site.cert task waiting. A failure backs off.
func TestCertQueue(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	s := seedSites(t, st, 31)
	now := clk.Now()
	mustExec(t, st, `UPDATE sites SET https = 'on'`)
	cert := func(site int64, source string, renew *time.Time, notAfter bool) {
		var ra, na any
		if renew != nil {
			ra = renew.UnixMilli()
		}
		if notAfter {
			na = now.Add(20 * 24 * time.Hour).UnixMilli()
		}
		mustExec(t, st, `INSERT INTO certificates (site_id, names, source, not_after, renew_after, updated) VALUES (?, 'x.test', ?, ?, ?, ?)`,
			site, source, na, ra, now.UnixMilli())
	}
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	cert(s[0], "acme", at(-time.Hour), true)      // due
	cert(s[1], "acme", at(time.Hour), true)       // not yet
	cert(s[2], "admin", at(-time.Hour), true)     // brought by the admin: never renewed here
	cert(s[3], "acme", at(-time.Minute), false)   // first issuance failed: retry
	cert(s[4], "acme", at(-2*time.Hour), true)    // due, but HTTPS is off
	cert(s[5], "acme", at(-30*time.Minute), true) // due, site disabled: its TLS vhost still answers
	cert(s[6], "acme", at(-3*time.Hour), true)    // due, but a site.cert task already waits
	cert(s[7], "acme", at(-4*time.Hour), true)    // due, site still queued
	// s[30]: HTTPS and no certificate at all (a clone): due at once.
	for i := 8; i < 30; i++ {
		cert(s[i], "acme", at(time.Duration(i)*24*time.Hour), true)
	}
	mustExec(t, st, `UPDATE sites SET https = 'off' WHERE id = ?`, s[4])
	mustExec(t, st, `UPDATE sites SET status = 'disabled' WHERE id = ?`, s[5])
	mustExec(t, st, `UPDATE sites SET status = 'queued' WHERE id = ?`, s[7])
	queueTask(t, st, TaskSiteCert, entities.TargetSite, s[6])

	// 27 ACME certificates of live sites with HTTPS and one site without,
	// checked once a day with a run every 12 minutes: 28 × 12m / 24h → 1 a run.
	d := &Dispatcher{Store: st, Interval: 12 * time.Minute, Queues: []QueueConfig{{Name: CertQueue, Enabled: true, Frequency: 24 * time.Hour}}}
	qs, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var status QueueStatus
	for _, q := range qs {
		if q.Name == CertQueue {
			status = q
		}
	}
	if status.Sites != 28 || status.ItemsPerRun != 1 || status.ItemsDue != 4 || status.TaskType != TaskSiteCert {
		t.Fatalf("cert queue status %+v", status)
	}
	order := []int64{s[6]}         // its task was there before
	for run := 0; run < 5; run++ { // s[1] comes due at the sixth
		got, err := d.Schedule(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got[CertQueue] > 1 {
			t.Fatalf("run %d queued %d renewals, want at most 1", run, got[CertQueue])
		}
		order = append(order, certTasksSince(t, d, order)...)
		clk.Add(12 * time.Minute)
	}
	order = order[1:]
	want := []int64{s[30], s[0], s[5], s[3]}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("renewals in order %v, want %v (s30, s0, s5, s3)", order, want)
	}

	// A failed attempt is retried only after its backoff.
	mustExec(t, st, `DELETE FROM tasks WHERE type = ?`, TaskSiteCert)
	if _, err := st.CertFailed(ctx, s[0], nil, "CA down", CertRetryDelay); err != nil {
		t.Fatal(err)
	}
	mustExec(t, st, `UPDATE certificates SET renew_after = ? WHERE site_id <> ?`, now.Add(1000*time.Hour).UnixMilli(), s[0])
	mustExec(t, st, `UPDATE sites SET https = 'off' WHERE id = ?`, s[30])
	clk.Add(59 * time.Minute)
	if got, _ := d.Schedule(ctx); got[CertQueue] != 0 {
		t.Fatalf("retried before the backoff: %v", got)
	}
	clk.Add(12 * time.Minute) // the next run
	if got, _ := d.Schedule(ctx); got[CertQueue] != 1 {
		t.Fatalf("not retried after the backoff: %v", got)
	}
}

// certTasksSince lists the sites of site.cert tasks not in seen.
func certTasksSince(t *testing.T, d *Dispatcher, seen []int64) []int64 {
	t.Helper()
	rows, err := d.Store.TestQuery(`SELECT target_id FROM tasks WHERE type = ? ORDER BY id`, TaskSiteCert)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	old := map[int64]bool{}
	for _, id := range seen {
		old[id] = true
	}
	var out []int64
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		if !old[id] {
			out = append(out, id)
		}
	}
	return out
}

func TestCertRetryDelay(t *testing.T) {
	var got []time.Duration
	for n := 0; n <= 8; n++ {
		got = append(got, CertRetryDelay(n))
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i] < got[j] }) || got[1] != time.Hour || got[2] != 2*time.Hour || got[5] != 16*time.Hour || got[8] != 24*time.Hour {
		t.Fatalf("delays %v", got)
	}
}
