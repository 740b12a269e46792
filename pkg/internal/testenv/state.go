package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

// StateEngineEnv names the state engine the store and queue tests run on:
// "postgres" for a PostgreSQL state on the machine's server (the Makefile
// runs those packages a second time with it), anything else SQLite.
const StateEngineEnv = "AEGIR_TEST_STATE"

// PostgresAdminEnv is a DSN of the machine's PostgreSQL server for a user
// who may create databases; default postgres over TCP on 127.0.0.1:5432.
const PostgresAdminEnv = "AEGIR_TEST_PG"

// StatePostgres says whether the tests' states are PostgreSQL ones.
func StatePostgres() bool { return os.Getenv(StateEngineEnv) == "postgres" }

// State returns where a test's fresh state is: a SQLite file in a
// temporary directory, or (StatePostgres) the DSN of a new database on the
// machine's PostgreSQL server, dropped when the test ends.
func State(t testing.TB) string {
	t.Helper()
	if StatePostgres() {
		return StateDatabase(t)
	}
	return filepath.Join(t.TempDir(), "aegir.db")
}

// StateDatabase creates an empty database aegir_state_<random> on the
// machine's PostgreSQL server (PostgresAdminEnv), owned by the admin user,
// returns its DSN, and drops it (and only it) when the test ends. It
// skips the test when the server cannot be reached.
func StateDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin := os.Getenv(PostgresAdminEnv)
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("%s: %v", PostgresAdminEnv, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Skipf("no PostgreSQL server for the state (%s): %v", PostgresAdminEnv, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "aegir_state_" + hex.EncodeToString(b) // [a-z0-9_]: needs no quoting
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating the state database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}
