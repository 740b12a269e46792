package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/store"
)

// appendConfig adds lines to home's aegir.yaml.
func appendConfig(t *testing.T, home, lines string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprint(f, "\n"+lines); err != nil {
		t.Fatal(err)
	}
}

// Two masters share one state but not their backups directories: a
// backup is recorded with the master that took it; a restore another
// master runs while the archive is not there refuses at once, naming the
// master that has it and changing nothing (the site answers as before),
// and goes on once the archive is at its path there (shared storage).
func TestRestoreOnAnotherMasterNamesIt(t *testing.T) {
	t.Parallel()
	h := startHost(t, "nginx", func(t testing.TB) *testenv.PHPFPM { return testenv.StartPHPFPM(t) },
		func(home string, _ *testenv.PHPFPM) { appendConfig(t, home, "master: m1\n") })
	root := h.wpPlatform(t, "wp")
	domain, db1 := wordPressSite(t, h, "wp", root, "mm", false, "Made before the backup", "before.txt")

	var b backupRec
	if err := json.Unmarshal([]byte(must(t, h.home, "site", "backup", domain, "--format", "json", "-q")), &b); err != nil {
		t.Fatal(err)
	}
	if b.Master != "m1" {
		t.Fatalf("backup recorded on master %q, want m1", b.Master)
	}

	// Master m2: the same state, its own home and backups directory.
	m2 := filepath.Join(t.TempDir(), "m2")
	writeConfig(t, m2, "state: "+filepath.Join(h.home, "aegir.db")+"\nmaster: m2\n")
	var listed []backupRec
	if err := json.Unmarshal([]byte(must(t, m2, "backup", "list", "--site", domain, "--format", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Master != "m1" || listed[0].Path != b.Path {
		t.Fatalf("backup list on m2: %+v", listed)
	}

	// The archive is not on m2 (its backups directory is its own).
	away := b.Path + ".elsewhere"
	if err := os.Rename(b.Path, away); err != nil {
		t.Fatal(err)
	}
	addPost(t, db1, "Made after the backup")
	// m2 does not fail: it queues the restore for m1, and says so.
	out, errs, code := aegir(t, m2, "site", "restore", domain)
	if code != 0 || !strings.Contains(errs, "for master m1, which holds the backup archive (this master, m2, does not share its backups directory)") {
		t.Fatalf("restore on m2 without the archive: exit %d\n%s", code, errs)
	}
	tied := strings.TrimSpace(out)
	if task := taskRecord(t, m2, tied); task["status"] != "queued" || task["master"] != "m1" {
		t.Fatalf("the restore queued on m2: %v", task)
	}
	// m2's dispatch leaves it to m1.
	must(t, m2, "hosting", "dispatch", "-q")
	if task := taskRecord(t, m2, tied); task["status"] != "queued" {
		t.Fatalf("the restore tied to m1 after m2's dispatch: %v", task)
	}
	if rec := siteRecord(t, h.home, domain); rec["db_name"] != db1 || rec["status"] != "installed" {
		t.Fatalf("the queued restore changed the site: %v", rec)
	}
	if ok, got := h.pageHas(t, domain, "Made after the backup", ""); !ok {
		t.Fatalf("the site does not answer as before: %s", got)
	}

	// On m1 itself a missing archive is the back end's to refuse, as
	// ever: the message is not about another master.
	_, errs, code = aegir(t, h.home, "hosting", "dispatch")
	if task := taskRecord(t, h.home, tied); task["status"] != "error" || strings.Contains(fmt.Sprint(task["error"]), "is on master") {
		t.Fatalf("the restore run by m1 without the archive: %v (dispatch exit %d)\n%s", task, code, errs)
	}

	// A restore asked of m2's API is queued for m1 too.
	must(t, m2, "user", "add", "root", "--role", "admin", "-q")
	api := apiClient{serve(t, m2), token(t, m2, "root", "write")}
	viaAPI := api.task(t, 202, "POST", "/api/sites/"+domain+"/restore", "")
	if viaAPI.Master != "m1" || viaAPI.Status != entities.TaskQueued {
		t.Fatalf("the restore queued through m2's API: %+v", viaAPI)
	}
	must(t, m2, "task", "cancel", strconv.FormatInt(viaAPI.ID, 10), "-q")

	// With the archive at its path (shared storage), m1 restores it.
	if err := os.Rename(away, b.Path); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "site", "restore", domain, "-q")
	if ok, got := h.pageHas(t, domain, "Made before the backup", "Made after the backup"); !ok {
		t.Fatalf("after the restore on m1: %s", got)
	}
}

// twoMastersKeepingOne is twoMasters on the engine AEGIR_TEST_STATE says,
// both with the backup queue on and keep 1, a platform p and a site
// domain recorded (no task of theirs left queued).
func twoMastersKeepingOne(t *testing.T, domain string) (a *hostEnv, b string, st *store.Store, v *entities.Site) {
	t.Helper()
	a, b, dsn := twoMastersOn(t, testenv.State(t))
	for _, home := range []string{a.home, b} {
		appendConfig(t, home, "queue:\n  backup:\n    enabled: true\n  cron:\n    enabled: false\n  stats:\n    enabled: false\n  cert:\n    enabled: false\nbackup:\n  keep: 1\n")
	}
	ctx := context.Background()
	st = openState(t, dsn)
	root := filepath.Join(testenv.PublicDir(t), "p")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, a.home, "platform", "add", "p", "--server", "web1", "--root", root, "--queue", "-q")
	if _, err := st.AddSite(ctx, &entities.Site{Domain: domain, Platform: "p", DBServer: "web1", HTTPS: "off", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TestExec(`UPDATE tasks SET status = 'cancelled' WHERE status = 'queued'`); err != nil {
		t.Fatal(err) // the platform's verify and the site's install: not the test's
	}
	v, err := st.GetSite(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	return a, b, st, v
}

// archivesOnMa writes n archives of site v in home's backups directory,
// recorded on master ma, oldest first (hours apart, the newest an hour
// old).
func archivesOnMa(t *testing.T, st *store.Store, home string, v *entities.Site, n int) []*entities.Backup {
	t.Helper()
	var backups []*entities.Backup
	for i := range n {
		path := filepath.Join(home, "backups", fmt.Sprintf("%s-%d.tar.gz", v.Domain, i))
		if err := os.WriteFile(path, []byte("archive"), 0o600); err != nil {
			t.Fatal(err)
		}
		bk, err := st.AddBackupOn(context.Background(), "ma", v.ID, path, 7, "x", time.Now().Add(time.Duration(i-n)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		backups = append(backups, bk)
	}
	return backups
}

// backupDeletes lists the state's backup.delete tasks.
func backupDeletes(t *testing.T, st *store.Store) []*entities.Task {
	t.Helper()
	ts, err := st.ListTasks(context.Background(), store.TaskFilter{Type: entities.TaskBackupDelete})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// Two masters, two homes and backups directories on one state (the
// engine AEGIR_TEST_STATE says): master ma's backups are deleted by ma.
// The keep-N clean-up of a dispatch on mb queues the delete of ma's
// surplus archives tied to ma, and a backup delete on mb queues one too,
// saying so, instead of failing; mb's dispatches leave them queued, and
// queue no more; ma's dispatch runs them: the archives and their records
// are gone. The commands run as processes of their own: the master's
// name is the process's (queue.SetMaster).
func TestBackupsOfAnotherMasterGoThere(t *testing.T) {
	t.Parallel()
	a, b, st, v := twoMastersKeepingOne(t, "keep.test")
	ctx := context.Background()
	backups := archivesOnMa(t, st, a.home, v, 3)
	deletes := func() []*entities.Task { return backupDeletes(t, st) }

	// mb's dispatch: keep 1, so the two older archives go, through ma.
	// On a PostgreSQL state it warns that web1, reached as localhost, is
	// each master's own machine.
	errs, code := aegirProcess(t, b, "hosting", "dispatch")
	if code != 0 {
		t.Fatalf("dispatch on mb: exit %d\n%s", code, errs)
	}
	const local = "server web1 is reached as localhost, which is each master's own machine: with a state that several masters may share, its tasks run on whichever master claims them"
	if warned := strings.Contains(errs, local); warned != (st.Dialect() == "postgres") {
		t.Errorf("dispatch on mb, state on %s: warned of the localhost server: %v\n%s", st.Dialect(), warned, errs)
	}
	ts := deletes()
	if len(ts) != 2 {
		t.Fatalf("%d backup.delete tasks after mb's dispatch, want 2: %+v", len(ts), ts)
	}
	for _, k := range ts {
		if k.Master != "ma" || k.Status != entities.TaskQueued {
			t.Errorf("task %d (%s): %s, tied to %q; want queued, tied to ma", k.ID, k.Target, k.Status, k.Master)
		}
	}
	// A delete by hand on mb: queued for ma, said so, exit 0.
	newest := strconv.FormatInt(backups[2].ID, 10)
	errs, code = aegirProcess(t, b, "backup", "delete", newest, "-y", "--queue")
	if code != 0 || !strings.Contains(errs, "for master ma, which holds the backup archive (this master, mb, does not share its backups directory)") ||
		strings.Contains(errs, "backup.dir") || strings.Contains(errs, "backup.path") {
		t.Fatalf("backup delete %s on mb: exit %d\n%s", newest, code, errs)
	}
	t.Logf("backup delete on mb: %s", errs)
	// mb's next dispatch leaves them to ma, and queues no more.
	if errs, code := aegirProcess(t, b, "hosting", "dispatch"); code != 0 {
		t.Fatalf("second dispatch on mb: exit %d\n%s", code, errs)
	}
	if ts := deletes(); len(ts) != 3 || ts[0].Status != entities.TaskQueued || ts[1].Status != entities.TaskQueued || ts[2].Status != entities.TaskQueued {
		t.Fatalf("after mb's second dispatch: %+v", ts)
	}
	for _, bk := range backups {
		if _, err := os.Stat(bk.Path); err != nil {
			t.Fatalf("mb's dispatch touched %s: %v", bk.Path, err)
		}
	}

	// ma's dispatch runs them.
	if errs, code := aegirProcess(t, a.home, "hosting", "dispatch"); code != 0 {
		t.Fatalf("dispatch on ma: exit %d\n%s", code, errs)
	}
	for _, k := range deletes() {
		_, m, _ := strings.Cut(k.Worker, "@") // pid@master/machine
		if m, _, _ = strings.Cut(m, "/"); k.Status != entities.TaskSuccess || m != "ma" {
			t.Errorf("task %d (%s) after ma's dispatch: %s by %s: %s", k.ID, k.Target, k.Status, k.Worker, k.Error)
		}
	}
	for _, bk := range backups {
		if _, err := os.Stat(bk.Path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after ma's dispatch: %v, want gone", bk.Path, err)
		}
	}
	if left, err := st.ListBackups(ctx, "keep.test"); err != nil || len(left) != 0 {
		t.Errorf("backups left: %+v, %v", left, err)
	}

	// A deleted site brought back on mb from an archive only ma has: the
	// archive is read before anything is recorded, so mb stops, names
	// ma, and records nothing.
	gone, err := st.AddBackupOn(ctx, "ma", v.ID, filepath.Join(a.home, "backups", "keep.test-gone.tar.gz"), 7, "x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TestExec(`UPDATE sites SET status = 'deleted' WHERE id = ?`, v.ID); err != nil {
		t.Fatal(err)
	}
	errs, code = aegirProcess(t, b, "site", "restore", "keep.test")
	if want := fmt.Sprintf("backup %d of keep.test is on master ma (%s), whose backups directory this master (mb) does not share; nothing was recorded", gone.ID, gone.Path); code != 1 ||
		!strings.Contains(errs, want) || !strings.Contains(errs, "bring the site back on master ma") {
		t.Errorf("restore of the deleted site on mb: exit %d, want 1 and %q\n%s", code, want, errs)
	}
	var status string
	if err := st.TestQueryRow(`SELECT status FROM sites WHERE id = ?`, v.ID).Scan(&status); err != nil || status != entities.SiteDeleted {
		t.Errorf("the site after the refused restore: %q, %v", status, err)
	}
}

// taskRecord is task show ID's JSON record on home.
func taskRecord(t *testing.T, home, id string) map[string]any {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal([]byte(must(t, home, "task", "show", id, "--format", "json")), &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}
