package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// dialect is the SQL engine behind a Store. The store's queries are
// written once, for both, with ? placeholders (or ?N, numbered); on
// PostgreSQL the connection rebinds them to $N (pgConn). The few forms the
// two engines spell differently are methods of dialect.
type dialect int

const (
	sqliteDialect dialect = iota
	postgresDialect
)

func (d dialect) String() string {
	if d == postgresDialect {
		return "postgres"
	}
	return "sqlite"
}

// greatest is the larger of two values: SQLite's MAX(a, b) with two
// arguments, PostgreSQL's GREATEST.
func (d dialect) greatest(a, b string) string {
	if d == postgresDialect {
		return "GREATEST(" + a + ", " + b + ")"
	}
	return "MAX(" + a + ", " + b + ")"
}

// isSame is a comparison that is true when both sides are NULL too.
func (d dialect) isSame(col, param string) string {
	if d == postgresDialect {
		return col + " IS NOT DISTINCT FROM " + param
	}
	return col + " IS " + param
}

// noIndex keeps the planner from choosing an index on col: SQLite's unary
// plus; PostgreSQL plans on statistics and needs no such hint.
func (d dialect) noIndex(col string) string {
	if d == postgresDialect {
		return col
	}
	return "+" + col
}

// pgCode is the SQLSTATE of a PostgreSQL error, "" for any other error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func isUnique(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed") || pgCode(err) == "23505")
}

func isForeignKey(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "FOREIGN KEY constraint failed") || pgCode(err) == "23503")
}

// rebind turns a query's ? and ?N placeholders into PostgreSQL's $N: ?N
// keeps its number, each plain ? takes the next one. Text in single
// quotes is left alone. A query mixes no plain and numbered placeholders.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			b.WriteByte('$')
			if i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				continue // ?N: the digits follow as they are
			}
			n++
			b.WriteString(itoa(int64(n)))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pgConnector makes the connections of a PostgreSQL store: pgx's, with
// each query rebound (rebind) and Go bools sent as 0 and 1, which is how
// both schemas keep flags (INTEGER columns).
type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{conn: conn}, nil
}

// pgConn is one connection of pgConnector. It implements the optional
// interfaces of database/sql that pgx's connection implements.
type pgConn struct{ conn driver.Conn }

var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
)

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.conn.Prepare(rebind(q)) }
func (c *pgConn) Close() error                          { return c.conn.Close() }

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *pgConn) Begin() (driver.Tx, error) { return c.conn.Begin() } //nolint:staticcheck // required by driver.Conn

func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.conn.(driver.ConnPrepareContext).PrepareContext(ctx, rebind(q))
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.conn.(driver.ExecerContext).ExecContext(ctx, rebind(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.conn.(driver.QueryerContext).QueryContext(ctx, rebind(q), args)
}

func (c *pgConn) Ping(ctx context.Context) error { return c.conn.(driver.Pinger).Ping(ctx) }

func (c *pgConn) ResetSession(ctx context.Context) error {
	return c.conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *pgConn) CheckNamedValue(v *driver.NamedValue) error {
	if b, ok := v.Value.(bool); ok {
		v.Value = int64(0)
		if b {
			v.Value = int64(1)
		}
	}
	return c.conn.(driver.NamedValueChecker).CheckNamedValue(v)
}
