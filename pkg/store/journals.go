package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// A move's journal and locks in the state (migration 17), so that every
// master sharing the state can play back a move another master left
// half-done (docs/masters.md).

// MoveLock is the holder of a move's lock.
type MoveLock struct {
	Name       string
	Host       string // the holder's host name
	PID        int
	Token      string // this hold's own, random
	LeaseUntil time.Time
	Taken      time.Time
}

// TakeMoveLock takes lock name for the holder (host, pid, token) until
// lease from now. A lock held by another is taken over when its lease has
// run out, or when dead(holder) says its holder is gone (a process of this
// host that no longer runs); otherwise it returns that holder, and taken
// false. Each step is one conditional statement: two masters that try at
// once never both get it.
func (s *Store) TakeMoveLock(ctx context.Context, name, host string, pid int, token string, lease time.Duration, dead func(*MoveLock) bool) (held *MoveLock, taken bool, err error) {
	for range 3 {
		now := s.now()
		until := now + lease.Milliseconds()
		res, err := s.db.ExecContext(ctx, `INSERT INTO move_locks (name, host, pid, token, lease_until, taken) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			name, host, pid, token, until, now)
		if err != nil {
			return nil, false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil, true, nil
		}
		h, err := s.moveLock(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, false, err
		}
		if h.LeaseUntil.UnixMilli() > now && (dead == nil || !dead(h)) {
			return h, false, nil
		}
		res, err = s.db.ExecContext(ctx, `UPDATE move_locks SET host = ?, pid = ?, token = ?, lease_until = ?, taken = ? WHERE name = ? AND token = ?`,
			host, pid, token, until, now, name, h.Token)
		if err != nil {
			return nil, false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return h, true, nil
		}
	}
	h, err := s.moveLock(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	return h, false, nil
}

func (s *Store) moveLock(ctx context.Context, name string) (*MoveLock, error) {
	var h MoveLock
	var until, taken int64
	err := s.db.QueryRowContext(ctx, `SELECT name, host, pid, token, lease_until, taken FROM move_locks WHERE name = ?`, name).
		Scan(&h.Name, &h.Host, &h.PID, &h.Token, &until, &taken)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "move lock", Name: name}
	}
	if err != nil {
		return nil, err
	}
	h.LeaseUntil, h.Taken = fromMs(until), fromMs(taken)
	return &h, nil
}

// MoveLocks lists the move locks held, by name.
func (s *Store) MoveLocks(ctx context.Context) ([]*MoveLock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, host, pid, token, lease_until, taken FROM move_locks ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*MoveLock
	for rows.Next() {
		var h MoveLock
		var until, taken int64
		if err := rows.Scan(&h.Name, &h.Host, &h.PID, &h.Token, &until, &taken); err != nil {
			return nil, err
		}
		h.LeaseUntil, h.Taken = fromMs(until), fromMs(taken)
		out = append(out, &h)
	}
	return out, rows.Err()
}

// RenewMoveLock moves the lease of the hold token on: false when the lock
// is no longer that hold's (taken over after its lease ran out).
func (s *Store) RenewMoveLock(ctx context.Context, name, token string, lease time.Duration) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE move_locks SET lease_until = ? WHERE name = ? AND token = ?`, s.now()+lease.Milliseconds(), name, token)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseMoveLock lets the hold token of lock name go (nothing when the
// lock is another's by now).
func (s *Store) ReleaseMoveLock(ctx context.Context, name, token string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM move_locks WHERE name = ? AND token = ?`, name, token)
	return err
}

// SaveMoveJournal writes the journal of task taskID whole (body, the back
// end's JSON), host the master running it.
func (s *Store) SaveMoveJournal(ctx context.Context, taskID int64, body []byte, host string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO move_journals (task_id, body, host, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (task_id) DO UPDATE SET body = excluded.body, host = excluded.host, updated = excluded.updated`,
		taskID, string(body), host, s.now())
	return err
}

// heldLock is the condition of a write by the hold token of lock name:
// on PostgreSQL it locks the lock's row, so that a take-over (an UPDATE of
// that row) waits for the write and the new holder reads it.
func (s *Store) heldLock() string {
	q := `EXISTS (SELECT 1 FROM move_locks WHERE name = ? AND token = ?`
	if s.dialect == postgresDialect {
		q += ` FOR UPDATE`
	}
	return q + `)`
}

// SaveHeldMoveJournal is SaveMoveJournal while the hold token has lock
// lockName: false, and nothing written, when it no longer has it.
func (s *Store) SaveHeldMoveJournal(ctx context.Context, taskID int64, body []byte, host, lockName, token string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO move_journals (task_id, body, host, updated)
		SELECT CAST(? AS BIGINT), ?, ?, CAST(? AS BIGINT) WHERE `+s.heldLock()+`
		ON CONFLICT (task_id) DO UPDATE SET body = excluded.body, host = excluded.host, updated = excluded.updated`,
		taskID, string(body), host, s.now(), lockName, token)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteHeldMoveJournal is DeleteMoveJournal while the hold token has
// lock lockName: nothing when it no longer has it (the new holder's).
func (s *Store) DeleteHeldMoveJournal(ctx context.Context, taskID int64, lockName, token string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM move_journals WHERE task_id = ? AND `+s.heldLock(), taskID, lockName, token)
	return err
}

// MoveJournal reads the journal of task taskID (ErrNotFound: none).
func (s *Store) MoveJournal(ctx context.Context, taskID int64) ([]byte, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM move_journals WHERE task_id = ?`, taskID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "journal of task", Name: itoa(taskID)}
	}
	return []byte(body), err
}

// DeleteMoveJournal removes the journal of task taskID.
func (s *Store) DeleteMoveJournal(ctx context.Context, taskID int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM move_journals WHERE task_id = ?`, taskID)
	return err
}
