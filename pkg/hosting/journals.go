package hosting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
// lease has run out, or at once when it was a process of this master on
// this machine: a hold's token starts with its machine (queue.Machine),
// so that a master with this one's name on another machine is judged by
// its lease alone.
type StateJournals struct {
	Store *store.Store
	Lease time.Duration
	// Logf, if set, is told of a renewal that failed.
	Logf func(format string, args ...any)

	mu    sync.Mutex
	holds map[string]string // by lock name, the tokens of this process's holds
}

var _ engine.Journals = (*StateJournals)(nil)

func (j *StateJournals) lease() time.Duration {
	if j.Lease <= 0 {
		return 2 * time.Minute
	}
	return j.Lease
}

// Lock takes lock name (engine.Journals).
func (j *StateJournals) Lock(ctx context.Context, name string, wait bool) (*engine.Hold, error) {
	me := queue.Master()
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := queue.Machine() + ":" + hex.EncodeToString(b[:])
	local := func(h *store.MoveLock) bool {
		return h.Host == me && strings.HasPrefix(h.Token, queue.Machine()+":")
	}
	dead := func(h *store.MoveLock) bool {
		return local(h) && h.PID != os.Getpid() && !queue.ProcessAlive(h.PID)
	}
	held, ok, err := j.Store.TakeMoveLock(ctx, name, me, os.Getpid(), token, j.lease(), dead)
	if err == nil && !ok && wait && held != nil && !local(held) {
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
	j.mu.Lock()
	if j.holds == nil {
		j.holds = map[string]string{}
	}
	j.holds[name] = token
	j.mu.Unlock()
	renew := func(ctx context.Context) (bool, error) {
		mine, err := j.Store.RenewMoveLock(ctx, name, token, j.lease())
		if (err != nil || !mine) && j.Logf != nil {
			j.Logf("move lock %s: renewing its lease: held %v, %v", name, mine, err)
		}
		return mine, err
	}
	return engine.NewHold(j.lease(), renew, func() {
		j.mu.Lock()
		delete(j.holds, name)
		j.mu.Unlock()
		_ = j.Store.ReleaseMoveLock(context.Background(), name, token)
	}), nil
}

// taskHold is this process's hold of task id's lock, if it has one.
func (j *StateJournals) taskHold(id int64) (name, token string) {
	name = "task-" + strconv.FormatInt(id, 10)
	j.mu.Lock()
	defer j.mu.Unlock()
	return name, j.holds[name]
}

// Save writes task id's journal (engine.Journals): while this process
// holds task id's lock, only as long as it does.
func (j *StateJournals) Save(ctx context.Context, id int64, body []byte) error {
	name, token := j.taskHold(id)
	if token == "" {
		return j.Store.SaveMoveJournal(ctx, id, body, queue.Master())
	}
	saved, err := j.Store.SaveHeldMoveJournal(ctx, id, body, queue.Master(), name, token)
	if err == nil && !saved {
		return fmt.Errorf("%w: %s", engine.ErrLockLost, name)
	}
	return err
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
	if name, token := j.taskHold(id); token != "" {
		return j.Store.DeleteHeldMoveJournal(ctx, id, name, token)
	}
	return j.Store.DeleteMoveJournal(ctx, id)
}

// Where names task id's journal in messages.
func (j *StateJournals) Where(id int64) string {
	return "the state's journal of task " + strconv.FormatInt(id, 10)
}
