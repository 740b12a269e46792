package hosting_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// Fleet-scale benchmarks (issue 20 point 4; make bench, docs/benchmarks.md
// Fleet scale): a fleet of 100 sites a server on simulated servers
// (simexec), on SQLite or, with AEGIR_TEST_STATE=postgres, on a
// PostgreSQL database of its own. AEGIR_BENCH_FLEET lists the fleet
// sizes (default 10000; make bench: 10000,30000,100000). Each reports,
// beside the time, the process's peak RSS over the timed part (its peak
// reset after the seeding).

func fleetSizes(b *testing.B) []int {
	spec := os.Getenv("AEGIR_BENCH_FLEET")
	if spec == "" {
		spec = "10000"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			b.Fatalf("AEGIR_BENCH_FLEET: %q is not a number of sites (100 or more)", f)
		}
		out = append(out, n)
	}
	return out
}

// resetPeakRSS returns the seeding's memory to the system and starts the
// process's peak RSS (VmHWM) from what it holds now.
func resetPeakRSS(b *testing.B) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset: %v", err)
	}
}

// peakRSS is the process's peak RSS in MB (VmHWM).
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

func forFleets(b *testing.B, f func(b *testing.B, fl *fleet)) {
	for _, n := range fleetSizes(b) {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			fl := newFleet(b, n/100, n)
			resetPeakRSS(b)
			b.ResetTimer()
			f(b, fl)
			b.StopTimer()
			b.ReportMetric(peakRSS(), "peak-RSS-MB")
		})
	}
}

// next moves the fleet's clock a minute on: the next dispatch's time.
func (f *fleet) next() {
	f.clock = f.clock.Add(time.Minute)
	now := f.clock
	f.st.Now = func() time.Time { return now }
}

// BenchmarkFleetPlanClaim is one dispatch pass's planning and claiming:
// every scheduled queue (cron, backup, stats, cert) plans and queues its
// due sites, and the dispatcher claims what can run of them (goal: < 1 s and
// < 200 MB at 100,000 sites). Each run is the next minute's dispatch.
func BenchmarkFleetPlanClaim(b *testing.B) {
	forFleets(b, func(b *testing.B, f *fleet) {
		ctx := context.Background()
		tasks, claimed := 0, 0
		for i := 0; i < b.N; i++ {
			f.next()
			got, err := f.d.Schedule(ctx)
			if err != nil {
				b.Fatal(err)
			}
			queued := 0
			for _, n := range got {
				queued += n
			}
			// One claim takes what can run now: a task per site (a site's
			// second task waits for its first).
			ts, err := f.st.ClaimTasks(ctx, store.Claim{Worker: "bench@fleet", Now: f.clock, LeaseUntil: f.clock.Add(time.Hour)}, queued)
			if err != nil || len(ts) == 0 {
				b.Fatalf("claimed %d of %d (%v): %v", len(ts), queued, got, err)
			}
			tasks += queued
			claimed += len(ts)
			b.StopTimer()
			// The pass's tasks end, as the dispatcher's workers would end them.
			if _, err := f.st.TestExec(`UPDATE tasks SET status = 'success' WHERE status IN ('queued', 'processing')`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(claimed)/float64(b.N), "claimed/op")
		b.ReportMetric(float64(tasks)/float64(b.N), "tasks/op")
	})
}

// BenchmarkFleetCronPlan plans and queues one cron run over the fleet.
func BenchmarkFleetCronPlan(b *testing.B) {
	forFleets(b, func(b *testing.B, f *fleet) {
		ctx := context.Background()
		f.d.Queues = []queue.QueueConfig{{Name: "cron", Enabled: true, Frequency: time.Hour}}
		for i := 0; i < b.N; i++ {
			f.next()
			got, err := f.d.Schedule(ctx)
			if err != nil || got["cron"] == 0 {
				b.Fatalf("%v, %v", got, err)
			}
		}
	})
}

// BenchmarkFleetDispatch is one whole dispatch pass (hosting dispatch,
// 8 workers): plan, claim, and run every task through the back end on
// the simulated servers, which answer as servers would. It reports the
// tasks run, the servers reached and the most connections one server got
// in a pass (the rule: 1).
func BenchmarkFleetDispatch(b *testing.B) {
	forFleets(b, func(b *testing.B, f *fleet) {
		ctx := context.Background()
		ran, servers, most := 0, 0, 0
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			f.next()
			f.sim.Reset()
			f.pool.Close() // each pass is a new hosting dispatch with its own connections
			b.StartTimer()
			sum, err := f.d.RunOnce(ctx)
			if err != nil || sum.Ran == 0 {
				b.Fatalf("%+v, %v", sum, err)
			}
			ran += sum.Ran
			conns := f.sim.Connections()
			servers += len(conns)
			for _, n := range conns {
				most = max(most, n)
			}
		}
		if most > 1 {
			b.Errorf("a server got %d connections in one dispatch, want at most 1", most)
		}
		b.ReportMetric(float64(ran)/float64(b.N), "tasks/op")
		b.ReportMetric(float64(servers)/float64(b.N), "servers/op")
		b.ReportMetric(float64(most), "max-conns/server")
	})
}
