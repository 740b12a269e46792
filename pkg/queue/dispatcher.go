// Package queue runs aegir's tasks: it claims queued tasks atomically in
// the SQLite state, runs them with N workers (never two on one target at
// once, in creation order per target), keeps a lease on each while it runs,
// rescues the tasks of a dispatcher that died, tells the administrator
// about failures, and feeds the scheduled queues (cron, backup, stats, health, cert).
//
// The rules, in short:
//   - A task is claimable when no task of its target (target_kind,
//     target_id) is processing and it is the oldest queued task of that
//     target. One UPDATE ... RETURNING claims a batch.
//   - A running task's lease (lease_until) is renewed every Lease/3. A task
//     left processing whose lease ran out, or whose worker
//     ("pid@master/machine") was of this master on this machine and is
//     gone, is marked error "dispatcher died while running this task" by
//     the next pass, and Dispatcher.Cleanup runs.
//   - Log lines reach task_log within a fraction of a second (batched).
package queue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// Defaults of the Dispatcher's settings.
const (
	DefaultLease    = 2 * time.Minute
	DefaultPoll     = time.Second
	DefaultInterval = time.Minute
)

// How log lines are batched into task_log: at least this often, and at once
// when this many are waiting.
const (
	logFlushEvery = 200 * time.Millisecond
	logFlushLines = 100
	// logMaxPending bounds the lines kept in memory while the database
	// refuses writes; older ones are dropped beyond it.
	logMaxPending = 10000
)

// ErrorCodeDied is the error code of a task whose dispatcher died.
const ErrorCodeDied = "dispatcher_died"

// MsgDied is the error of a task whose dispatcher died.
const MsgDied = "dispatcher died while running this task"

// Handler carries out one task. It logs through log (lines reach the task's
// log as they come) and says how the task ended. ctx is cancelled when the
// task's lease is lost (another dispatcher declared this one dead) and, for
// RunTask, when the caller's context is.
type Handler func(ctx context.Context, t *entities.Task, log func(level, msg string, fix ...entities.Action)) Outcome

// Outcome is how a task ended.
type Outcome struct {
	Status string // success, warning or error; empty: success unless Error is set
	Error  string
	Hint   string // what the administrator should do
	Fix    []entities.Action
	Code   string // a stable error code
	Result any    // saved as the task's JSON result
}

// Dispatcher runs queued tasks. Store and Handler are required; the zero
// value of every other field is a sensible default.
type Dispatcher struct {
	Store   *store.Store
	Handler Handler
	// Workers is how many tasks run at once (default 1).
	Workers int
	// Lease is how long a running task is held without a renewal; it is
	// renewed every Lease/3 (default DefaultLease).
	Lease time.Duration
	// Poll is how often Serve looks for new tasks and due queues (default
	// DefaultPoll).
	Poll time.Duration
	// Cleanup runs after a task of a dead dispatcher was marked error: the
	// per-type clean-up (undo a half-done install or move). Its error is
	// recorded in the task's log. finished says the task's work turned out
	// to be done (only its own clean-up was left, which Cleanup finished
	// and saved): the task then ends in warning, and nobody is notified.
	Cleanup func(ctx context.Context, t *entities.Task) (finished bool, err error)
	// Notify is told about every task that ends in error (nil: nobody).
	Notify Notifier
	// Echo receives every log line of the tasks this dispatcher runs, as
	// it is logged (the CLI prints them for a task run in the foreground).
	Echo func(t *entities.Task, l entities.LogLine)
	// Logf receives the dispatcher's own messages (a task done, a database
	// error); nil discards them.
	Logf func(format string, args ...any)

	// Interval is how often the dispatch runs, from cron or as Serve; the
	// scheduled queues size their batches by it (default DefaultInterval).
	Interval time.Duration
	// Queues are the scheduled queues; nil: none (see DefaultQueues).
	Queues []QueueConfig

	// Worker names this dispatcher in tasks.worker (default WorkerID()).
	Worker string
	// Warnf is told of what the user should fix (a master with this one's
	// name on another machine); nil: Logf.
	Warnf func(format string, args ...any)
	// BackupDir is this master's backups directory: the backup.delete
	// the backup queue queues for an archive another master wrote that
	// is not in it is tied to that master (TiedElsewhere).
	BackupDir string

	// HTTPClient sends the webhook deliveries (nil: one with
	// DeliveryTimeout that follows no redirect).
	HTTPClient *http.Client
	// CertExpiringDays: cert.expiring is told of certificates with fewer
	// days left (0: DefaultCertExpiringDays; < 0: never).
	CertExpiringDays int
	// KeepDeliveries: webhook deliveries that ended (delivered or
	// failed) longer ago than this are deleted by Watch (0:
	// DefaultKeepDeliveries; < 0: never).
	KeepDeliveries time.Duration
	// KeepTasks: finished tasks that ended longer ago than this are
	// deleted with their log lines by Prune, but for those something
	// still needs (Store.Prune) (0: DefaultKeepTasks; < 0: never).
	KeepTasks time.Duration
	// KeepAudit: audit log entries older than this are deleted by Prune
	// (0: DefaultKeepAudit; < 0: never).
	KeepAudit time.Duration

	lastWatch time.Time // Serve's last Watch

	mu        sync.Mutex
	namesakes map[string]bool // the machines warnNamesake told of
}

