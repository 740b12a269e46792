package queue

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/store"
)

// newStore creates a state (a file in a temp dir, or a PostgreSQL database:
// testenv.State) and returns it and its locator.
func newStore(t testing.TB) (*store.Store, string) {
	t.Helper()
	path := testenv.State(t)
	st, err := store.Open(context.Background(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// openStore opens a second handle on an existing state.
func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func queueTask(t testing.TB, st *store.Store, typ, kind string, id int64) *entities.Task {
	t.Helper()
	task, err := st.QueueTask(context.Background(), typ, kind, id, fmt.Sprintf("%s-%d", kind, id), nil)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func getTask(t testing.TB, st *store.Store, id int64) *entities.Task {
	t.Helper()
	task, err := st.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func taskLog(t testing.TB, st *store.Store, id int64) []entities.LogLine {
	t.Helper()
	lines, _, err := st.TaskLog(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func mustExec(t testing.TB, st *store.Store, q string, args ...any) {
	t.Helper()
	if _, err := st.TestExec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// clock is a controlled time source for Store.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// seedSites adds a server, a platform and n installed sites s0.test ...,
// in a new store, and returns the sites' ids in order.
func seedSites(t testing.TB, st *store.Store, n int) []int64 {
	t.Helper()
	now := time.Now().UnixMilli()
	server, err := st.TestInsert(`INSERT INTO servers (name, host, status, created) VALUES ('web1', 'localhost', 'enabled', ?)`, now)
	if err != nil {
		t.Fatal(err)
	}
	platform, err := st.TestInsert(`INSERT INTO platforms (name, server_id, root, status, created) VALUES ('p1', ?, '/var/www/p1', 'enabled', ?)`, server, now)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("s%d.test", i), platform, server, now}
	}
	if err := st.TestBatch(`INSERT INTO sites (domain, platform_id, db_server_id, status, created) VALUES (?, ?, ?, 'installed', ?)`, rows); err != nil {
		t.Fatal(err)
	}
	// The store is new: its sites are these, in the order inserted.
	res, err := st.TestQuery(`SELECT id FROM sites ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	ids := []int64{}
	for res.Next() {
		var id int64
		if err := res.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := res.Err(); err != nil || len(ids) != n {
		t.Fatalf("%d sites seeded, want %d (%v)", len(ids), n, err)
	}
	return ids
}

// succeed is a handler that ends every task well.
func succeed(ctx context.Context, t *entities.Task, log func(level, msg string, fix ...entities.Action)) Outcome {
	return Outcome{Status: entities.TaskSuccess}
}

// claim claims up to limit tasks for worker as a dispatcher would.
func claim(ctx context.Context, st *store.Store, now time.Time, lease time.Duration, worker string, limit int) ([]*entities.Task, error) {
	return st.ClaimTasks(ctx, store.Claim{Worker: worker, Now: now, LeaseUntil: now.Add(lease)}, limit)
}

// finishTask records the end of task id, which worker claimed.
func finishTask(t testing.TB, st *store.Store, id int64, worker, status, errMsg string) {
	t.Helper()
	ok, err := st.FinishTask(context.Background(), id, worker, store.TaskEnd{Status: status, Error: errMsg, Finished: time.Now()})
	if err != nil || !ok {
		t.Fatalf("finishing task %d: %v (recorded: %v)", id, err, ok)
	}
}
