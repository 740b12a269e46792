package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/aegir-project/aegir/pkg/entities"
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
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			return nil, dbError(s.pgConfig, s.path, err)
		}
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
	s := &Store{db: db, path: RedactDSN(dsn), dialect: postgresDialect, Now: time.Now, allowMoved: o.AllowMoved}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, dbError(cfg, s.path, err)
	}
	s.pgConfig = cfg
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

// dsnKeywords are the connection parameters of a PostgreSQL URL (libpq's,
// as pgx takes them): any other parameter is sent to the server as a
// setting (search_path, timezone).
var dsnKeywords = []string{"host", "port", "dbname", "database", "user", "password", "passfile", "connect_timeout",
	"sslmode", "sslkey", "sslcert", "sslcertmode", "sslrootcert", "sslnegotiation", "sslpassword", "sslsni",
	"krbspn", "krbsrvname", "target_session_attrs", "service", "servicefile", "min_protocol_version",
	"max_protocol_version", "channel_binding", "require_auth", "application_name", "options"}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// CheckDSN checks a postgres:// DSN as the driver reads it, without
// connecting, and returns the rule it breaks in words that never hold the
// password: a URL that does not parse, an sslmode the driver does not
// know, a parameter one or two letters from a connection parameter
// (sslmod for sslmode), which the driver would send to the server as an
// unknown setting.
func CheckDSN(dsn string) error {
	if q, err := url.ParseQuery(splitDSN(dsn).query); err == nil {
		if m := q.Get("sslmode"); q.Has("sslmode") && !slices.Contains(sslModes, m) {
			return fmt.Errorf("has sslmode=%s: sslmode must be one of %s", m, strings.Join(sslModes, ", "))
		}
		for k := range q {
			// One letter off for a short name: a server setting such as
			// role is two off host.
			maxEdits := 1
			if len(k) > 5 {
				maxEdits = 2
			}
			if n := entities.Nearest(k, dsnKeywords, maxEdits); n != "" && !slices.Contains(dsnKeywords, k) {
				return fmt.Errorf("has an unknown parameter %s: did you mean %s?", k, n)
			}
		}
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		msg := err.Error()
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) {
			// "cannot parse `DSN`: why (cause)": the why alone, since the
			// DSN may hold a password pgx did not see as one.
			if i := strings.Index(msg, "`: "); i >= 0 {
				msg = msg[i+3:]
			} else {
				msg = "the driver cannot parse it"
			}
		}
		return fmt.Errorf("must be a postgres://USER@HOST[:PORT]/DB URL: %s", msg)
	}
	return nil
}

// DBError is a PostgreSQL state's server refusing it, in one line (pgx's
// text spans lines, a line for each address tried, and repeats itself).
// Problem says which: ProblemNoDatabase, ProblemUnknownSetting,
// ProblemAuth, ProblemPermission, or ProblemConnect (any other).
type DBError struct {
	Problem  string
	Msg      string
	User     string
	Database string
	Addr     string // HOST:PORT
	Err      error
}

// The problems of a DBError.
const (
	ProblemNoDatabase     = "no-database"
	ProblemUnknownSetting = "unknown-setting"
	ProblemAuth           = "auth"
	ProblemPermission     = "permission"
	ProblemConnect        = "connect"
)

func (e *DBError) Error() string { return e.Msg }
func (e *DBError) Unwrap() error { return e.Err }

// dbError words err, met connecting to (or migrating) the state of cfg,
// as a *DBError.
func dbError(cfg *pgx.ConnConfig, shown string, err error) error {
	e := &DBError{Problem: ProblemConnect, User: cfg.User, Database: cfg.Database,
		Addr: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Err: err}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "3D000": // invalid_catalog_name
			e.Problem, e.Msg = ProblemNoDatabase, fmt.Sprintf("database %q does not exist on %s", e.Database, e.Addr)
		case pe.Code == "42704" && strings.Contains(pe.Message, "configuration parameter"):
			e.Problem, e.Msg = ProblemUnknownSetting, fmt.Sprintf("the server %s refused the state's URL %s: %s", e.Addr, shown, pe.Message)
		case pe.Code == "28P01" || pe.Code == "28000":
			e.Problem, e.Msg = ProblemAuth, fmt.Sprintf("the server %s refused user %s: %s", e.Addr, e.User, pe.Message)
		case pe.Code == "42501": // insufficient_privilege
			e.Problem, e.Msg = ProblemPermission, fmt.Sprintf("user %s may not create aegir's tables in database %q on %s: %s", e.User, e.Database, e.Addr, pe.Message)
		default:
			e.Msg = fmt.Sprintf("the state %s: %s (SQLSTATE %s)", shown, pe.Message, pe.Code)
		}
		return e
	}
	// "failed to connect to `user=U database=D`:" and a line for each
	// address tried, often the same: each different line once.
	var parts []string
	for i, l := range strings.Split(err.Error(), "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" || i == 0 && strings.HasSuffix(l, ":") || slices.ContainsFunc(parts, func(p string) bool { return strings.Contains(p, l) }) {
			continue
		}
		parts = append(parts, l)
	}
	e.Msg = fmt.Sprintf("cannot connect to the state %s: %s", shown, strings.Join(parts, "; "))
	return e
}