// Summary says what one pass did.
type Summary struct {
	Rescued   []int64        `json:"rescued"`   // tasks of dead dispatchers marked error
	Scheduled map[string]int `json:"scheduled"` // tasks created by each scheduled queue
	Ran       int            `json:"ran"`       // tasks run
	Failed    int            `json:"failed"`    // of which ended in error
	Delivered int            `json:"delivered"` // webhook deliveries sent
	// Pruned is what the state's retention deleted (nil: no prune was
	// due in this pass).
	Pruned *store.Pruned `json:"pruned,omitempty"`
}

func (d *Dispatcher) now() time.Time {
	if d.Store.Now != nil {
		return d.Store.Now()
	}
	return time.Now()
}

func (d *Dispatcher) workers() int { return max(d.Workers, 1) }

func (d *Dispatcher) lease() time.Duration {
	if d.Lease <= 0 {
		return DefaultLease
	}
	return d.Lease
}

func (d *Dispatcher) poll() time.Duration {
	if d.Poll <= 0 {
		return DefaultPoll
	}
	return d.Poll
}

func (d *Dispatcher) interval() time.Duration {
	if d.Interval <= 0 {
		return DefaultInterval
	}
	return d.Interval
}

func (d *Dispatcher) worker() string {
	if d.Worker == "" {
		d.Worker = WorkerID()
	}
	return d.Worker
}

