package store

import (
	"os"
	"strings"
	"testing"
)

// Both engines' migrations have the same numbers and names: one schema
// version, whichever the state's engine. A migration added for one only
// fails here (migrations/README.md).
func TestMigrationsMatch(t *testing.T) {
	lite, err := loadMigrations(sqliteDialect)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(postgresDialect)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ms []migration) string {
		var b []string
		for _, m := range ms {
			b = append(b, itoa(int64(m.version))+"_"+m.name)
		}
		return strings.Join(b, " ")
	}
	if a, b := names(lite), names(pg); a != b {
		t.Fatalf("migrations/sqlite and migrations/postgres differ:\n sqlite:   %s\n postgres: %s\nwrite the missing one (migrations/README.md)", a, b)
	}
	if len(lite) == 0 {
		t.Fatal("no migrations found")
	}
	// A migration written where they all were before the two engines
	// would be embedded in neither.
	flat, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range flat {
		if strings.HasSuffix(e.Name(), ".sql") {
			t.Errorf("migrations/%s is applied by neither engine: move it into migrations/sqlite and write its migrations/postgres twin (migrations/README.md)", e.Name())
		}
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE a = ? AND b = ?`, `SELECT a FROM t WHERE a = $1 AND b = $2`},
		{`UPDATE t SET a = ?1, b = ?2 WHERE c = ?1 LIMIT ?10`, `UPDATE t SET a = $1, b = $2 WHERE c = $1 LIMIT $10`},
		{`SELECT '?', 'it''s ?' FROM t WHERE x LIKE ? ESCAPE '\'`, `SELECT '?', 'it''s ?' FROM t WHERE x LIKE $1 ESCAPE '\'`},
	} {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for _, c := range []struct {
		in, want string
		pw       bool
	}{
		{"postgres://aegir@db1:5432/aegir?sslmode=require", "postgres://aegir@db1:5432/aegir?sslmode=require", false},
		{"postgres://aegir:s3cret@db1/aegir", "postgres://aegir@db1/aegir", true},
		{"postgresql://db1/aegir?password=s3cret&sslmode=disable", "postgresql://db1/aegir?sslmode=disable", true},
		{"postgres://aegir:s3cret@db1:5432,db2:5432/aegir?target_session_attrs=read-write", "postgres://aegir@db1:5432,db2:5432/aegir?target_session_attrs=read-write", true},
		{"postgres://aegir@db1:5432,db2:5432/aegir", "postgres://aegir@db1:5432,db2:5432/aegir", false},
		{"postgres://a%40b:p%3Aw@db1/aegir", "postgres://a%40b@db1/aegir", true},
	} {
		if got := RedactDSN(c.in); got != c.want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactDSN(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := DSNHasPassword(c.in); got != c.pw {
			t.Errorf("DSNHasPassword(%q) = %v, want %v", c.in, got, c.pw)
		}
	}
}

// CheckDSN refuses what the driver would refuse or send to the server as
// a mistyped setting, and takes server settings (role, search_path).
func TestCheckDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://a@h/db?sslmode=require&search_path=x&role=r&application_name=aegir": "",
		"postgresql://a@h1:5432,h2:5433/db?target_session_attrs=read-write":             "",
		"postgres://a@h/db?sslmode=bogus":                                               "sslmode must be one of",
		"postgres://a@h/db?sslmod=disable":                                              "did you mean sslmode?",
		"postgres://a@h/db?dbnam=x":                                                     "did you mean dbname?",
		"postgres://a@h:70000/db":                                                       "invalid port",
		"postgres://%zz":                                                                "must be a postgres://USER@HOST[:PORT]/DB URL",
	} {
		err := CheckDSN(dsn)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckDSN(%s) = %v, want %q", dsn, err, want)
		}
	}
}
