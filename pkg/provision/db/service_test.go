package db

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// The suite below runs against real servers: the system's MariaDB and
// PostgreSQL, and private instances or accounts made for a test. Every
// database and user it makes has a random name and is dropped when the
// test ends.

// target is a database server the suite runs against.
type target struct {
	cfg Config
	// enforced: the server checks the site user's password (the system's
	// PostgreSQL trusts local connections, so there it cannot be tested).
	enforced bool
}

// grantHost is where the tests connect from.
const grantHost = "127.0.0.1"

func systemMariaDB() Config {
	return Config{Type: MariaDB, Host: "127.0.0.1", Port: 3306, AdminUser: "root"}
}

func systemPostgres() Config {
	return Config{Type: PostgreSQL, Host: "127.0.0.1", Port: 5432, AdminUser: "postgres"}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// randName is a fresh name for a test database or user.
func randName() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "aegirt_" + hex.EncodeToString(b[:])
}

func newService(t *testing.T, cfg Config) Service {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// createSite creates database name with user name and a new password, and
// drops both when the test ends.
func createSite(t *testing.T, s Service, name string) (password string) {
	t.Helper()
	password = GeneratePassword()
	t.Cleanup(func() {
		if err := s.DropDatabase(context.Background(), name, name, grantHost); err != nil {
			t.Errorf("cleanup: DropDatabase(%s): %v", name, err)
		}
	})
	if err := s.CreateDatabase(testContext(t), name, name, password, grantHost); err != nil {
		t.Fatalf("CreateDatabase(%s): %v", name, err)
	}
	return password
}

// asUser is a Service that logs in as a site's user, over TCP.
func asUser(t *testing.T, tg target, user, password string) Service {
	cfg := tg.cfg
	cfg.AdminUser, cfg.AdminPassword = user, password
	return newService(t, cfg)
}

// errCode is the provision error code of err, or "" when it has none.
func errCode(err error) string {
	var pe *provision.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// wantCode fails unless err is a *provision.Error with code and a hint.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var pe *provision.Error
	switch {
	case err == nil:
		t.Errorf("%s: no error, want a %s error", what, code)
	case !errors.As(err, &pe):
		t.Errorf("%s: %v (%T), want a *provision.Error", what, err, err)
	case pe.Code != code:
		t.Errorf("%s: code %s (%v), want %s", what, pe.Code, err, code)
	case pe.Hint == "":
		t.Errorf("%s: %v: no hint", what, err)
	}
}

func mustExec(t *testing.T, c Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.Exec(testContext(t), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func queryInt(t *testing.T, c Conn, q string, args ...any) int64 {
	t.Helper()
	rows, err := c.Query(testContext(t), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var n int64
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", q, rows.Err())
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// runSuite runs the behaviour every Service must have against tg.
func runSuite(t *testing.T, tg target) {
	t.Run("Verify", func(t *testing.T) {
		t.Parallel()
		v, err := newService(t, tg.cfg).Verify(testContext(t))
		if err != nil || v == "" {
			t.Fatalf("Verify = %q, %v", v, err)
		}
		t.Logf("%s %s", tg.cfg.Type, v)
	})
	t.Run("CreateIsolates", func(t *testing.T) { t.Parallel(); testCreateIsolates(t, tg) })
	t.Run("CreateRefusesExisting", func(t *testing.T) { t.Parallel(); testCreateRefusesExisting(t, tg) })
	t.Run("Drop", func(t *testing.T) { t.Parallel(); testDrop(t, tg) })
	t.Run("DumpLoad", func(t *testing.T) { t.Parallel(); testDumpLoad(t, tg) })
	t.Run("DumpFailures", func(t *testing.T) { t.Parallel(); testDumpFailures(t, tg) })
	t.Run("Unreachable", func(t *testing.T) { t.Parallel(); testUnreachable(t, tg) })
	t.Run("Dialer", func(t *testing.T) { t.Parallel(); testDialer(t, tg) })
	t.Run("RefusesBadNames", func(t *testing.T) { t.Parallel(); testRefusesBadNames(t, tg) })
	t.Run("UniqueName", func(t *testing.T) { t.Parallel(); testUniqueName(t, tg) })
	t.Run("RepairUser", func(t *testing.T) { t.Parallel(); testRepairUser(t, tg) })
}

// A site's user that can no longer log in (its account dropped; on
// PostgreSQL, whose owner role cannot be dropped, its login taken away)
// is refused with ErrAuth, and RepairUser makes it log in again; a
// database that is gone is ErrDatabase for both.
func testRepairUser(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	name := randName()
	pw := createSite(t, s, name)
	if err := s.CheckLogin(ctx, name, name, pw, nil); err != nil {
		t.Fatalf("CheckLogin of a new site's user: %v", err)
	}
	conn, err := s.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	take := "DROP USER " + account(name, grantHost)
	if tg.cfg.Type == PostgreSQL {
		take = "ALTER ROLE " + quotePostgres(name) + " NOLOGIN"
	}
	_, err = conn.Exec(ctx, take)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "CheckLogin of a user gone", s.CheckLogin(ctx, name, name, pw, nil), provision.ErrAuth)
	if err := s.RepairUser(ctx, name, name, pw, grantHost); err != nil {
		t.Fatalf("RepairUser: %v", err)
	}
	if err := s.CheckLogin(ctx, name, name, pw, nil); err != nil {
		t.Fatalf("CheckLogin after RepairUser: %v", err)
	}
	if err := s.RepairUser(ctx, name, name, pw, grantHost); err != nil {
		t.Fatalf("RepairUser of a user in place: %v", err)
	}
	gone := randName()
	wantCode(t, "RepairUser of a database gone", s.RepairUser(ctx, gone, gone, pw, grantHost), provision.ErrDatabase)
}

func testUniqueName(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	domain := "www." + randName() + ".example.com"
	first, err := UniqueName(ctx, s, domain)
	if err != nil || first != NameFor(domain, nil) {
		t.Fatalf("UniqueName(%s) = %q, %v; want %q", domain, first, err, NameFor(domain, nil))
	}
	createSite(t, s, first)
	second, err := UniqueName(ctx, s, domain)
	if err != nil || second != first+"_2" {
		t.Errorf("UniqueName with %s taken = %q, %v", first, second, err)
	}
	down := tg.cfg
	down.Port = testenv.FreePort(t)
	_, err = UniqueName(ctx, newService(t, down), domain)
	wantCode(t, "UniqueName on a server that does not listen", err, provision.ErrUnreachable)
}

func testCreateIsolates(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	a := randName()
	// b differs from a only where a has an underscore: a grant on a that
	// forgot to escape it would cover b as well.
	b := strings.Replace(a, "_", "x", 1)
	pwA := createSite(t, s, a)
	createSite(t, s, b)

	for _, n := range []string{a, b} {
		if ok, err := s.DatabaseExists(ctx, n); !ok || err != nil {
			t.Errorf("DatabaseExists(%s) = %v, %v", n, ok, err)
		}
		if ok, err := s.UserExists(ctx, n); !ok || err != nil {
			t.Errorf("UserExists(%s) = %v, %v", n, ok, err)
		}
	}
	if ok, err := s.DatabaseExists(ctx, randName()); ok || err != nil {
		t.Errorf("DatabaseExists(new name) = %v, %v", ok, err)
	}
	if ok, err := s.UserExists(ctx, randName()); ok || err != nil {
		t.Errorf("UserExists(new name) = %v, %v", ok, err)
	}

	// The user works in its own database, with the generated password.
	user := asUser(t, tg, a, pwA)
	c, err := user.Open(ctx, a)
	if err != nil {
		t.Fatalf("user %s cannot open its database: %v", a, err)
	}
	defer c.Close()
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(50))")
	mustExec(t, c, "INSERT INTO t (id, v) VALUES (?, ?), (?, ?)", 1, "one", 2, "it's two")
	if n := queryInt(t, c, "SELECT id FROM t WHERE v = ?", "it's two"); n != 2 {
		t.Errorf("read back id %d", n)
	}

	// It cannot make a database.
	if _, err := c.Exec(ctx, "CREATE DATABASE "+quoteIdent(tg.cfg.Type, randName())); err == nil {
		t.Error("the site user could create a database")
	}
	// It cannot use the other site's database.
	if oc, err := user.Open(ctx, b); err == nil {
		oc.Close()
		t.Errorf("the user of %s could connect to %s", a, b)
	} else {
		wantCode(t, "opening another site's database", err, provision.ErrAuth)
	}
	if tg.cfg.Type.mysqlFamily() {
		if _, err := c.Query(ctx, "SELECT * FROM "+quoteMySQL(b)+".t"); err == nil {
			t.Errorf("the user of %s could read %s", a, b)
		}
		rows, err := c.Query(ctx, "SHOW DATABASES")
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			seen = append(seen, n)
		}
		rows.Close()
		sort.Strings(seen)
		if strings.Join(seen, ",") != a+",information_schema" {
			t.Errorf("the user of %s sees databases %v", a, seen)
		}
	}
	if tg.enforced {
		_, err := asUser(t, tg, a, pwA+"x").Open(ctx, a)
		wantCode(t, "logging in with a wrong password", err, provision.ErrAuth)
	}
}

func quoteIdent(t Type, id string) string {
	if t == PostgreSQL {
		return quotePostgres(id)
	}
	return quoteMySQL(id)
}

func testCreateRefusesExisting(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	a := randName()
	createSite(t, s, a)
	other := randName()
	err := s.CreateDatabase(ctx, a, other, GeneratePassword(), grantHost)
	wantCode(t, "creating an existing database", err, provision.ErrDatabase)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Errorf("error %q does not say the database exists", err)
	}
	err = s.CreateDatabase(ctx, other, a, GeneratePassword(), grantHost)
	wantCode(t, "creating an existing user", err, provision.ErrDatabase)
	for _, check := range []func(context.Context, string) (bool, error){s.DatabaseExists, s.UserExists} {
		if ok, err := check(ctx, other); ok || err != nil {
			t.Errorf("a refused create left %s behind (%v)", other, err)
		}
	}
	err = s.CreateDatabase(ctx, other, tg.cfg.AdminUser, GeneratePassword(), grantHost)
	wantCode(t, "creating the admin user as a site user", err, provision.ErrInvalidContext)
}

func testDrop(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	a := randName()
	pw := createSite(t, s, a)
	// A session of the site is still open while it is dropped.
	c, err := asUser(t, tg, a, pw).Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExec(t, c, "CREATE TABLE t (id INT)")

	if err := s.DropDatabase(ctx, a, a, grantHost); err != nil {
		t.Fatalf("DropDatabase: %v", err)
	}
	if ok, err := s.DatabaseExists(ctx, a); ok || err != nil {
		t.Errorf("database still there after drop (%v)", err)
	}
	if ok, err := s.UserExists(ctx, a); ok || err != nil {
		t.Errorf("user still there after drop (%v)", err)
	}
	if c2, err := asUser(t, tg, a, pw).Open(ctx, a); err == nil {
		c2.Close()
		t.Error("the dropped user could still log in to the dropped database")
	}
	// Absent is fine.
	if err := s.DropDatabase(ctx, a, a, grantHost); err != nil {
		t.Errorf("second DropDatabase: %v", err)
	}
	if err := s.DropDatabase(ctx, randName(), "", ""); err != nil {
		t.Errorf("DropDatabase of a database that never was: %v", err)
	}
}

// fill makes table t in c with rows that are hard to dump (quotes,
// backslashes, line breaks, unicode, NULL, all byte values) and enough
// of them (about 1 MB) to fill a pipe many times over.
func fill(t *testing.T, c Conn, ty Type) {
	blob := "BLOB"
	if ty == PostgreSQL {
		blob = "BYTEA"
	}
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT NULL, b "+blob+" NULL)")
	for i, v := range trickyValues {
		mustExec(t, c, "INSERT INTO t (id, v, b) VALUES (?, ?, ?)", i+1, v, allBytes)
	}
	mustExec(t, c, "INSERT INTO t (id, v) VALUES (?, NULL)", len(trickyValues)+1)
	var q strings.Builder
	q.WriteString("INSERT INTO t (id, v) VALUES ")
	for i := range 2000 {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "(%d, REPEAT('x', 500))", 1000+i)
	}
	mustExec(t, c, q.String())
}

