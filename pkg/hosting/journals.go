package hosting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// StateJournals keeps moves' journals and locks in the state
// (engine.Journals), so that any master sharing it plays back the
// half-done move of a master that died: a lock's holder is this master
// (queue.Master) and process, and its lease, renewed while it is held, is
// Lease (the tasks' lease). A dead holder's lock is taken over once its
// lease has run out, or at once when it was a process of this master.
type StateJournals struct {
	Store *store.Store
	Lease time.Duration
	// Logf, if set, is told of a renewal that failed.
	Logf func(format string, args ...any)
}

var _ engine.Journals = (*StateJournals)(nil)

func (j *StateJournals) lease() time.Duration {
	if j.Lease <= 0 {
		return 2 * time.Minute
	}
	return j.Lease
}

// Lock takes lock name (engine.Journals).
func (j *StateJournals) Lock(ctx context.Context, name string, wait bool) (func(), error) {
	me := queue.Master()
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	dead := func(h *store.MoveLock) bool {
		return h.Host == me && h.PID != os.Getpid() && !queue.ProcessAlive(h.PID)
	}
	held, ok, err := j.Store.TakeMoveLock(ctx, name, me, os.Getpid(), token, j.lease(), dead)
	if err == nil && !ok && wait && held != nil && held.Host != me {
		// A master that died stopped renewing: its lease runs out within
		// one lease of its last renewal.
		d := time.Until(held.LeaseUntil) + time.Second
		if d > 2*j.lease() {
			d = 2 * j.lease()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		held, ok, err = j.Store.TakeMoveLock(ctx, name, me, os.Getpid(), token, j.lease(), dead)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		who := "another process"
		if held != nil {
			who = fmt.Sprintf("process %d on master %s (lease until %s)", held.PID, held.Host, held.LeaseUntil.Local().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("%w: %s holds %s", engine.ErrLockHeld, who, name)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(j.lease() / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mine, err := j.Store.RenewMoveLock(context.Background(), name, token, j.lease())
				if (err != nil || !mine) && j.Logf != nil {
					j.Logf("move lock %s: renewing its lease: held %v, %v", name, mine, err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_ = j.Store.ReleaseMoveLock(context.Background(), name, token)
	}, nil
}

// Save writes task id's journal (engine.Journals).
func (j *StateJournals) Save(ctx context.Context, id int64, body []byte) error {
	return j.Store.SaveMoveJournal(ctx, id, body, queue.Master())
}

// Load reads task id's journal (engine.Journals).
func (j *StateJournals) Load(ctx context.Context, id int64) ([]byte, error) {
	b, err := j.Store.MoveJournal(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, engine.ErrNoJournal
	}
	return b, err
}

// Remove deletes task id's journal (engine.Journals).
func (j *StateJournals) Remove(ctx context.Context, id int64) error {
	return j.Store.DeleteMoveJournal(ctx, id)
}

// Where names task id's journal in messages.
func (j *StateJournals) Where(id int64) string {
	return "the state's journal of task " + strconv.FormatInt(id, 10)
}
