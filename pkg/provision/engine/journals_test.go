package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A hold whose renewal finds the lock another's is lost: Check says so and
// Lost closes. A renewal that fails keeps the hold until the lease has
// run out since the last one that kept it, and loses it then. A hold that
// cannot be lost (renew nil) never is. Release lets the lock go once.
func TestHoldLost(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	mine, fail := true, error(nil)
	renew := func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return mine, fail
	}
	set := func(m bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		mine, fail = m, err
	}
	released := 0
	h := NewHold(time.Hour, renew, func() { released++ })
	if err := h.Check(ctx); err != nil {
		t.Fatalf("a held lock: %v", err)
	}
	set(false, nil)
	if err := h.Check(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("a lock taken over: %v, want ErrLockLost", err)
	}
	<-h.Lost()
	set(true, nil)
	if err := h.Check(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("a lost hold came back: %v", err)
	}
	h.Release()
	h.Release()
	if released != 1 {
		t.Fatalf("released %d times, want once", released)
	}

	set(false, errors.New("the state cannot be reached"))
	h = NewHold(time.Hour, renew, func() {})
	if err := h.Check(ctx); err != nil {
		t.Fatalf("a renewal that failed within the lease: %v, want the hold kept", err)
	}
	h.Release()
	lease := 10 * time.Millisecond
	h = NewHold(lease, renew, func() {})
	time.Sleep(lease)
	if err := h.Check(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("renewals failed for longer than the lease: %v, want ErrLockLost", err)
	}
	h.Release()

	f := NewHold(0, nil, func() {})
	if err := f.Check(ctx); err != nil {
		t.Fatalf("a hold that cannot be lost: %v", err)
	}
	select {
	case <-f.Lost():
		t.Fatal("a hold that cannot be lost was lost")
	default:
	}
	f.Release()
}
