package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// openPairClock is openPair, both handles on one clock the test moves.
func openPairClock(t *testing.T) (a, b *Store, now *time.Time) {
	a, b = openPair(t)
	at := time.Now()
	clock := func() time.Time { return at }
	a.Now, b.Now = clock, clock
	return a, b, &at
}

// TestMoveLocks: a move lock is one holder's; another master gets the
// holder back until the holder's lease has run out (or dead says it is
// gone) and then takes it over; a renewal keeps it, a release lets it go,
// and a hold taken over is no longer renewed. Of 8 takers on two handles at
// once exactly one gets a free lock.
func TestMoveLocks(t *testing.T) {
	ctx := context.Background()
	a, b, now := openPairClock(t)
	if h, ok, err := a.TakeMoveLock(ctx, "site-a.test", "m1", 100, "t1", time.Minute, nil); err != nil || !ok || h != nil {
		t.Fatalf("free lock: %v %v %v", h, ok, err)
	}
	h, ok, err := b.TakeMoveLock(ctx, "site-a.test", "m2", 200, "t2", time.Minute, func(*MoveLock) bool { return false })
	if err != nil || ok || h == nil || h.Host != "m1" || h.PID != 100 {
		t.Fatalf("held lock: %+v %v %v, want m1's", h, ok, err)
	}
	// Renewed: still m1's a minute and a half on.
	*now = now.Add(50 * time.Second)
	if mine, err := a.RenewMoveLock(ctx, "site-a.test", "t1", time.Minute); err != nil || !mine {
		t.Fatalf("renew: %v %v", mine, err)
	}
	*now = now.Add(40 * time.Second)
	if _, ok, _ := b.TakeMoveLock(ctx, "site-a.test", "m2", 200, "t2", time.Minute, nil); ok {
		t.Fatal("a renewed lease was taken over")
	}
	// A holder dead says is gone is taken over at once.
	if h, ok, err := b.TakeMoveLock(ctx, "site-a.test", "m2", 200, "t2", time.Minute, func(h *MoveLock) bool { return h.PID == 100 }); err != nil || !ok || h.Token != "t1" {
		t.Fatalf("dead holder: %+v %v %v, want taken over from t1", h, ok, err)
	}
	if mine, _ := a.RenewMoveLock(ctx, "site-a.test", "t1", time.Minute); mine {
		t.Fatal("the hold taken over was renewed")
	}
	_ = a.ReleaseMoveLock(ctx, "site-a.test", "t1") // not its own any more: nothing
	// The lease runs out: m1 takes it back.
	*now = now.Add(61 * time.Second)
	if h, ok, err := a.TakeMoveLock(ctx, "site-a.test", "m1", 100, "t3", time.Minute, nil); err != nil || !ok || h.Host != "m2" {
		t.Fatalf("expired lease: %+v %v %v, want taken over from m2", h, ok, err)
	}
	if err := a.ReleaseMoveLock(ctx, "site-a.test", "t3"); err != nil {
		t.Fatal(err)
	}
	if l, err := a.MoveLocks(ctx); err != nil || len(l) != 0 {
		t.Fatalf("locks after the release: %v %v", l, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, ok, err := s.TakeMoveLock(ctx, "task-9", "m", i, "tok"+itoa(int64(i)), time.Minute, nil)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got != 1 {
		t.Fatalf("%d takers got one free lock, want 1", got)
	}
}

// TestMoveJournals: a journal written whole, read back on another handle,
// rewritten, removed.
func TestMoveJournals(t *testing.T) {
	ctx := context.Background()
	a, b := openPair(t)
	if _, err := b.MoveJournal(ctx, 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no journal: %v", err)
	}
	for _, body := range []string{`{"kind":"migrate","ops":[]}`, `{"kind":"migrate","ops":[{"op":"drop_db","db":"x"}]}`} {
		if err := a.SaveMoveJournal(ctx, 5, []byte(body), "m1"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.MoveJournal(ctx, 5); err != nil || string(got) != body {
			t.Fatalf("read %q %v, want %q", got, err, body)
		}
	}
	if err := a.DeleteMoveJournal(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := b.MoveJournal(ctx, 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the removal: %v", err)
	}
}

// TestHeldMoveJournal: a journal written and removed under a hold of its
// task's lock is written only while the hold has the lock; once another
// master took the lock over, the old holder writes and removes nothing.
func TestHeldMoveJournal(t *testing.T) {
	ctx := context.Background()
	a, b, now := openPairClock(t)
	if _, ok, err := a.TakeMoveLock(ctx, "task-5", "m1", 100, "t1", time.Minute, nil); err != nil || !ok {
		t.Fatalf("taking the lock: %v %v", ok, err)
	}
	for _, body := range []string{`{"ops":[1]}`, `{"ops":[1,2]}`} {
		if saved, err := a.SaveHeldMoveJournal(ctx, 5, []byte(body), "m1", "task-5", "t1"); err != nil || !saved {
			t.Fatalf("saving under the hold: %v %v", saved, err)
		}
	}
	// m1 stops renewing; m2 takes the lock over once the lease ran out.
	*now = now.Add(2 * time.Minute)
	if _, ok, err := b.TakeMoveLock(ctx, "task-5", "m2", 200, "t2", time.Minute, nil); err != nil || !ok {
		t.Fatalf("taking the lock over: %v %v", ok, err)
	}
	if saved, err := a.SaveHeldMoveJournal(ctx, 5, []byte(`{"ops":[1,2,3]}`), "m1", "task-5", "t1"); err != nil || saved {
		t.Fatalf("saving under a lost hold: %v %v, want nothing saved", saved, err)
	}
	if err := a.DeleteHeldMoveJournal(ctx, 5, "task-5", "t1"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.MoveJournal(ctx, 5); err != nil || string(got) != `{"ops":[1,2]}` {
		t.Fatalf("the journal after the lost holder's writes: %q %v, want its last write under the hold", got, err)
	}
	if err := b.DeleteHeldMoveJournal(ctx, 5, "task-5", "t2"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.MoveJournal(ctx, 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the new holder's removal: %v", err)
	}
}
