package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// stateTables are the state's tables in an order that copies each after
// those it refers to. TestStateTablesListed checks that it names every
// table of the schema (a migration that adds one adds it here).
var stateTables = []string{
	"clients", "servers", "services", "platforms", "sites", "site_names",
	"tasks", "task_log", "packages", "package_releases", "package_instances",
	"backups", "queue_runs", "queue_items", "site_stats", "certificates",
	"users", "tokens", "audit_log", "webhooks", "webhook_deliveries", "webhook_marks",
	"move_journals", "move_locks", "task_processes", "known_host_keys", "acme_accounts",
}

// seededTables are filled by the migrations themselves (queue_runs: a row
// for each queue): a state that holds only those rows is empty.
var seededTables = map[string]bool{"queue_runs": true}

// CopyCount is how many rows of one table a copy wrote.
type CopyCount struct {
	Table string `json:"table" yaml:"table"`
	Rows  int    `json:"rows" yaml:"rows"`
}

// CopyState copies every record of src into dst, which must be empty (no
// row in any table but those the migrations fill, which are replaced):
// aegir state migrate, from SQLite to PostgreSQL or back. Ids are kept,
// so every reference holds, and dst's id sequences continue after them.
// It reads src in one transaction (a consistent copy) and writes dst in
// one: a copy that fails writes nothing.
func CopyState(ctx context.Context, src, dst *Store) ([]CopyCount, error) {
	if src.dialect == dst.dialect && src.path == dst.path {
		return nil, &ConflictError{Field: "to", Msg: "the target is the state itself", Hint: "name another state to copy to"}
	}
	rtx, err := src.db.BeginTx(ctx, src.snapshot())
	if err != nil {
		return nil, err
	}
	defer rtx.Rollback() //nolint:errcheck // read only
	var out []CopyCount
	err = dst.tx(ctx, func(wtx *sql.Tx) error {
		for _, t := range stateTables {
			if seededTables[t] {
				continue
			}
			var n int
			if err := wtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return &ConflictError{Field: "to", Msg: fmt.Sprintf("the target state is not empty: its %s table has %d rows", t, n),
					Hint: "copy into a new, empty database (or file); aegir never overwrites a state"}
			}
		}
		for _, t := range stateTables {
			n, err := copyTable(ctx, rtx, wtx, t)
			if err != nil {
				return fmt.Errorf("copying table %s: %w", t, err)
			}
			out = append(out, CopyCount{Table: t, Rows: n})
		}
		return dst.resetSequences(ctx, wtx)
	})
	if err != nil {
		return nil, err
	}
	return out, dst.analyze(ctx)
}

// analyze refreshes PostgreSQL's planner statistics after many rows were
// written at once (a copy): until autovacuum gets to a new table, the
// planner guesses it nearly empty, and a claim over a large backlog sorts
// every queued task instead of walking the index (a second against a
// millisecond at 100,000 tasks).
func (s *Store) analyze(ctx context.Context) error {
	if s.dialect != postgresDialect {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `ANALYZE`)
	return err
}

// snapshot is how to read a state at one point in time.
func (s *Store) snapshot() *sql.TxOptions {
	if s.dialect == postgresDialect {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return nil // SQLite: a transaction sees one state
}

// copyTable copies every row of table t, column by column by name.
func copyTable(ctx context.Context, from, to *sql.Tx, t string) (int, error) {
	if seededTables[t] {
		if _, err := to.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return 0, err
		}
	}
	rows, err := from.QueryContext(ctx, `SELECT * FROM `+t)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quoteIdent(c) // "user" is a reserved word
	}
	ins, err := to.PrepareContext(ctx, `INSERT INTO `+t+` (`+strings.Join(quoted, ", ")+`) VALUES (`+strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// resetSequences makes PostgreSQL's identity columns continue after the
// ids copied in (SQLite's INTEGER PRIMARY KEY does by itself).
func (s *Store) resetSequences(ctx context.Context, tx *sql.Tx) error {
	if s.dialect != postgresDialect {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT table_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES' ORDER BY table_name`)
	if err != nil {
		return err
	}
	tables, err := scanColumn[string](rows)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), COALESCE((SELECT MAX(id) FROM `+quoteIdent(t)+`), 0) + 1, false)`, t); err != nil {
			return err
		}
	}
	return nil
}

// tables lists the state's tables as the database has them (not
// schema_migrations), sorted.
func (s *Store) tables(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'schema_migrations' AND name NOT LIKE 'sqlite%' ORDER BY name`
	if s.dialect == postgresDialect {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name`
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return scanColumn[string](rows)
}

// quoteIdent quotes a table or column name the database gave.
func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
