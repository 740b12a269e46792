package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens the PostgreSQL state at dsn. The database must exist
// (its administrator creates it, with its user); with create, aegir's
// tables are made in it, and without, a database without them is
// ErrNotInitialized.
func openPostgres(ctx context.Context, dsn string, create bool, o Options) (*Store, error) {
	s, err := connectPostgres(ctx, dsn, o, false)
	if err != nil {
		return nil, err
	}
	if !create {
		var has bool
		if err := s.db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&has); err != nil {
			s.db.Close()
			return nil, err
		}
		if !has {
			s.db.Close()
			return nil, fmt.Errorf("%w: %s has no aegir state", ErrNotInitialized, s.path)
		}
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// connectPostgres connects to dsn (read-only: every transaction is) and
// checks the server answers.
func connectPostgres(ctx context.Context, dsn string, o Options, readOnly bool) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn) // its errors leave the password out
	if err != nil {
		return nil, fmt.Errorf("store: state %w", err)
	}
	if o.Password != "" {
		cfg.Password = o.Password
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	db := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, path: RedactDSN(dsn), dialect: postgresDialect, Now: time.Now}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w", s.path, err)
	}
	return s, nil
}

// RedactDSN is a PostgreSQL DSN without its password, to show.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable DSN)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// DSNHasPassword says whether a PostgreSQL DSN carries a password (in its
// user part or as a password parameter).
func DSNHasPassword(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return false
	}
	_, set := u.User.Password()
	return set || u.Query().Has("password")
}
