package engine

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Journals keeps the journals of moves (their undo steps) and the locks a
// move holds on its task and its site, where every master sharing the
// state reads them, so that one master can undo a move another master
// left half-done when it died. The front end gives one over the state;
// without one, the back end keeps them as files in the aegir home.
type Journals interface {
	// Lock takes lock name ("task-ID", "site-DOMAIN") for this process,
	// without waiting, and keeps it until the hold is released or the
	// process dies, or until it is lost (Hold.Lost): ErrLockHeld
	// (wrapped, with the holder) when another live holder has it. A
	// holder that died is taken over once its lease has run out; with
	// wait, Lock waits for the lease of a holder on another host to run
	// out (once) before it answers.
	Lock(ctx context.Context, name string, wait bool) (*Hold, error)
	// Save writes task id's journal whole: ErrLockLost (wrapped) when
	// this process held task id's lock and lost it.
	Save(ctx context.Context, id int64, body []byte) error
	// Load reads task id's journal: ErrNoJournal when there is none.
	Load(ctx context.Context, id int64) ([]byte, error)
	// Remove deletes task id's journal; nothing when this process held
	// task id's lock and lost it (the journal is the new holder's).
	Remove(ctx context.Context, id int64) error
	// Where names the place of task id's journal in messages.
	Where(id int64) string
}

// ErrLockHeld is a Journals lock another live holder has.
var ErrLockHeld = errors.New("the lock is held by another process")

// ErrLockLost is the answer of a Hold (and of a journal's Save or Remove)
// once another holder took the lock over: this holder's lease ran out
// unrenewed (its process was stopped, or cut off from the state, for
// longer than the lease), another master judged it dead and took the
// lock. The new holder plays the move back; this one touches nothing
// more.
var ErrLockLost = errors.New("the lock was taken over by another holder")

// ErrNoJournal is Journals.Load's answer for a task with no journal.
var ErrNoJournal = errors.New("no journal")

// Hold is a Journals lock held. One over a lease (NewHold) renews it every
// quarter of the lease, and is lost when a renewal finds the lock another
// holder's, or when renewals failed for longer than the lease (another may
// have taken it); a lock that cannot be lost (a file's) has no renew.
type Hold struct {
	renew   func(context.Context) (bool, error)
	release func()
	lease   time.Duration
	lost    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	renewed time.Time // the last renewal that kept it
	isLost  bool
}

// NewHold is the hold of a lock taken now, with lease: renew moves the
// lease on (false: the lock is another's), release lets it go. With renew
// nil it is a lock that cannot be lost.
func NewHold(lease time.Duration, renew func(context.Context) (mine bool, err error), release func()) *Hold {
	h := &Hold{renew: renew, release: release, lease: lease, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}), renewed: time.Now()}
	if renew == nil {
		close(h.done)
		return h
	}
	go func() {
		defer close(h.done)
		t := time.NewTicker(max(lease/4, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if h.Check(context.Background()) != nil {
					return
				}
			}
		}
	}()
	return h
}

// Lost closes once the hold is lost (never, for a lock that cannot be).
func (h *Hold) Lost() <-chan struct{} { return h.lost }

// Check renews the hold now: ErrLockLost once it is lost. A renewal that
// fails keeps the hold until its lease has run out.
func (h *Hold) Check(ctx context.Context) error {
	if h.renew == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isLost {
		return ErrLockLost
	}
	start := time.Now()
	mine, err := h.renew(ctx)
	switch {
	case err == nil && mine:
		h.renewed = start
		return nil
	case err != nil && time.Since(h.renewed) < h.lease:
		return nil
	}
	h.isLost = true
	close(h.lost)
	return ErrLockLost
}

// Release stops the renewals and lets the lock go (a lost one stays the
// new holder's).
func (h *Hold) Release() {
	select {
	case <-h.stop:
		return // released already
	default:
	}
	close(h.stop)
	<-h.done
	h.release()
}
