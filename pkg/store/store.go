// Package store keeps aegir's state: by default in one SQLite file
// (modernc.org/sqlite, no cgo: WAL mode, a busy timeout so that a cron
// dispatch and a user command can write at once, foreign keys on), or in
// a PostgreSQL database (pgx) that several masters share. Versioned
// migrations, one set for each engine with the same numbers, are embedded
// in the binary.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aegir-project/aegir/pkg/entities"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// Store is an open state database.
type Store struct {
	db         *sql.DB
	allowMoved bool   // Options.AllowMoved: migrate does not refuse a moved state
	path       string // the SQLite file, or the PostgreSQL DSN without its password
	dialect    dialect
	pgConfig   *pgx.ConnConfig // a PostgreSQL state's, to word its errors (dbError)
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// ErrNotInitialized means the state file does not exist yet.
var ErrNotInitialized = errors.New("state database not initialized")

// NotFoundError says which entity was not found.
type NotFoundError struct {
	Kind string
	Name string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.Name) }

// ErrNotFound is matched by every *NotFoundError (errors.Is).
var ErrNotFound = errors.New("not found")

// Is lets errors.Is(err, ErrNotFound) match.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError is a change the model refuses: a name taken, an entity in
// use. Hint says what to do in neutral words, Fix the actions that do it
// (a front end words them as its commands).
type ConflictError struct {
	Field string // the setting or argument at fault, as the model names it (root, db-server, domain)
	Msg   string
	Hint  string
	Fix   []entities.Action
}

func (e *ConflictError) Error() string { return e.Msg }

// ErrConflict is matched by every *ConflictError.
var ErrConflict = errors.New("conflict")

// Is lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Options are how to reach a PostgreSQL state beyond its DSN.
type Options struct {
	// Password of the PostgreSQL user; "" leaves it to the DSN or the
	// PostgreSQL environment (PGPASSWORD, the password file ~/.pgpass).
	Password string
	// AllowMoved opens a state marked moved (MarkMoved), which is
	// otherwise a *MovedError: to take the mark off (ClearMoved).
	AllowMoved bool
}

// IsPostgres says whether a state locator is a PostgreSQL DSN
// (postgres://... or postgresql://...) rather than a SQLite file's path.
func IsPostgres(locator string) bool {
	return strings.HasPrefix(locator, "postgres://") || strings.HasPrefix(locator, "postgresql://")
}

// Open opens the state at locator: a SQLite file's path, or a PostgreSQL
// DSN (IsPostgres; see OpenWith). With create, a missing file is created
// (mode 0600) and its directory too; without it, a missing file (a
// PostgreSQL database without aegir's tables) is ErrNotInitialized.
// Migrations are applied in either case, so an older state upgrades in
// place.
func Open(ctx context.Context, locator string, create bool) (*Store, error) {
	return OpenWith(ctx, locator, create, Options{})
}

// OpenWith is Open with Options for a PostgreSQL state.
func OpenWith(ctx context.Context, locator string, create bool, o Options) (*Store, error) {
	if IsPostgres(locator) {
		return openPostgres(ctx, locator, create, o)
	}
	return openSQLite(ctx, locator, create, o)
}

func openSQLite(ctx context.Context, path string, create bool, o Options) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if !create {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotInitialized, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if f != nil {
			f.Close()
		}
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(15000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &Store{db: db, path: path, Now: time.Now, allowMoved: o.AllowMoved}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// SQLite makes the -wal and -shm files with the process umask: keep
	// them as private as the database.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// OpenReadOnly opens an existing state database only to read it, as it
// is: no migration, no file created or changed (shell completion, which
// must be fast and must not write).
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	return OpenReadOnlyWith(ctx, path, Options{})
}

// OpenReadOnlyWith is OpenReadOnly with options (a PostgreSQL state's
// password).
func OpenReadOnlyWith(ctx context.Context, path string, o Options) (*Store, error) {
	if IsPostgres(path) {
		return connectPostgres(ctx, path, o, true)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotInitialized, path)
		}
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(1000)&_pragma=query_only(1)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, path: path, Now: time.Now}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the state file's path, or the PostgreSQL DSN without its
// password.
func (s *Store) Path() string { return s.path }

// Dialect is the state's engine: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.String() }

type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.up\.sql$`)

// loadMigrations reads the migrations of dialect d (migrations/sqlite or
// migrations/postgres).
func loadMigrations(d dialect) ([]migration, error) {
	dir := "migrations/" + d.String()
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			if strings.HasSuffix(e.Name(), ".down.sql") {
				continue
			}
			return nil, fmt.Errorf("store: migration file %q is not named NNN_name.up.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		ms = append(ms, migration{version: v, name: m[2], sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		// Numbers are handed out to branches developed side by side, so
		// one may land before a lower one: gaps are allowed, twins not.
		if m.version < 1 || i > 0 && m.version == ms[i-1].version {
			return nil, fmt.Errorf("store: migration numbers must be unique and start at 001; found %03d twice or out of range", m.version)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest migration this binary knows (both dialects
// have the same: TestMigrationsMatch).
func SchemaVersion() int {
	ms, err := loadMigrations(sqliteDialect)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	// One transaction: masters that start at once wait for one another
	// (SQLite's writer lock, PostgreSQL's writer lock in tx), and a
	// migration that fails leaves the state as it was.
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("store: %s: %w", s.path, err)
		}
		applied := map[int]bool{}
		if !s.allowMoved {
			// Before any migration: a moved state is left as it was.
			if m, err := s.movedMark(ctx, tx); err != nil || m != nil {
				if err == nil {
					err = m
				}
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		vs, err := scanColumn[int](rows)
		if err != nil {
			return err
		}
		newest := SchemaVersion()
		for _, v := range vs {
			if v > newest {
				return fmt.Errorf("store: %s has schema version %d, newer than this aegir knows (%d); upgrade aegir", s.path, v, newest)
			}
			applied[v] = true
		}
		// Every migration not applied yet, in order: one that landed
		// after a higher one was applied too.
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("store: migration %03d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`, m.version, m.name, ms2(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
}

// writerLock is the PostgreSQL advisory lock (of the state's database)
// that every transaction of tx holds: the store's multi-statement changes
// were written for SQLite's one writer at a time (check, then write), and
// keep that on PostgreSQL. Single statements (a claim, a lease renewal, a
// task's end, log lines) do not take it.
const writerLock = 0x61656769720001 // "aegir", 1

// tx runs f in a transaction, committing on nil. On SQLite it is an
// immediate transaction (the store opens with _txlock=immediate); on
// PostgreSQL it holds writerLock.
func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	return s.txLock(ctx, true, f)
}

// txLock is tx; without lock, a PostgreSQL transaction does not take
// writerLock (one that only appends, such as a task's log lines).
func (s *Store) txLock(ctx context.Context, lock bool, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if lock && s.dialect == postgresDialect {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(writerLock)); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms2(t time.Time) int64 { return t.UnixMilli() }

func (s *Store) now() int64 { return s.Now().UnixMilli() }

func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMs(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMs(v.Int64)
	return &t
}
