package engine

import (
	"context"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
)

// ReloadSet coalesces reloads of a web server: the tasks that change one
// server at about the same time share one reload, and the wait for the
// server to serve the new configuration. A caller returns only after a
// reload that started after its request has finished, so its changes are
// live when it returns.
//
// A reload starts at once when nothing else is going on: no reload of the
// server running, no change to it in progress (Begin), no other task
// running in the process (Running). Otherwise it waits for the changes in
// progress and, for at most Gather, for the other running tasks to ask
// too; never longer than MaxDelay after its first request. A caller whose
// request has to wait so hands its worker over while it waits
// (WithSharedWait): the wait is shared, and the next task can go on.
type ReloadSet struct {
	mu sync.Mutex
	m  map[string]*reloadState
	// Gather is how long a reload waits for the other running tasks to
	// ask for it too.
	Gather time.Duration
	// MaxDelay bounds how long a reload waits for changes in progress.
	MaxDelay time.Duration
	runs     int // tasks running (Running)
	waiting  int // of which waiting for a reload
}

type reloadState struct {
	running bool // the loop runs
	busy    bool // a reload is under way
	writers int  // changes in progress (Begin)
	first   time.Time
	pending []reloadRequest
}

type reloadRequest struct {
	ch  chan reloadResult
	fn  func(context.Context) error
	ctx context.Context // the requester's: done once it no longer waits
}

type reloadResult struct {
	started time.Time
	err     error
}

// NewReloadSet makes an empty ReloadSet.
func NewReloadSet() *ReloadSet {
	return &ReloadSet{m: map[string]*reloadState{}, Gather: 50 * time.Millisecond, MaxDelay: 2 * time.Second}
}

func (r *ReloadSet) state(key string) *reloadState {
	st := r.m[key]
	if st == nil {
		st = &reloadState{}
		r.m[key] = st
	}
	return st
}

// Running counts a task as running until done is called: reloads wait
// briefly (Gather) for the running tasks that have not asked yet.
func (r *ReloadSet) Running() (done func()) {
	if r == nil {
		return func() {}
	}
	r.mu.Lock()
	r.runs++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.runs--
			r.mu.Unlock()
		})
	}
}

// Begin marks a change to key's server in progress until end is called
// (after the change is written and tested, before its reload): a reload
// of key waits for it, up to MaxDelay.
func (r *ReloadSet) Begin(key string) (end func()) {
	if r == nil {
		return func() {}
	}
	r.mu.Lock()
	r.state(key).writers++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.state(key).writers--
			r.mu.Unlock()
		})
	}
}

// alone reports whether every running task waits for a reload. The
// caller holds r.mu.
func (r *ReloadSet) alone() bool { return r.runs <= r.waiting }

// Reload asks for fn to run for key and waits for the result of the reload
// that covers this request.
func (r *ReloadSet) Reload(ctx context.Context, key string, fn func(context.Context) error) error {
	_, err := r.ReloadAt(ctx, key, fn)
	return err
}

// ReloadAt is Reload that also says when the reload that covered the
// request started.
func (r *ReloadSet) ReloadAt(ctx context.Context, key string, fn func(context.Context) error) (started time.Time, err error) {
	if r == nil {
		started = time.Now()
		return started, fn(ctx)
	}
	ch := make(chan reloadResult, 1)
	r.mu.Lock()
	st := r.state(key)
	if len(st.pending) == 0 {
		st.first = time.Now()
	}
	st.pending = append(st.pending, reloadRequest{ch: ch, fn: fn, ctx: ctx})
	r.waiting++
	shared := st.busy || st.writers > 0 || !r.alone()
	if !st.running {
		st.running = true
		go r.loop(st)
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiting--
		r.mu.Unlock()
	}()
	if shared {
		defer sharedWait(ctx)()
	}
	select {
	case res := <-ch:
		return res.started, res.err
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// loop runs the reloads of one server while there are requests.
func (r *ReloadSet) loop(st *reloadState) {
	for {
		r.mu.Lock()
		if len(st.pending) == 0 {
			st.running = false
			r.mu.Unlock()
			return
		}
		age := time.Since(st.first)
		if ready := st.writers == 0 && (r.alone() || age >= r.Gather); !ready && age < r.MaxDelay {
			r.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			continue
		}
		batch := st.pending
		st.pending, st.busy = nil, true
		r.mu.Unlock()
		// The reload runs as a requester that still waits for it: one
		// that gave up may have returned its result already, and its
		// log must not be written to any more. When none waits, none
		// reloads: each has reported its own end.
		var fn func(context.Context) error
		for _, q := range batch {
			if q.ctx.Err() == nil {
				fn = q.fn
				break
			}
		}
		started := time.Now()
		err := context.Canceled
		if fn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err = fn(ctx)
			cancel()
		}
		r.mu.Lock()
		st.busy = false
		if len(st.pending) > 0 {
			// The requests that came meanwhile count from now: they wait
			// for changes in progress, not for the reload just done.
			st.first = time.Now()
		}
		r.mu.Unlock()
		for _, q := range batch {
			q.ch <- reloadResult{started: started, err: err}
		}
	}
}

type sharedWaitKey struct{}

// WithSharedWait returns a context whose task calls f when it starts to
// wait for work it shares with other tasks (a reload that waits for their
// changes), and the resume f returns when the wait is over: a dispatcher
// can give its worker to the next task meanwhile.
func WithSharedWait(ctx context.Context, f func() (resume func())) context.Context {
	return context.WithValue(ctx, sharedWaitKey{}, f)
}

func sharedWait(ctx context.Context) (resume func()) {
	if f, ok := ctx.Value(sharedWaitKey{}).(func() func()); ok {
		return f()
	}
	return func() {}
}

// ReportReload records the outcome of a reload of server's web service
// that started at started.
func (e *Env) ReportReload(server string, started time.Time, err error) {
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	if e.reloads == nil {
		e.reloads = map[string]provision.ReloadReport{}
	}
	rep, ms := e.reloads[server], started.UnixMilli()
	if err != nil {
		rep.Failed = max(rep.Failed, ms)
	} else {
		rep.Done = max(rep.Done, ms)
	}
	e.reloads[server] = rep
}
