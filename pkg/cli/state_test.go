package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/store"
)

// aegir state migrate copies a SQLite state into an empty PostgreSQL
// database, which a home whose state key names it then uses (its
// dispatcher warns of a server's SSH key missing on it), and back into a
// file; a target with records, a password on the command line or
// in the config, and a password file others may read are refused (exit 2)
// without the password in the message.
func TestStateMigrate(t *testing.T) {
	home := newHome(t)
	must(t, home, "client", "add", "acme", "--email", "ops@acme.test")
	dsn := testenv.StateDatabase(t)

	var counts []struct {
		Table string
		Rows  int
	}
	if err := json.Unmarshal([]byte(must(t, home, "--format", "json", "state", "migrate", "--to", dsn)), &counts); err != nil {
		t.Fatal(err)
	}
	if len(counts) == 0 || counts[0].Table != "clients" || counts[0].Rows != 1 {
		t.Fatalf("counts %+v", counts)
	}
	other := newHome(t)
	if _, errs, code := aegir(t, other, "state", "migrate", "--to", dsn); code != 2 || !strings.Contains(errs, "not empty") {
		t.Fatalf("second copy into the same database: exit %d, %s", code, errs)
	}

	// A second home on the PostgreSQL state.
	pgHome := filepath.Join(t.TempDir(), "pg")
	writeConfig(t, pgHome, "state: "+dsn+"\n")
	if out := must(t, pgHome, "client", "list", "--field", "email"); strings.TrimSpace(out) != "ops@acme.test" {
		t.Fatalf("client list on the PostgreSQL state: %q", out)
	}
	// Shell completion reads the state the config names, PostgreSQL too.
	if out := must(t, pgHome, "__complete", "client", "show", ""); !strings.HasPrefix(out, "acme\n") {
		t.Fatalf("completion on the PostgreSQL state: %q", out)
	}
	// A master without a server's SSH key at its path is told so as its
	// dispatcher starts.
	key := filepath.Join(t.TempDir(), "id_web2")
	if err := os.WriteFile(key, []byte("not a key: never read here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, pgHome, "server", "add", "web2", "--host", "192.0.2.10", "--ssh-key", key, "--queue") // its verify would reach it
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, pgHome, "hosting", "dispatch"); code != 0 || !strings.Contains(errs, "server web2: its SSH key "+key+" is not on this master") {
		t.Fatalf("dispatch without the SSH key: exit %d, %s", code, errs)
	}
	back := filepath.Join(t.TempDir(), "back.db")
	must(t, pgHome, "state", "migrate", "--to", back)
	fileHome := filepath.Join(t.TempDir(), "file")
	writeConfig(t, fileHome, "state: "+back+"\n")
	if out := must(t, fileHome, "client", "list", "--field", "name"); strings.TrimSpace(out) != "acme" {
		t.Fatalf("client list on the copied back state: %q", out)
	}

	const secret = "hunter2secret"
	withPassword := strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:"+secret+"@", 1)
	if _, errs, code := aegir(t, home, "state", "migrate", "--to", withPassword); code != 2 || strings.Contains(errs, secret) || !strings.Contains(errs, "--password-file") {
		t.Fatalf("password on the command line: exit %d, %s", code, errs)
	}
	badHome := filepath.Join(t.TempDir(), "bad")
	writeConfig(t, badHome, "state: "+withPassword+"\n")
	if _, errs, code := aegir(t, badHome, "client", "list"); code != 2 || strings.Contains(errs, secret) || !strings.Contains(errs, "state_password_file") {
		t.Fatalf("password in the config: exit %d, %s", code, errs)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, home, "state", "migrate", "--to", dsn, "--password-file", pw); code != 2 || !strings.Contains(errs, "chmod 600") {
		t.Fatalf("password file others may read: exit %d, %s", code, errs)
	}
}

// writeConfig makes an aegir home with config.
func writeConfig(t *testing.T, home, config string) {
	t.Helper()
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "aegir.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// stateHomes are homes on each engine for the state tests: a SQLite home
// (its aegir.db) and one whose state is a new PostgreSQL database, with
// the locator of each one's state.
func stateHomes(t *testing.T) map[string][2]string {
	t.Helper()
	sqliteHome := newHome(t)
	dsn := testenv.StateDatabase(t)
	pgHome := filepath.Join(t.TempDir(), "pg")
	writeConfig(t, pgHome, "state: "+dsn+"\n")
	if _, errs := must2(t, pgHome, "init"); !strings.Contains(errs, "aegir home ready: "+pgHome+", its state "+store.RedactDSN(dsn)+" (schema version") {
		t.Errorf("init does not name the PostgreSQL state: %s", errs)
	}
	return map[string][2]string{
		"sqlite":   {sqliteHome, filepath.Join(sqliteHome, "aegir.db")},
		"postgres": {pgHome, dsn},
	}
}

// state migrate refuses (exit 2, no target made) while a task is
// processing under a live lease, naming the task, its master and the
// lease; a task whose lease ran out is copied, with a line saying the
// first dispatch on the new state rescues it.
func TestStateMigrateRunningTask(t *testing.T) {
	for engine, h := range stateHomes(t) {
		t.Run(engine, func(t *testing.T) {
			home, loc := h[0], h[1]
			ctx := context.Background()
			st, err := store.Open(ctx, loc, false)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			task, err := st.QueueTask(ctx, entities.TaskPlatformVerify, entities.TargetPlatform, 1, "p1", nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if c, err := st.ClaimTask(ctx, store.Claim{Worker: "4242@ma/0123456789abcdef", Now: now, LeaseUntil: now.Add(time.Hour)}, task.ID); err != nil || c == nil {
				t.Fatalf("claim: %v %v", c, err)
			}
			to := filepath.Join(t.TempDir(), "x.db")
			want := fmt.Sprintf("task %d is running on master ma (lease until ", task.ID)
			if _, errs, code := aegir(t, home, "state", "migrate", "--to", to); code != 2 || !strings.Contains(errs, want) || !strings.Contains(errs, "stop the dispatchers") {
				t.Fatalf("migrate with a running task: exit %d, %s", code, errs)
			}
			if _, err := os.Stat(to); !os.IsNotExist(err) {
				t.Fatalf("the refused migrate made its target: %v", err)
			}
			if _, err := st.TestExec(`UPDATE tasks SET lease_until = ? WHERE id = ?`, now.Add(-time.Minute).UnixMilli(), task.ID); err != nil {
				t.Fatal(err)
			}
			_, errs := must2(t, home, "state", "migrate", "--to", to)
			if !strings.Contains(errs, fmt.Sprintf("task %d was left processing on master ma", task.ID)) || !strings.Contains(errs, "rescues it") {
				t.Fatalf("migrate with an expired lease: %s", errs)
			}
			cp, err := store.Open(ctx, to, false)
			if err != nil {
				t.Fatal(err)
			}
			defer cp.Close()
			if got, err := cp.GetTask(ctx, task.ID); err != nil || got.Status != entities.TaskProcessing {
				t.Fatalf("the copy's task: %+v %v", got, err)
			}
		})
	}
}

// A state key the driver could not use is refused as the config is read:
// exit 2, one line naming state and where it was set, never the password,
// nothing written (no file made at the path).
func TestStateConfigChecked(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ state, want string }{
		{"postgres://aegir@db1/aegir?sslmode=bogus", "sslmode must be one of disable"},
		{"postgres://%zz", "must be a postgres://USER@HOST[:PORT]/DB URL: "},
		{"postgresql://aegir@db1/aegir?sslmod=disable", "unknown parameter sslmod: did you mean sslmode?"},
		{"postgres://aegir@db1:99999/aegir", "invalid port"},
		{"host=db1 dbname=aegir user=aegir", "key=value form"},
		{dir, "is a directory: must be a SQLite file's path, such as " + filepath.Join(dir, "aegir.db")},
	} {
		home := filepath.Join(t.TempDir(), "h")
		writeConfig(t, home, "state: "+c.state+"\n")
		_, errs, code := aegir(t, home, "client", "list")
		if code != 2 || !strings.Contains(errs, c.want) || !strings.Contains(errs, filepath.Join(home, "aegir.yaml")+`: invalid state "`) || strings.Count(errs, "error:") != 1 {
			t.Errorf("state %s: exit %d, %s", c.state, code, errs)
		}
		if first, _, _ := strings.Cut(errs, "\nhint:"); strings.Contains(first, "\n") {
			t.Errorf("state %s: the error is more than one line: %s", c.state, errs)
		}
	}
	home := filepath.Join(t.TempDir(), "h")
	writeConfig(t, home, "")
	if _, errs, code := aegir(t, home, "state", "migrate", "--to", "postgres://aegir@db1/aegir?sslmod=disable"); code != 2 || !strings.Contains(errs, `invalid --to "postgres://aegir@db1/aegir?sslmod=disable": has an unknown parameter sslmod`) {
		t.Errorf("migrate --to: exit %d, %s", code, errs)
	}
	t.Setenv("AEGIR_STATE", "postgres://aegir@db1/aegir?sslmode=bogus")
	if _, errs, code := aegir(t, home, "client", "list"); code != 2 || !strings.Contains(errs, "environment variable AEGIR_STATE: invalid state") {
		t.Errorf("AEGIR_STATE: exit %d, %s", code, errs)
	}
}

// After state migrate the old state is marked moved: every command that
// writes refuses it (exit 2) naming where it went and the setting that
// named it, a copy of it too; list, show and log read it read only, with
// a warning; the next: line names state_password_file
// when the target needed one; state reopen takes the mark off. Both
// engines as the source.
func TestStateMoved(t *testing.T) {
	const secret = "movedsecretpw"
	for engine, h := range stateHomes(t) {
		t.Run(engine, func(t *testing.T) {
			home, loc := h[0], h[1]
			must(t, home, "client", "add", "acme", "--email", "ops@acme.test")
			setting := "the default state, AEGIR_HOME/aegir.db"
			to := testenv.StateDatabase(t)
			shown := to
			var args []string
			if engine == "postgres" {
				setting = "state in " + filepath.Join(home, "aegir.yaml")
				to = filepath.Join(t.TempDir(), "new.db")
				shown = to
			} else {
				pw := filepath.Join(t.TempDir(), "pw")
				if err := os.WriteFile(pw, []byte(secret+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--password-file", pw}
			}
			_, errs := must2(t, home, append([]string{"state", "migrate", "--to", to}, args...)...)
			if engine == "sqlite" && !strings.Contains(errs, "state_password_file: "+args[1]) {
				t.Errorf("the next: line does not name state_password_file: %s", errs)
			}
			for _, cmd := range [][]string{{"client", "add", "beta", "--email", "ops@beta.test"}, {"init"}, {"hosting", "dispatch"}, {"state", "migrate", "--to", filepath.Join(t.TempDir(), "again.db")}} {
				_, errs, code := aegir(t, home, cmd...)
				want := "error: the state " + store.RedactDSN(loc)
				if engine == "sqlite" {
					want = "error: the state " + loc
				}
				want += " (" + setting + ") was moved to " + shown + " on "
				if code != 2 || !strings.Contains(errs, want) || !strings.Contains(errs, "aegir state reopen") || strings.Contains(errs, secret) {
					t.Errorf("%v on the moved state: exit %d, %s", cmd, code, errs)
				}
			}
			if out := must(t, home, "__complete", "client", "show", ""); !strings.HasPrefix(out, "acme\n") {
				t.Errorf("completion on the moved state: %q", out)
			}
			// Commands that only read show it read only, with a warning.
			for _, cmd := range [][]string{{"client", "list", "--field", "name"}, {"client", "show", "acme", "--field", "name"}, {"task", "list"}, {"site", "list"}} {
				out, errs := must2(t, home, cmd...)
				if !strings.Contains(errs, "warning: the state ") || !strings.Contains(errs, "shown read only, as it was then") || cmd[1] != "list" && strings.TrimSpace(out) != "acme" || cmd[0] == "client" && cmd[1] == "list" && strings.TrimSpace(out) != "acme" {
					t.Errorf("%v on the moved state: %q, %s", cmd, out, errs)
				}
			}
			// The moved state is no target either: it is not empty.
			if _, errs, code := aegir(t, newHome(t), "state", "migrate", "--to", loc); code != 2 || !strings.Contains(errs, "is not empty: it is a state that was moved to "+shown) {
				t.Errorf("migrate into the moved state: exit %d, %s", code, errs)
			}
			must(t, home, "state", "reopen")
			if out := must(t, home, "client", "list", "--field", "name"); strings.TrimSpace(out) != "acme" {
				t.Errorf("client list after reopen: %q", out)
			}
			if _, errs := must2(t, home, "state", "reopen"); !strings.Contains(errs, "not marked moved") {
				t.Errorf("reopen again: %s", errs)
			}
		})
	}
}

// A PostgreSQL state's server refusing it is one line that says what to
// do: a database missing is exit 2 (as a state not initialised) with the
// createdb that makes it, a URL parameter the server does not know exit 2,
// a user who may not create tables the owner to make it; a SQLite state
// missing names the setting that named its path.
func TestStateDatabaseErrors(t *testing.T) {
	dsn := testenv.StateDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	role := "aegir_noperm_" + suffix
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	base, query, _ := strings.Cut(dsn, "?")
	db := base[strings.LastIndexByte(base, '/')+1:]
	missing := "aegir_missing_" + suffix
	noPerm := strings.Replace(dsn, "postgres://postgres@", "postgres://"+role+"@", 1)
	for _, c := range []struct {
		name, state string
		args        []string
		code        int
		want, hint  string
	}{
		{"no database", strings.Replace(base, db, missing, 1) + "?" + query, []string{"client", "list"}, 2,
			`database "` + missing + `" does not exist on 127.0.0.1:5432`, "createdb -O postgres " + missing},
		{"unknown setting", dsn + "&aegir_no_such_setting=1", []string{"client", "list"}, 2,
			`unrecognized configuration parameter "aegir_no_such_setting"`, "fix state in "},
		{"no permission", noPerm, []string{"init"}, 1,
			"user " + role + ` may not create aegir's tables in database "` + db + `"`, "make " + role + " the database's owner (ALTER DATABASE " + db + " OWNER TO " + role},
		{"no file", "/nonexistent/aegir/x.db", []string{"client", "list"}, 2,
			"/nonexistent/aegir/x.db does not exist (named by state in ", "(a mistyped path or database?)"},
	} {
		home := filepath.Join(t.TempDir(), "h")
		writeConfig(t, home, "state: "+c.state+"\n")
		_, errs, code := aegir(t, home, c.args...)
		first, hint, _ := strings.Cut(errs, "\nhint: ")
		if code != c.code || !strings.Contains(first, c.want) || !strings.Contains(hint, c.hint) || strings.Count(strings.TrimSpace(errs), "\n") != 1 {
			t.Errorf("%s: exit %d, %s", c.name, code, errs)
		}
	}
	home := newHome(t)
	to := strings.Replace(base, db, missing, 1) + "?" + query
	if _, errs, code := aegir(t, home, "state", "migrate", "--to", to); code != 2 || !strings.Contains(errs, "createdb -O postgres "+missing+", docs/masters.md step 1), or fix --to") {
		t.Errorf("migrate to a missing database: exit %d, %s", code, errs)
	}
}
