package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// fillAll writes at least one row into every table of the state, with
// NULLs, empty strings, large times and text with quotes.
func fillAll(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	fixture(t, s)
	for _, d := range []string{"a.test", "b.test"} {
		if _, err := s.AddSite(ctx, &entities.Site{Domain: d, Aliases: []string{"www." + d}, Platform: "p1", DBServer: "web1", Client: "acme", HTTPS: "on"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO task_log (task_id, time, level, message) VALUES (1, 1893456000123, 'info', 'it''s "done"')`,
		`INSERT INTO packages (name, type, title, project) VALUES ('views', 'module', 'Views', 'drupal')`,
		`INSERT INTO package_releases (package_id, version) VALUES (1, '8.x-3.0')`,
		`INSERT INTO package_instances (release_id, platform_id, site_id, path, enabled, schema_version) VALUES (1, 1, NULL, 'modules/views', 1, '8000')`,
		`INSERT INTO backups (site_id, path, size, sha256, created) VALUES (1, '/b/a.tar.gz', 12345, 'abc', 1893456000000)`,
		`UPDATE queue_runs SET last_run = 1893456000999 WHERE name = 'cron'`,
		`INSERT INTO queue_items (queue, site_id, last_queued) VALUES ('cron', 1, 1893456000000)`,
		`INSERT INTO site_stats (site_id, users, active_users, posts, comments, updated, db_bytes, files_bytes) VALUES (1, 3, 2, 10, 4, 1893456000000, 5000000000, 7)`,
		`INSERT INTO certificates (site_id, names, issuer, source, not_before, not_after, updated) VALUES (1, 'a.test www.a.test', 'CA', 'acme', 1, NULL, 2)`,
		`INSERT INTO users (name, client_id, role, created) VALUES ('ann', 1, 'client', 5), ('root', NULL, 'admin', 6)`,
		`INSERT INTO tokens (user_id, hash, scope, created, expires) VALUES (1, 'h1', 'write', 7, NULL)`,
		`INSERT INTO audit_log (time, "user", token_id, method, path, status, task_id) VALUES (8, 'ann', 1, 'GET', '/v1/sites', 200, NULL)`,
		`INSERT INTO webhooks (url, events, client_id, secret, created) VALUES ('https://hooks.test/x', 'task.failed,site.installed', NULL, 's3cret', 9)`,
		`INSERT INTO webhook_deliveries (webhook_id, event, body, created, next_attempt) VALUES (1, 'task.failed', '{"id":1}', 10, 11)`,
		`INSERT INTO webhook_marks (key, created) VALUES ('cert.expiring:a.test', 12)`,
		`INSERT INTO move_journals (task_id, body, host, updated) VALUES (1, '{"kind":"migrate","ops":[]}', 'm1', 13)`,
		`INSERT INTO move_locks (name, host, pid, token, lease_until, taken) VALUES ('task-1', 'm1', 4242, 't0k', 1893456000000, 14)`,
		`INSERT INTO task_processes (task_id, host, username, pid, name, master, started) VALUES (1, '10.0.0.2:22', 'aegir', '4343', 'mysqldump', 'm1', 15)`,
		`INSERT INTO known_host_keys (host, key_type, key, fingerprint, added_at, added_by) VALUES ('[10.0.0.2]:2222', 'ssh-ed25519', 'ssh-ed25519 AAAAC3Nz', 'SHA256:x', 1893456000016, 'm1')`,
		"INSERT INTO acme_accounts (directory, key_pem, location, email, master, created, updated) VALUES ('https://ca.test/dir', '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n', 'https://ca.test/acct/1', 'it''s@a.test', 'm1', 16, 17)",
	} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// dump is every row of every table, as text, in a stable order.
func dump(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range stateTables {
		rows, err := s.db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, c := range cols {
				fmt.Fprintf(&b, "%s=%#v ", c, vals[i])
			}
			out[table] = append(out[table], b.String())
		}
		rows.Close()
		slices.Sort(out[table])
	}
	return out
}

// aegir state migrate: a SQLite state copied into PostgreSQL and back
// keeps every row of every table; ids continue after the copied ones; a
// target that is not empty is refused and left as it was.
func TestCopyStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	lite, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	fillAll(t, lite)
	want := dump(t, lite)
	for _, table := range stateTables {
		if len(want[table]) == 0 {
			t.Fatalf("fillAll leaves table %s empty: give it a row", table)
		}
	}
	pg, err := Open(ctx, testenv.StateDatabase(t), true)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	counts, err := CopyState(ctx, lite, pg)
	if err != nil {
		t.Fatalf("SQLite to PostgreSQL: %v", err)
	}
	if len(counts) != len(stateTables) || counts[4].Table != "sites" || counts[4].Rows != 2 {
		t.Fatalf("counts %+v", counts)
	}
	if got := dump(t, pg); !equalDumps(t, "PostgreSQL", got, want) {
		return
	}
	// Ids go on after the copied ones.
	task, err := pg.QueueTask(ctx, entities.TaskSiteVerify, entities.TargetSite, 1, "a.test", nil)
	if next := int64(len(want["tasks"]) + 1); err != nil || task.ID != next {
		t.Fatalf("new task after the copy: %+v, %v (want id %d)", task, err, next)
	}
	if _, err := pg.TestExec(`DELETE FROM tasks WHERE id = ?`, task.ID); err != nil {
		t.Fatal(err)
	}

	back, err := Open(ctx, filepath.Join(t.TempDir(), "b.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := CopyState(ctx, pg, back); err != nil {
		t.Fatalf("PostgreSQL to SQLite: %v", err)
	}
	equalDumps(t, "the round trip", dump(t, back), want)

	// Not into a state that has records.
	_, err = CopyState(ctx, lite, pg)
	var ce *ConflictError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "not empty") {
		t.Fatalf("copy into a full state: %v", err)
	}
	equalDumps(t, "the refused target", dump(t, pg), want)
}

func equalDumps(t *testing.T, what string, got, want map[string][]string) bool {
	t.Helper()
	ok := true
	for _, table := range stateTables {
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("%s: table %s differs:\n got  %q\n want %q", what, table, got[table], want[table])
			ok = false
		}
	}
	return ok
}

// stateTables, which the copy follows, names every table of the schema,
// on both engines.
func TestStateTablesListed(t *testing.T) {
	ctx := context.Background()
	want := slices.Sorted(slices.Values(stateTables))
	for _, loc := range []string{filepath.Join(t.TempDir(), "a.db"), testenv.StateDatabase(t)} {
		s, err := Open(ctx, loc, true)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.tables(ctx)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s has tables %v; stateTables (copy.go) lists %v", s.Dialect(), got, want)
		}
	}
}