func (d *Dispatcher) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// RunOnce is one dispatch: it rescues the tasks of dead dispatchers, lets
// the scheduled queues that are due create their tasks, then claims and
// runs queued tasks with Workers in parallel until none is claimable.
// (The queues go before the run so that the tasks they create run in the
// same pass; tasks queued earlier still go first, in id order.) When ctx
// is cancelled it claims nothing more and waits for the running tasks,
// which are not cancelled.
func (d *Dispatcher) RunOnce(ctx context.Context) (*Summary, error) {
	sum := &Summary{Rescued: []int64{}, Scheduled: map[string]int{}}
	var errs []error
	rescued, err := d.Rescue(ctx)
	for _, t := range rescued {
		sum.Rescued = append(sum.Rescued, t.ID)
	}
	errs = append(errs, err)
	sched, err := d.Schedule(ctx)
	sum.Scheduled = sched
	errs = append(errs, err)
	errs = append(errs, d.Watch(ctx))

	// Webhook deliveries go beside the tasks, then once more at the end
	// for the events of this pass; so does the prune, in short
	// transactions between which the claims go on.
	var delivered int
	var deliverErr, pruneErr error
	deliveries, pruned := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(deliveries)
		delivered, deliverErr = d.Deliver(ctx)
	}()
	go func() {
		defer close(pruned)
		sum.Pruned, pruneErr = d.Prune(ctx)
	}()

	p := d.newPool(ctx, sum)
	for ctx.Err() == nil {
		if _, err := p.fill(ctx); err != nil {
			errs = append(errs, err)
			break
		}
		if p.running == 0 {
			break
		}
		select {
		case e := <-p.done:
			p.finished(e)
		case <-ctx.Done():
		}
	}
	p.drain()
	if ctx.Err() == nil && sum.Ran > 0 { // a pass that ran nothing found no new health
		if err := d.watchHealth(ctx); err != nil { // the health this pass's tasks found
			errs = append(errs, fmt.Errorf("queue: webhook events: %w", err))
		}
	}
	<-deliveries
	more, err := d.Deliver(ctx)
	sum.Delivered = delivered + more
	<-pruned
	errs = append(errs, deliverErr, err, pruneErr)
	return sum, errors.Join(errs...)
}

// Serve runs RunOnce's work as a loop, for a daemon (`aegir hosting
// queued`): every Poll it rescues, schedules and claims, and it claims again
// as soon as a task ends. When ctx is cancelled (SIGTERM) it stops claiming,
// waits for the running tasks to finish, and returns nil. When the state
// is marked moved (state migrate) it does the same and returns the
// *store.MovedError.
func (d *Dispatcher) Serve(ctx context.Context) error {
	p := d.newPool(ctx, &Summary{})
	tick := time.NewTicker(d.poll())
	defer tick.Stop()
	housekeeping := true
	var background backgroundWork
	var sending, pruning atomic.Bool
	defer background.Wait()
	for {
		// A state that state migrate moved away while this daemon ran:
		// what it would claim (or schedule, or rescue) here is no longer
		// kept up to date. Checked before each claim.
		if m, err := d.Store.Moved(ctx); err == nil && m != nil {
			d.logf("queue: %v; claiming nothing more here", m)
			p.drain()
			return m
		}
		if housekeeping && ctx.Err() == nil {
			if _, err := d.Rescue(ctx); err != nil && ctx.Err() == nil {
				d.logf("queue: looking for tasks of dead dispatchers: %v", err)
			}
			if _, err := d.Schedule(ctx); err != nil && ctx.Err() == nil {
				d.logf("queue: scheduled queues: %v", err)
			}
			if now := d.now(); now.Sub(d.lastWatch) >= d.interval() {
				d.lastWatch = now
				if err := d.Watch(ctx); err != nil && ctx.Err() == nil {
					d.logf("%v", err)
				}
			}
			// Webhook deliveries on their own goroutine, one pass at a time:
			// a receiver that is down holds no task back. The prune too: a
			// big one holds no claim back.
			background.once(&sending, func() {
				if _, err := d.Deliver(ctx); err != nil && ctx.Err() == nil {
					d.logf("queue: webhook deliveries: %v", err)
				}
			})
			background.once(&pruning, func() {
				if _, err := d.Prune(ctx); err != nil && ctx.Err() == nil {
					d.logf("%v", err)
				}
			})
		}
		if _, err := p.fill(ctx); err != nil && ctx.Err() == nil {
			d.logf("queue: %v", err)
		}
		housekeeping = false
		select {
		case <-ctx.Done():
			if p.running > 0 {
				d.logf("queue: stopping: waiting for %d running task(s) to finish", p.running)
			}
			p.drain()
			return nil
		case e := <-p.done:
			p.finished(e)
		case <-tick.C:
			housekeeping = true
		}
	}
}

// backgroundWork is Serve's work beside the tasks.
type backgroundWork struct{ sync.WaitGroup }

