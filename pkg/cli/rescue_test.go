package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
)

// asAegirEnv makes the test binary act as the aegir command (its
// arguments after --), for tests that need aegir in a process of its own.
const asAegirEnv = "AEGIR_CLI_TEST_AS_AEGIR"

func TestMain(m *testing.M) {
	if os.Getenv(asAegirEnv) != "" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(cli.Main(args))
	}
	os.Exit(m.Run())
}

// startAegir starts aegir in a process (and process group) of its own.
func startAegir(t *testing.T, home string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, append([]string{"-test.run=^$", "--", "--home", home}, args...)...)
	cmd.Env = append(os.Environ(), asAegirEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// A dispatcher killed (SIGKILL) in the middle of a restore, after the
// restored files took the live ones' place and while the restored site is
// being checked: the next dispatch sees the dead worker, marks the task
// failed, and plays back the restore's journal: the live files are back,
// the new database is dropped, nothing is left beside them, and the site
// runs on its database as before. A restore after that works.
func TestRestoreKilledMidwayIsUndone(t *testing.T) {
	t.Parallel()
	h, argsLog, failFlag := newDrupalEnv(t)
	root := h.addDrupal(t, "d1", argsLog, failFlag)
	domain := uniqueDomain("kill")
	dropDBsOf(t, domain)
	must(t, h.home, "site", "install", domain, "--platform", "d1", "--profile", "minimal", "-q")
	db1 := siteRecord(t, h.home, domain)["db_name"].(string)
	if _, err := mariadb(t).Exec("CREATE TABLE `" + db1 + "`.node (title VARCHAR(100)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	_, _ = mariadb(t).Exec("INSERT INTO `" + db1 + "`.node VALUES ('before')")
	siteDir := filepath.Join(root, "sites", domain)
	must(t, h.home, "site", "backup", domain, "-q")
	_, _ = mariadb(t).Exec("INSERT INTO `" + db1 + "`.node VALUES ('after')")
	after := filepath.Join(siteDir, "files", "after.txt")
	if err := os.WriteFile(after, []byte("after"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(failFlag+".hang", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(must(t, h.home, "-y", "site", "restore", domain, "--queue"))
	_ = os.Remove(argsLog)
	child := startAegir(t, h.home, "hosting", "dispatch")
	journal := filepath.Join(h.home, "journal", "task-"+id+".json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(argsLog); strings.Contains(string(b), "status") {
			break // checking the restored site: the swap is done
		}
		if time.Now().After(deadline) {
			t.Fatal("the restore never reached its check")
		}
	}
	if exists(after) {
		t.Fatal("the restored files are not in place when the check runs")
	}
	if fi, err := os.Stat(journal); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal of the running restore: %v %v", err, fi)
	}
	_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
	_ = child.Wait()
	_ = os.Remove(failFlag + ".hang")
	if dbs := siteDBs(t, domain); len(dbs) != 2 {
		t.Fatalf("databases after the kill: %v, want the site's and the restore's", dbs)
	}

	_, errs, _ := aegir(t, h.home, "hosting", "dispatch")
	var task struct {
		Status, Error string
		Log           []struct{ Message string }
	}
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "show", id, "--format", "json")), &task); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for _, l := range task.Log {
		log.WriteString(l.Message + "\n")
	}
	if task.Status != "error" || !strings.Contains(log.String(), "undoing the restore of "+domain) || !strings.Contains(log.String(), "clean-up after the dead dispatcher done") {
		t.Fatalf("the killed restore after the next dispatch: %s %s\n%s\n%s", task.Status, task.Error, log.String(), errs)
	}
	if !exists(after) || exists(journal) {
		t.Fatalf("after the rescue: after.txt there %v (want the live files back), journal there %v", exists(after), exists(journal))
	}
	if left, _ := filepath.Glob(filepath.Join(root, "sites", ".*aegir-*")); len(left) > 0 {
		t.Fatalf("the rescue left %v", left)
	}
	if dbs := siteDBs(t, domain); len(dbs) != 1 || dbs[0] != db1 {
		t.Fatalf("databases after the rescue: %v, want only %s", dbs, db1)
	}
	if rows, err := strings1(mariadb(t), "SELECT title FROM `"+db1+"`.node ORDER BY title"); err != nil || strings.Join(rows, ",") != "after,before" {
		t.Fatalf("rows after the rescue: %v %v", rows, err)
	}
	settings, _ := os.ReadFile(filepath.Join(siteDir, "settings.php"))
	if !strings.Contains(string(settings), "'"+db1+"'") {
		t.Fatal("after the rescue, settings.php does not name the site's database")
	}
	must(t, h.home, "-y", "site", "restore", domain, "-q")
	if exists(after) {
		t.Fatal("a restore after the rescue did not restore")
	}

	// Killed in its clean-up: the restore was done, and its DROP DATABASE
	// of the old database waits for a transaction that reads it. The
	// rescue finishes the clean-up and saves the restore's result.
	old := siteRecord(t, h.home, domain)["db_name"].(string)
	tx, err := mariadb(t).Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SELECT * FROM `" + old + "`.node"); err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(must(t, h.home, "-y", "site", "restore", domain, "--queue"))
	journal = filepath.Join(h.home, "journal", "task-"+id+".json")
	child = startAegir(t, h.home, "hosting", "dispatch")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(journal); strings.Contains(string(b), `"done"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restore never reached its clean-up")
		}
	}
	_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
	_ = child.Wait()
	_ = tx.Rollback()
	_, errs, _ = aegir(t, h.home, "hosting", "dispatch")
	if !strings.Contains(must(t, h.home, "task", "log", id), "was done; finishing its clean-up") {
		t.Fatalf("the rescue of a restore killed in its clean-up:\n%s\n%s", must(t, h.home, "task", "log", id), errs)
	}
	if st := must(t, h.home, "task", "list", "--site", domain, "--format", "csv", "--fields", "id,status,error"); !strings.Contains(st, "\n"+id+",warning,\n") {
		t.Fatalf("the finished restore after the rescue: %q, want warning and no error", st)
	}
	now := siteRecord(t, h.home, domain)["db_name"].(string)
	if now == old || !dbExists(t, now) || dbExists(t, old) || exists(journal) {
		t.Fatalf("after the rescue: record names %s (was %s), it exists %v, the old one exists %v, journal there %v", now, old, dbExists(t, now), dbExists(t, old), exists(journal))
	}
	if left, _ := filepath.Glob(filepath.Join(root, "sites", ".*aegir-*")); len(left) > 0 {
		t.Fatalf("the rescue left %v", left)
	}
	settings, _ = os.ReadFile(filepath.Join(siteDir, "settings.php"))
	if !strings.Contains(string(settings), "'"+now+"'") {
		t.Fatal("after the rescue, settings.php does not name the database the record names")
	}
}
