package queue

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestBackupsToPrune(t *testing.T) {
	st, _ := newStore(t)
	s := seedSites(t, st, 3)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	add := func(site int64, age time.Duration) int64 {
		t.Helper()
		id, err := st.TestInsert(`INSERT INTO backups (site_id, path, created) VALUES (?, ?, ?)`,
			site, fmt.Sprintf("/b/%d-%d.tar.gz", site, age), now.Add(-age).UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Site a: one backup a day for ten days, inserted oldest first.
	var a []int64 // a[i] is i days old
	for i := 9; i >= 0; i-- {
		a = append([]int64{add(s[0], time.Duration(i)*day)}, a...)
	}
	// Site b: two old backups. Site c: one very old backup.
	b40, b50 := add(s[1], 40*day), add(s[1], 50*day)
	c100 := add(s[2], 100*day)

	for _, c := range []struct {
		name   string
		keep   int
		maxAge time.Duration
		want   []int64
	}{
		{"no limits", 0, 0, []int64{}},
		{"keep 3", 3, 0, []int64{a[3], a[4], a[5], a[6], a[7], a[8], a[9]}},
		{"keep 1", 1, 0, []int64{a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], b50}},
		{"older than 5 days", 0, 5 * day, []int64{a[6], a[7], a[8], a[9], b50}},
		{"keep 3 and 30 days", 3, 30 * day, []int64{a[3], a[4], a[5], a[6], a[7], a[8], a[9], b50}},
		{"keep 20 and 1 hour", 20, time.Hour, []int64{a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], b50}},
	} {
		got, err := BackupsToPrune(context.Background(), st, c.keep, c.maxAge, now)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]int64{}, c.want...)
		slices.Sort(want)
		if !sameIDs(got, want) {
			t.Errorf("%s: got %v, want %v", c.name, got, want)
		}
		for _, id := range got {
			if id == a[0] || id == b40 || id == c100 {
				t.Errorf("%s: selected backup %d, the newest of its site", c.name, id)
			}
		}
	}
	var n int
	_ = st.TestQueryRow(`SELECT COUNT(*) FROM backups`).Scan(&n)
	if n != 13 {
		t.Fatalf("the selection changed the table: %d backups left", n)
	}
}

// The backup queue's run queues backup.delete tasks for what the
// retention rules select, once each, however often it runs.
func TestBackupQueuePrunes(t *testing.T) {
	st, _ := newStore(t)
	c := newClock()
	st.Now = c.Now
	s := seedSites(t, st, 1)
	for i := 0; i < 5; i++ {
		mustExec(t, st, `INSERT INTO backups (site_id, path, created) VALUES (?, ?, ?)`, s[0], fmt.Sprintf("/b/%d.tar.gz", i), c.Now().Add(-time.Duration(i)*time.Hour).UnixMilli())
	}
	d := &Dispatcher{Store: st, Queues: []QueueConfig{{Name: "backup", Enabled: true, Frequency: 24 * time.Hour, Keep: 2}}}
	count := func() int {
		var n int
		if err := st.TestQueryRow(`SELECT COUNT(*) FROM tasks WHERE type = 'backup.delete' AND target_kind = 'backup' AND status = 'queued'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := d.Schedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d backup.delete tasks after the first run, want 3 (5 backups, keep 2)", n)
	}
	c.Add(25 * time.Hour)
	if _, err := d.Schedule(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d backup.delete tasks after a second run, want still 3", n)
	}
}