// once runs f on a goroutine of its own unless the last f started with
// busy still runs.
func (w *backgroundWork) once(busy *atomic.Bool, f func()) {
	if !busy.CompareAndSwap(false, true) {
		return
	}
	w.Add(1)
	go func() {
		defer w.Done()
		defer busy.Store(false)
		f()
	}()
}

// pool runs claimed tasks on up to Workers goroutines. A task that waits
// for work it shares with tasks still to come (ReleaseWorker: a web server
// reload) gives its worker back meanwhile, and takes one again, before
// any new task, when the wait is over.
type pool struct {
	d       *Dispatcher
	hctx    context.Context // the tasks' context: not cancelled with the pass
	running int             // tasks started and not ended
	slots   chan struct{}   // one token per worker in use
	done    chan taskEvent
	sum     *Summary
}

// taskEvent is a task that gave its worker back (released) or ended.
type taskEvent struct {
	released bool
	status   string // the final status of a task that ended
}

func (d *Dispatcher) newPool(ctx context.Context, sum *Summary) *pool {
	return &pool{d: d, hctx: context.WithoutCancel(ctx), slots: make(chan struct{}, d.workers()),
		done: make(chan taskEvent, d.workers()), sum: sum}
}

// fill claims tasks for the idle workers and starts them.
func (p *pool) fill(ctx context.Context) (int, error) {
	free := 0
	for free < p.d.workers() && ctx.Err() == nil {
		select {
		case p.slots <- struct{}{}:
			free++
			continue
		default:
		}
		break
	}
	if free == 0 {
		return 0, nil
	}
	ts, err := p.d.Store.ClaimTasks(ctx, p.d.claims(), free)
	if err != nil && ctx.Err() != nil {
		ts, err = nil, nil
	}
	if err != nil {
		err = fmt.Errorf("queue: %w", err)
	}
	for range free - len(ts) {
		<-p.slots
	}
	for _, t := range ts {
		p.running++
		go p.run(t)
	}
	return len(ts), err
}

// run executes t, which holds a worker, and reports its releases and its
// end.
func (p *pool) run(t *entities.Task) {
	var mu sync.Mutex
	holds := true
	ctx := context.WithValue(p.hctx, releaseKey{}, func() (resume func()) {
		mu.Lock()
		defer mu.Unlock()
		if !holds {
			return func() {}
		}
		holds = false
		<-p.slots
		p.done <- taskEvent{released: true}
		return func() {
			p.slots <- struct{}{}
			mu.Lock()
			holds = true
			mu.Unlock()
		}
	})
	status := p.d.execute(ctx, t)
	mu.Lock()
	if holds {
		<-p.slots
	}
	holds = false
	mu.Unlock()
	p.done <- taskEvent{status: status}
}

// finished takes in an event: a worker given back, or a task that ended.
func (p *pool) finished(e taskEvent) {
	if e.released {
		return
	}
	p.running--
	p.sum.Ran++
	if e.status == entities.TaskError {
		p.sum.Failed++
	}
}

func (p *pool) drain() {
	for p.running > 0 {
		p.finished(<-p.done)
	}
}

type releaseKey struct{}

// ReleaseWorker gives the worker of the task that runs with ctx to the
// next task while the task waits for work it shares with tasks still to
// come (a web server reload that waits for their changes). resume takes a
// worker again, waiting for one, before any new task gets it; call it when
// the wait is over. Outside a dispatch pass, or while the task holds no
// worker, it does nothing.
func ReleaseWorker(ctx context.Context) (resume func()) {
	if f, ok := ctx.Value(releaseKey{}).(func() func()); ok {
		return f()
	}
	return func() {}
}

