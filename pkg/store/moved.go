package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// movedVersion is the schema_migrations row that marks a state moved by
// a copy (state migrate): a version no migration has (they start at 1),
// its name "moved to " and the target (without its password), applied the
// move's time. The mark lives in schema_migrations, the one table every
// state has from its first open and that CopyState never copies, so the
// copy is not marked, and a moved state refuses to open before anything
// (a migration) writes to it.
const movedVersion = -1

const movedPrefix = "moved to "

// MovedError is the open of a state that was moved (MarkMoved): its
// records went to To at At, and are kept up to date there, not here.
type MovedError struct {
	Path string // the state opened, without its password
	To   string // where it was moved, without its password
	At   time.Time
}

func (e *MovedError) Error() string {
	return fmt.Sprintf("the state %s was moved to %s on %s: its records are not kept up to date here",
		e.Path, e.To, e.At.UTC().Format("2006-01-02 15:04 UTC"))
}

// movedMark reads tx's moved mark: nil when the state was not moved.
func (s *Store) movedMark(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (*MovedError, error) {
	var name string
	var at int64
	err := q.QueryRowContext(ctx, `SELECT name, applied FROM schema_migrations WHERE version = ?`, movedVersion).Scan(&name, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &MovedError{Path: s.path, To: strings.TrimPrefix(name, movedPrefix), At: fromMs(at)}, nil
}

// Moved says where the state was moved (MarkMoved), nil if it was not.
func (s *Store) Moved(ctx context.Context) (*MovedError, error) {
	return s.movedMark(ctx, s.db)
}

// MarkMoved marks the state moved to to (shown without its password):
// opening it afterwards (but to read it: OpenReadOnly) is a *MovedError,
// unless Options.AllowMoved.
func (s *Store) MarkMoved(ctx context.Context, to string) error {
	if IsPostgres(to) {
		to = RedactDSN(to)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = ?`, movedVersion); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`, movedVersion, movedPrefix+to, s.now())
		return err
	})
}

// ClearMoved takes the moved mark off the state: it is used again, as it
// was when it was moved.
func (s *Store) ClearMoved(ctx context.Context) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = ?`, movedVersion)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
