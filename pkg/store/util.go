package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// joinIDs renders ids as a comma-separated list for an IN clause
// (integers only, so nothing needs quoting).
func joinIDs(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(id))
	}
	return b.String()
}

// scanAll reads every row of rows with scan, then closes rows.
func scanAll[T any](rows *sql.Rows, scan func(*sql.Rows, *T) error) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanColumn reads every row of a one-column result, then closes rows.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	return scanAll(rows, func(r *sql.Rows, v *T) error { return r.Scan(v) })
}

// scanEach is scanAll for the scan functions of one record (scanWebhook,
// scanDelivery ...), after the query's own error, which it returns as is.
func scanEach[T any](rows *sql.Rows, err error, scan func(scanner) (*T, error)) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	return scanAll(rows, func(r *sql.Rows, v **T) error {
		var err error
		*v, err = scan(r)
		return err
	})
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryRower runs a statement that returns a row: the *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insert runs the INSERT statement q and returns the new row's id, by
// RETURNING id (PostgreSQL's driver has no LastInsertId); sql.ErrNoRows
// when an INSERT ... SELECT inserted nothing.
func insert(ctx context.Context, db queryRower, q string, args ...any) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, q+" RETURNING id", args...).Scan(&id)
	return id, err
}
