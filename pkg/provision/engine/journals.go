package engine

import (
	"context"
	"errors"
)

// Journals keeps the journals of moves (their undo steps) and the locks a
// move holds on its task and its site, where every master sharing the
// state reads them, so that one master can undo a move another master
// left half-done when it died. The front end gives one over the state;
// without one, the back end keeps them as files in the aegir home.
type Journals interface {
	// Lock takes lock name ("task-ID", "site-DOMAIN") for this process,
	// without waiting, and keeps it until release is called or the
	// process dies: ErrLockHeld (wrapped, with the holder) when another
	// live holder has it. A holder that died is taken over once its lease
	// has run out; with wait, Lock waits for the lease of a holder on
	// another host to run out (once) before it answers.
	Lock(ctx context.Context, name string, wait bool) (release func(), err error)
	// Save writes task id's journal whole.
	Save(ctx context.Context, id int64, body []byte) error
	// Load reads task id's journal: ErrNoJournal when there is none.
	Load(ctx context.Context, id int64) ([]byte, error)
	// Remove deletes task id's journal.
	Remove(ctx context.Context, id int64) error
	// Where names the place of task id's journal in messages.
	Where(id int64) string
}

// ErrLockHeld is a Journals lock another live holder has.
var ErrLockHeld = errors.New("the lock is held by another process")

// ErrNoJournal is Journals.Load's answer for a task with no journal.
var ErrNoJournal = errors.New("no journal")