// RunTask claims the one task id and runs it now, in the calling goroutine
// (for commands that run their task in the foreground). Cancelling ctx
// cancels the handler's context. It returns the task as it ended. If
// another task holds the target, the task stays queued and the error is a
// *BusyError (errors.Is(err, ErrBusy)); a task that is not queued is a
// *store.ConflictError, an unknown one a *store.NotFoundError.
func (d *Dispatcher) RunTask(ctx context.Context, id int64) (*entities.Task, error) {
	// The task holds no worker of a pass, even when a task of a pass runs
	// it (a platform migrate its site moves): it has none to give back.
	ctx = context.WithValue(ctx, releaseKey{}, nil)
	rescued := false
	for try := 0; try < 3; try++ {
		t, err := d.Store.ClaimTask(ctx, d.claims(), id)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		if t != nil {
			d.execute(ctx, t)
			return d.Store.GetTask(context.WithoutCancel(ctx), id)
		}
		cur, err := d.Store.GetTask(ctx, id)
		if err != nil {
			return nil, err
		}
		if cur.Status != entities.TaskQueued {
			return cur, &store.ConflictError{Field: "id", Msg: fmt.Sprintf("task %d is %s, not queued: it cannot run again", id, cur.Status),
				Hint: "see it, and queue it again", Fix: []entities.Action{entities.Do("task.show", fmt.Sprint(id)), entities.Do("task.retry", fmt.Sprint(id))}}
		}
		if cur.Master != "" && cur.Master != Master() {
			return cur, &TiedError{Task: cur}
		}
		h, err := d.Store.TaskHolder(ctx, cur)
		if err != nil {
			return cur, err
		}
		if h == nil {
			continue // it became claimable meanwhile
		}
		if h.Status == entities.TaskProcessing && !rescued {
			// The holder may belong to a dead dispatcher.
			rescued = true
			if r, err := d.Rescue(ctx); err == nil && len(r) > 0 {
				continue
			}
		}
		return cur, newBusyError(cur, h)
	}
	cur, err := d.Store.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	return cur, fmt.Errorf("task %d could not be claimed; try again", id)
}

// execute runs a claimed task to its end and returns its final status.
func (d *Dispatcher) execute(ctx context.Context, t *entities.Task) string {
	bg := context.WithoutCancel(ctx)
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &taskWriter{d: d, task: t, kick: make(chan struct{}, 1)}
	var lost atomic.Bool
	stop := make(chan struct{})
	tended := make(chan struct{})
	go func() {
		defer close(tended)
		d.tend(bg, t, w, stop, func() { lost.Store(true); cancel() })
	}()

	start := time.Now()
	w.log(entities.LevelDebug, fmt.Sprintf("claimed by worker %s (attempt %d)", t.Worker, t.Attempt))
	out := normalize(d.call(hctx, t, w.log))
	close(stop)
	<-tended
	w.flush(bg)

	if lost.Load() {
		d.logf("queue: task %d (%s %s): lost its lease while running; another dispatcher marked it failed", t.ID, t.Type, t.Target)
		return entities.TaskError
	}
	ok, err := d.finish(bg, t, out)
	if err != nil {
		d.logf("queue: task %d (%s %s): recording its end (%s): %v", t.ID, t.Type, t.Target, out.Status, err)
		return out.Status
	}
	if !ok {
		d.logf("queue: task %d (%s %s): another dispatcher marked it failed meanwhile", t.ID, t.Type, t.Target)
		return entities.TaskError
	}
	d.logf("queue: task %d (%s %s): %s in %s", t.ID, t.Type, t.Target, out.Status, time.Since(start).Round(time.Millisecond))
	switch out.Status {
	case entities.TaskSuccess, entities.TaskWarning:
		if err := d.recordLastRun(bg, t); err != nil {
			d.logf("queue: task %d: recording the site's last run: %v", t.ID, err)
		}
	case entities.TaskError:
		d.notifyFailure(bg, t.ID, out.Code)
	}
	return out.Status
}

