package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Requests that arrive while a reload runs share the next one; every
// caller returns only after a reload that began after its request.
func TestReloadSetCoalesces(t *testing.T) {
	r := NewReloadSet()
	r.Gather = 20 * time.Millisecond
	var reloads atomic.Int32
	var lastStart atomic.Int64
	fn := func(ctx context.Context) error {
		lastStart.Store(time.Now().UnixNano())
		reloads.Add(1)
		time.Sleep(30 * time.Millisecond)
		return nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			asked := time.Now().UnixNano()
			if err := r.Reload(context.Background(), "web1", fn); err != nil {
				t.Error(err)
			}
			if lastStart.Load() < asked {
				t.Error("returned before a reload that started after the request")
			}
		}()
	}
	wg.Wait()
	if n := reloads.Load(); n < 1 || n > 2 {
		t.Fatalf("%d reloads for 20 concurrent requests, want 1 or 2", n)
	}
	// Errors reach every waiter; other keys are independent.
	boom := errors.New("boom")
	if err := r.Reload(context.Background(), "web2", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("reload error: %v", err)
	}
}

// The tasks of TestRunResult, registered once (a test may run again).
func init() {
	Register("test.ok", func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error) {
		env.Logf(provision.LevelInfo, "did %s", c.Site.Domain)
		return &provision.Changes{LoginLink: "x"}, nil
	})
	Register("test.warn", func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error) {
		env.Logf(provision.LevelWarning, "careful")
		return nil, nil
	})
	Register("test.fail", func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error) {
		return nil, provision.Errorf(provision.ErrDatabase, "start the database", "database down")
	})
	Register("test.exit", func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error) {
		return nil, &exec.ExitError{Command: "false", ExitCode: 1}
	})
	Register("test.panic", func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error) { panic("oops") })

}

func TestRunResult(t *testing.T) {
	run := func(task string) *provision.Result {
		return Run(context.Background(), t.TempDir(), &provision.Job{Task: task, Site: provision.SiteSpec{Domain: "a.test"}}, nil, nil)
	}
	if r := run("test.ok"); r.Status != provision.StatusSuccess || r.Changes == nil || r.Changes.LoginLink != "x" || len(r.Log) != 1 || r.Log[0].Message != "did a.test" {
		t.Errorf("ok: %+v", r)
	}
	if r := run("test.warn"); r.Status != provision.StatusWarning {
		t.Errorf("warning: %+v", r)
	}
	if r := run("test.fail"); r.Status != provision.StatusError || r.ErrorCode != provision.ErrDatabase || r.Hint != "start the database" || r.Error != "database down" {
		t.Errorf("fail: %+v", r)
	}
	if r := run("test.exit"); r.ErrorCode != provision.ErrCommand || !strings.Contains(r.Hint, "task log") {
		t.Errorf("exit: %+v", r)
	}
	if r := run("test.panic"); r.ErrorCode != provision.ErrInternal || !strings.Contains(r.Error, "oops") {
		t.Errorf("panic: %+v", r)
	}
	if r := run("nope"); r.ErrorCode != provision.ErrInvalidContext || !strings.Contains(r.Error, "unknown task type") {
		t.Errorf("unknown: %+v", r)
	}
}

// A reload waits for the changes to its server in progress (Begin), and
// the task whose request waits so hands its worker over meanwhile
// (WithSharedWait) and resumes after the reload; a request with nothing
// else going on reloads at once and keeps its worker.
func TestReloadSetWaitsForChangesInProgress(t *testing.T) {
	r := NewReloadSet()
	var reloads atomic.Int32
	fn := func(context.Context) error { reloads.Add(1); return nil }
	var lent, resumed atomic.Int32
	ctx := WithSharedWait(context.Background(), func() func() {
		lent.Add(1)
		return func() { resumed.Add(1) }
	})

	if err := r.Reload(ctx, "web1", fn); err != nil || reloads.Load() != 1 || lent.Load() != 0 {
		t.Fatalf("alone: %v, %d reloads, lent %d times; want one reload, not lent", err, reloads.Load(), lent.Load())
	}

	end := r.Begin("web1")
	done := make(chan error)
	go func() { done <- r.Reload(ctx, "web1", fn) }()
	time.Sleep(100 * time.Millisecond)
	if reloads.Load() != 1 || lent.Load() != 1 {
		t.Fatalf("with a change in progress: %d reloads, lent %d times; want no new reload yet, lent once", reloads.Load(), lent.Load())
	}
	started := time.Now()
	end()
	if err := <-done; err != nil || reloads.Load() != 2 || resumed.Load() != 1 {
		t.Fatalf("after the change: %v, %d reloads, resumed %d times", err, reloads.Load(), resumed.Load())
	}
	if d := time.Since(started); d > time.Second {
		t.Errorf("the reload came %s after the change ended", d)
	}

	// MaxDelay bounds the wait for a change that never ends.
	r.MaxDelay = 200 * time.Millisecond
	r.Begin("web2")
	start := time.Now()
	if err := r.Reload(ctx, "web2", fn); err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("with a change that never ends: %v after %s", err, time.Since(start))
	}
}

// A shared reload runs as a requester that still waits for it, not as
// the first, which may have given up and returned its result (its log
// is then no longer the reload's to write to).
func TestReloadSetRunsAsAWaitingRequester(t *testing.T) {
	r := NewReloadSet()
	end := r.Begin("web1") // a change in progress holds the reload back
	var gaveUp, waits atomic.Int32
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error)
	go func() { done1 <- r.Reload(ctx1, "web1", func(context.Context) error { gaveUp.Add(1); return nil }) }()
	time.Sleep(50 * time.Millisecond)
	done2 := make(chan error)
	go func() {
		done2 <- r.Reload(context.Background(), "web1", func(context.Context) error { waits.Add(1); return nil })
	}()
	time.Sleep(50 * time.Millisecond)
	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Fatalf("the requester that gave up: %v", err)
	}
	end()
	if err := <-done2; err != nil {
		t.Fatalf("the requester that waited: %v", err)
	}
	if gaveUp.Load() != 0 || waits.Load() != 1 {
		t.Fatalf("reloads run as the one that gave up: %d, as the one that waited: %d; want 0 and 1", gaveUp.Load(), waits.Load())
	}
}
