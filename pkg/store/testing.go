package store

import (
	"context"
	"database/sql"
)

// The Test methods run SQL of their own on the state, for tests that set
// up or look at rows the store has no method for (a task's status set by
// hand, a site's last run moved back). The SQL is written as the store's
// is (? placeholders), so it runs on both engines. Code outside tests uses
// the Store's methods: TestStateSQLOnlyInStore keeps it so.

// TestExec runs statement q and returns the rows it changed.
func (s *Store) TestExec(q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(context.Background(), q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// TestInsert runs the INSERT statement q and returns the new row's id.
func (s *Store) TestInsert(q string, args ...any) (int64, error) {
	return insert(context.Background(), s.db, q, args...)
}

// TestQueryRow runs query q, which returns a row.
func (s *Store) TestQueryRow(q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(context.Background(), q, args...)
}

// TestBatch runs statement q once for each of rows (its arguments), in one
// transaction: many rows quickly. On PostgreSQL it then refreshes the
// planner's statistics, as autovacuum soon would (analyze).
func (s *Store) TestBatch(q string, rows [][]any) error {
	ctx := context.Background()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, args := range rows {
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.analyze(ctx)
}

// TestQuery runs query q; the caller closes the rows.
func (s *Store) TestQuery(q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(context.Background(), q, args...)
}
