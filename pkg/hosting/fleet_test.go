package hosting_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/simexec"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// fleet is a state seeded with a simulated fleet (store.SeedFleet) and a
// dispatcher whose back end reaches the servers through a recording
// executor (simexec).
type fleet struct {
	st    *store.Store
	sim   *simexec.Fleet
	pool  *engine.Pool
	d     *queue.Dispatcher
	clock time.Time
}

// newFleet seeds servers and sites on a fresh state (SQLite, or
// PostgreSQL with AEGIR_TEST_STATE=postgres) and makes the dispatcher of
// hosting dispatch over it, every scheduled queue on.
func newFleet(tb testing.TB, servers, sites int) *fleet {
	tb.Helper()
	ctx := context.Background()
	home := tb.TempDir()
	st, err := store.Open(ctx, testenv.State(tb), true)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	if err := st.SeedFleet(ctx, store.FleetState{Servers: servers, Sites: sites, HTTPSEvery: 10, Ran: now.Add(-time.Hour)}); err != nil {
		tb.Fatal(err)
	}
	sim := &simexec.Fleet{Files: simexec.WordPressPlatform("/var/www/wp")}
	pool := engine.NewPool(home)
	pool.Dial = sim.Dial
	tb.Cleanup(pool.Close)
	r := &hosting.Runner{Store: st, Home: home, Pool: pool, Settings: hosting.Settings{
		WebUser: "www-data", WebGroup: "www-data", BackupDir: filepath.Join(home, "backups"),
		// No CA to ask: a port nothing listens on.
		ACME: hosting.ACMESettings{Directory: "https://127.0.0.1:1/directory"}}}
	qs := queue.DefaultQueues()
	for i := range qs {
		qs[i].Enabled = true
	}
	d := &queue.Dispatcher{Store: st, Handler: r.Handle, Cleanup: r.Rescue, Workers: 8, Queues: qs}
	return &fleet{st: st, sim: sim, pool: pool, d: d, clock: now}
}

// TestFleetDispatchOneConnectionPerServer runs one dispatch pass, every
// scheduled queue on, over 2,000 sites on 20 simulated servers: the
// queues plan their due work, the dispatcher claims and runs it through
// the back end, and the recording executor answers as the servers would.
// Each server the pass reached was connected to once (the pool's one
// connection per server, shared by the tasks that run on it at once),
// and the cron, statistics and backup tasks did their work on it.
func TestFleetDispatchOneConnectionPerServer(t *testing.T) {
	f := newFleet(t, 20, 2000)
	f.sim.KeepCommands = true
	ctx := context.Background()
	sum, err := f.d.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A minute of a 2,000-site fleet: cron, stats and health checks
	// hourly (34 each), backups daily (2), the 200 HTTPS sites' renewals
	// daily (1).
	want := map[string]int{"cron": 34, "stats": 34, "health": 34, "backup": 2, "cert": 1}
	if fmt.Sprint(sum.Scheduled) != fmt.Sprint(want) || sum.Ran != 105 {
		t.Fatalf("pass: %+v, want %v queued and 105 run", sum, want)
	}
	ts, err := f.st.ListTasks(ctx, store.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]bool{} // the servers the pass's tasks ran on
	ran := map[string]int{}
	for _, x := range ts {
		site, err := f.st.GetSite(ctx, x.Target)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.st.GetPlatform(ctx, site.Platform)
		if err != nil {
			t.Fatal(err)
		}
		servers["aegir@"+p.Server+".fleet.test:22"] = true
		switch {
		case x.Type == queue.TaskSiteCert:
			// No CA answers the simulated fleet: the renewal fails there,
			// after the server was reached.
			if x.Status != entities.TaskError || !strings.Contains(x.Error, "ACME CA") {
				t.Errorf("task %d %s %s: %s %s, want an error of the CA", x.ID, x.Type, x.Target, x.Status, x.Error)
			}
		case x.Type == entities.TaskSiteHealth && x.Status == entities.TaskWarning:
			// The simulated servers answer the site's page but not the
			// php-fpm check: the answer is the judge, a warning.
		case x.Status != entities.TaskSuccess:
			t.Errorf("task %d %s %s: %s: %s", x.ID, x.Type, x.Target, x.Status, x.Error)
		}
		ran[x.Type]++
	}
	conns := f.sim.Connections()
	for host, n := range conns {
		if n != 1 {
			t.Errorf("%s: %d connections in one dispatch, want 1", host, n)
		}
		if !servers[host] {
			t.Errorf("%s: connected to, but no task of the pass ran there", host)
		}
	}
	for host := range servers {
		if conns[host] == 0 {
			t.Errorf("%s: tasks ran there without a connection", host)
		}
	}
	// What the servers were asked: each cron run requested wp-cron.php
	// from its web server, and each health check the site's front page;
	// each backup dumped its database.
	count := map[string]int{}
	for _, r := range f.sim.Commands() {
		switch {
		case r.Op == "tunnel tcp 127.0.0.1:80":
			count["http"]++
		case strings.HasPrefix(r.Op, "/usr/bin/mariadb-dump "):
			count["dump"]++
		}
	}
	if count["http"] != ran[entities.TaskSiteCron]+ran[entities.TaskSiteHealth] || count["dump"] != ran[entities.TaskSiteBackup] {
		t.Errorf("servers saw %v, want a web request per cron and health task and a dump per backup (%v)", count, ran)
	}
	t.Logf("%d servers, %d connections, %v", len(servers), len(conns), count)
}
