package queue

import (
	"context"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// BenchmarkDispatchNoop is the dispatcher's overhead per task: claim, log
// line, finish, with a handler that does nothing (issue 6: ≤ 2 ms).
func BenchmarkDispatchNoop(b *testing.B) {
	st, _ := newStore(b)
	insertVerifies(b, st, b.N, b.N)
	d := &Dispatcher{Store: st, Workers: 2, Handler: func(_ context.Context, _ *entities.Task, log func(string, string, ...entities.Action)) Outcome {
		log("info", "nothing to do")
		return Outcome{}
	}}
	b.ResetTimer()
	sum, err := d.RunOnce(context.Background())
	if err != nil || sum.Ran != b.N {
		b.Fatalf("%+v, %v", sum, err)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/task")
}

// BenchmarkScheduleCron10k plans and queues one cron run over 10,000
// installed sites (issue 6: ≤ 50 ms).
func BenchmarkScheduleCron10k(b *testing.B) {
	st, _ := newStore(b)
	clk := newClock()
	st.Now = clk.Now
	seedSites(b, st, 10000)
	// Half the sites have run before, at scattered times.
	if _, err := st.TestExec(`UPDATE sites SET last_cron = ? - (id * 7919 % 3600000) WHERE id % 2 = 0`, clk.Now().UnixMilli()); err != nil {
		b.Fatal(err)
	}
	d := &Dispatcher{Store: st, Queues: []QueueConfig{{Name: "cron", Enabled: true, Frequency: time.Hour}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := d.Schedule(context.Background())
		if err != nil || got["cron"] != 167 {
			b.Fatalf("%v, %v", got, err)
		}
		b.StopTimer()
		// Start the next run from the same state, a minute later.
		for _, q := range []string{`DELETE FROM tasks`, `DELETE FROM queue_items`} {
			if _, err := st.TestExec(q); err != nil {
				b.Fatal(err)
			}
		}
		clk.Add(time.Minute)
		b.StartTimer()
	}
}

// BenchmarkClaimWithBacklog claims from 100,000 queued tasks on 10,000
// sites, ten at a time.
func BenchmarkClaimWithBacklog(b *testing.B) {
	st, _ := newStore(b)
	insertVerifies(b, st, 100000, 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts, err := claim(context.Background(), st, time.Now(), time.Minute, "w", 10)
		if err != nil || len(ts) != 10 {
			b.Fatalf("%d, %v", len(ts), err)
		}
		b.StopTimer()
		for _, t := range ts {
			if _, err := st.TestExec(`UPDATE tasks SET status = 'success' WHERE id = ?`, t.ID); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

// insertVerifies queues n site.verify tasks, on sites 0 to sites-1 in turn,
// in one transaction.
func insertVerifies(b *testing.B, st *store.Store, n, sites int) {
	b.Helper()
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{i % sites}
	}
	if err := st.TestBatch(`INSERT INTO tasks (type, target_kind, target_id, target, created) VALUES ('site.verify', 'site', ?, 'x', 0)`, rows); err != nil {
		b.Fatal(err)
	}
}