// call runs the handler; a panic becomes an error outcome.
func (d *Dispatcher) call(ctx context.Context, t *entities.Task, log func(level, msg string, fix ...entities.Action)) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			log(entities.LevelError, fmt.Sprintf("internal error: %v\n%s", r, debug.Stack()))
			out = Outcome{Status: entities.TaskError, Code: "internal", Error: fmt.Sprintf("internal error: %v", r),
				Hint: "this is a bug in aegir: please report it with the task's log", Fix: []entities.Action{entities.Do("task.log", fmt.Sprint(t.ID))}}
		}
	}()
	if d.Handler == nil {
		return Outcome{Status: entities.TaskError, Code: "internal", Error: "the dispatcher has no handler for tasks"}
	}
	return d.Handler(ctx, t, log)
}

func normalize(o Outcome) Outcome {
	switch o.Status {
	case entities.TaskSuccess, entities.TaskWarning, entities.TaskError:
	case "":
		o.Status = entities.TaskSuccess
		if o.Error != "" {
			o.Status = entities.TaskError
		}
	default:
		o.Error = fmt.Sprintf("the task ended with an unknown status %q; %s", o.Status, o.Error)
		o.Status = entities.TaskError
	}
	if o.Status == entities.TaskError && o.Error == "" {
		o.Error = "the task failed (its log says why)"
	}
	return o
}

// tend renews t's lease every Lease/3 and flushes its log lines until stop
// closes. When a renewal finds the task no longer ours, it calls lost once.
func (d *Dispatcher) tend(ctx context.Context, t *entities.Task, w *taskWriter, stop <-chan struct{}, lost func()) {
	flush := time.NewTicker(logFlushEvery)
	defer flush.Stop()
	beat := time.NewTicker(max(d.lease()/3, time.Millisecond))
	defer beat.Stop()
	beats := beat.C
	for {
		select {
		case <-stop:
			return
		case <-w.kick:
			w.flush(ctx)
		case <-flush.C:
			w.flush(ctx)
		case <-beats:
			ours, err := d.Store.RenewLease(ctx, t.ID, t.Worker, d.now().Add(d.lease()))
			if err != nil {
				d.logf("queue: task %d: renewing its lease: %v", t.ID, err)
				continue
			}
			if !ours {
				beats = nil
				lost()
			}
		}
	}
}

// finish records the task's end, if the task is still ours.
func (d *Dispatcher) finish(ctx context.Context, t *entities.Task, o Outcome) (bool, error) {
	return d.Store.FinishTask(ctx, t.ID, t.Worker, store.TaskEnd{Status: o.Status, Error: o.Error, Hint: o.Hint, Fix: o.Fix, Code: o.Code,
		Result: o.Result, Finished: d.now()})
}

// taskWriter batches a task's log lines into task_log.
type taskWriter struct {
	d       *Dispatcher
	task    *entities.Task
	kick    chan struct{}
	mu      sync.Mutex
	pending []entities.LogLine
	flushMu sync.Mutex // one flush at a time keeps the lines in order
}

func (w *taskWriter) log(level, msg string, fix ...entities.Action) {
	l := entities.LogLine{Time: w.d.now(), Level: level, Message: msg, Fix: fix}
	w.mu.Lock()
	w.pending = append(w.pending, l)
	if len(w.pending) > logMaxPending {
		w.pending = w.pending[len(w.pending)-logMaxPending:]
	}
	n := len(w.pending)
	if w.d.Echo != nil {
		w.d.Echo(w.task, l)
	}
	w.mu.Unlock()
	if n >= logFlushLines {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

func (w *taskWriter) flush(ctx context.Context) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	lines := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	if err := w.d.Store.AppendLog(ctx, w.task.ID, lines...); err != nil {
		w.d.logf("queue: task %d: writing %d log line(s): %v (will retry)", w.task.ID, len(lines), err)
		w.mu.Lock()
		w.pending = append(lines, w.pending...)
		w.mu.Unlock()
	}
}
