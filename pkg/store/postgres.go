package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
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
	d := splitDSN(dsn)
	user, _, _ := strings.Cut(d.userinfo, ":")
	out := d.scheme + "://"
	if d.userinfo != "" {
		out += user + "@"
	}
	out += d.hosts + d.path
	if d.query != "" {
		q, err := url.ParseQuery(d.query)
		if err != nil {
			return out + "?(unparsable parameters)"
		}
		if q.Has("password") {
			q.Del("password")
			d.query = q.Encode()
		}
		if d.query != "" {
			out += "?" + d.query
		}
	}
	return out
}

// DSNHasPassword says whether a PostgreSQL DSN carries a password (in its
// user part or as a password parameter).
func DSNHasPassword(dsn string) bool {
	d := splitDSN(dsn)
	if strings.Contains(d.userinfo, ":") {
		return true
	}
	q, err := url.ParseQuery(d.query)
	return err != nil || q.Has("password") // unparsable: it may hide one
}

// dsnParts are a postgres:// DSN's parts: scheme://userinfo@hosts/path?query.
// It is cut by hand, not by url.Parse, which refuses several hosts with
// ports (postgres://u@h1:5432,h2:5432/db), as PostgreSQL allows.
type dsnParts struct{ scheme, userinfo, hosts, path, query string }

func splitDSN(dsn string) dsnParts {
	var d dsnParts
	d.scheme, dsn, _ = strings.Cut(dsn, "://")
	dsn, d.query, _ = strings.Cut(dsn, "?")
	authority := dsn
	if i := strings.IndexByte(dsn, '/'); i >= 0 {
		authority, d.path = dsn[:i], dsn[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		d.userinfo, authority = authority[:i], authority[i+1:]
	}
	d.hosts = authority
	return d
}