var trickyValues = []string{"O'Reilly", `back\slash`, "tab\tline\nbreak\r\n", "ünïcødé ✓ 日本", "`; DROP TABLE t; --", `"quoted"`, "$1 ? %s"}

var allBytes = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// checkFilled checks what fill wrote.
func checkFilled(t *testing.T, c Conn) {
	t.Helper()
	ctx := testContext(t)
	if n := queryInt(t, c, "SELECT COUNT(*) FROM t"); n != int64(len(trickyValues)+1+2000) {
		t.Errorf("%d rows", n)
	}
	if n := queryInt(t, c, "SELECT SUM(LENGTH(v)) FROM t WHERE id >= 1000"); n != 2000*500 {
		t.Errorf("bulk rows hold %d characters", n)
	}
	rows, err := c.Query(ctx, "SELECT id, v, b FROM t WHERE id < 1000 ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var id int64
		var v *string
		var b []byte
		if err := rows.Scan(&id, &v, &b); err != nil {
			t.Fatal(err)
		}
		if i < len(trickyValues) {
			if v == nil || *v != trickyValues[i] || !bytes.Equal(b, allBytes) {
				t.Errorf("row %d: v=%q b=%x, want %q and every byte", id, deref(v), b, trickyValues[i])
			}
		} else if v != nil || b != nil {
			t.Errorf("row %d: v=%q b=%x, want NULLs", id, deref(v), b)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(trickyValues)+1 {
		t.Errorf("%d special rows", i)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<NULL>"
	}
	return *p
}

func testDumpLoad(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	ex := exec.NewLocal()
	src, dst := randName(), randName()
	pwSrc := createSite(t, s, src)
	pwDst := createSite(t, s, dst)
	c, err := asUser(t, tg, src, pwSrc).Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fill(t, c, tg.cfg.Type)

	var dump bytes.Buffer
	if err := s.Dump(ctx, ex, src, &dump); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	if !bytes.Contains(dump.Bytes(), []byte("CREATE TABLE")) || dump.Len() < 1_000_000 {
		t.Fatalf("dump of %d bytes without CREATE TABLE:\n%.500s", dump.Len(), dump.String())
	}
	if bytes.Contains(dump.Bytes(), []byte("CREATE DATABASE")) {
		t.Error("the dump creates a database; it must load into any name")
	}
	if err := s.Load(ctx, ex, dst, bytes.NewReader(dump.Bytes())); err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The destination's own user reads the loaded tables (on PostgreSQL
	// they belong to it).
	d, err := asUser(t, tg, dst, pwDst).Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkFilled(t, d)
	mustExec(t, d, "INSERT INTO t (id, v) VALUES (?, ?)", 5000, "written after load")

	// SQL that fails is an error.
	err = s.Load(ctx, ex, dst, strings.NewReader("CREATE TABLE u (id INT);\nTHIS IS NOT SQL;\n"))
	wantCode(t, "loading bad SQL", err, provision.ErrDatabase)
	if tg.cfg.Type == PostgreSQL {
		// ... and on PostgreSQL nothing of it stays.
		if n := queryInt(t, d, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'u'"); n != 0 {
			t.Error("a failed load left table u behind")
		}
	}
	err = s.Load(ctx, ex, randName(), strings.NewReader("SELECT 1;"))
	wantCode(t, "loading into a database that does not exist", err, provision.ErrDatabase)
}

// failingWriter fails once it has taken limit bytes.
type failingWriter struct{ n, limit int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n > w.limit {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func testDumpFailures(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	ex := exec.NewLocal()
	src := randName()
	pw := createSite(t, s, src)
	c, err := asUser(t, tg, src, pw).Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fill(t, c, tg.cfg.Type)

	start := time.Now()
	// A writer that fails mid-way: the dump stops, with an error.
	if err := s.Dump(ctx, ex, src, &failingWriter{limit: 100_000}); err == nil {
		t.Error("Dump into a failing writer: no error")
	}
	// A database that does not exist.
	var out bytes.Buffer
	err = s.Dump(ctx, ex, randName(), &out)
	wantCode(t, "dumping a database that does not exist", err, provision.ErrDatabase)
	// A wrong admin password (PostgreSQL: only where passwords are
	// checked): the admin login is checked before the tool runs (a
	// server that does not answer is found out there, within the connect
	// timeout), and refused as such.
	bad := tg.cfg
	bad.AdminUser, bad.AdminPassword = src, pw+"x"
	if tg.cfg.Type.mysqlFamily() || tg.enforced {
		err = newService(t, bad).Dump(ctx, ex, src, &out)
		wantCode(t, "dumping with a wrong password", err, provision.ErrAuth)
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("failed dumps took %s", d)
	}
}

func testUnreachable(t *testing.T, tg target) {
	cfg := tg.cfg
	cfg.Host, cfg.Port = "127.0.0.1", testenv.FreePort(t) // nothing listens there
	cfg.ConnectTimeout = 3 * time.Second
	s := newService(t, cfg)
	_, err := s.Verify(testContext(t))
	wantCode(t, "Verify of a server that does not listen", err, provision.ErrUnreachable)
	_, err = s.DatabaseExists(testContext(t), randName())
	wantCode(t, "DatabaseExists on a server that does not listen", err, provision.ErrUnreachable)
}

func testDialer(t *testing.T, tg target) {
	cfg := tg.cfg
	var dials atomic.Int32
	cfg.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	if _, err := newService(t, cfg).Verify(testContext(t)); err != nil {
		t.Fatalf("Verify through the Dialer: %v", err)
	}
	if dials.Load() == 0 {
		t.Error("the Dialer was not used")
	}
	cfg.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("tunnel down")}
	}
	_, err := newService(t, cfg).Verify(testContext(t))
	wantCode(t, "Verify through a failing Dialer", err, provision.ErrUnreachable)
}

func testRefusesBadNames(t *testing.T, tg target) {
	ctx := testContext(t)
	s := newService(t, tg.cfg)
	ex := exec.NewLocal()
	good := randName()
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), good, good, grantHost) })
	for _, bad := range []string{"x`; DROP DATABASE mysql; --", `x"; DROP ROLE postgres; --`, "x' OR '1'='1", "a b", "a;b", "bücher", "mysql", "postgres"} {
		checks := map[string]error{
			"CreateDatabase(name)": s.CreateDatabase(ctx, bad, good, "pw", grantHost),
			"CreateDatabase(user)": s.CreateDatabase(ctx, good, bad, "pw", grantHost),
			"DropDatabase(name)":   s.DropDatabase(ctx, bad, "", ""),
			"DropDatabase(user)":   s.DropDatabase(ctx, good, bad, grantHost),
			"Dump":                 s.Dump(ctx, ex, bad, io.Discard),
			"Load":                 s.Load(ctx, ex, bad, strings.NewReader("")),
		}
		_, checks["DatabaseExists"] = s.DatabaseExists(ctx, bad)
		_, checks["UserExists"] = s.UserExists(ctx, bad)
		_, checks["Open"] = s.Open(ctx, bad)
		for what, err := range checks {
			wantCode(t, fmt.Sprintf("%s with %q", what, bad), err, provision.ErrInvalidContext)
		}
	}
	if tg.cfg.Type.mysqlFamily() {
		err := s.CreateDatabase(ctx, good, good, "pw", "x`@`%`; DROP USER root; --")
		wantCode(t, "CreateDatabase with a bad grant host", err, provision.ErrInvalidContext)
	}
	err := s.CreateDatabase(ctx, good, good, "", grantHost)
	wantCode(t, "CreateDatabase with an empty password", err, provision.ErrInvalidContext)
	if ok, _ := s.DatabaseExists(ctx, good); ok {
		t.Errorf("a refused create made database %s", good)
	}
}

func TestMariaDB(t *testing.T) {
	runSuite(t, target{cfg: systemMariaDB(), enforced: true})
}

func TestPostgreSQL(t *testing.T) {
	runSuite(t, target{cfg: systemPostgres()})
}

// specialPassword has the characters that option and pgpass files and SQL
// need escaped.
const specialPassword = `p"a\s's#w:rd $x`
