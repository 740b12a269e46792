package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/provision/privhelper"
)

// asAegirEnv makes the test binary act as the aegir command (its
// arguments after --), for tests that need aegir in a process of its own.
const asAegirEnv = "AEGIR_CLI_TEST_AS_AEGIR"

func TestMain(m *testing.M) {
	// A copy of the test binary that testenv.InstallHelper made, started
	// by sudo, is the privileged helper.
	if privhelper.Invoked(os.Args[0]) {
		exe, _ := os.Executable()
		os.Exit(privhelper.Main(os.Args[1:], testenv.HelperConfig(exe), os.Stdout, os.Stderr))
	}
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

// aegirCmd is aegir on home, as a process of its own (not started).
func aegirCmd(t *testing.T, home string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, append([]string{"-test.run=^$", "--", "--home", home}, args...)...)
	cmd.Env = append(os.Environ(), asAegirEnv+"=1")
	return cmd
}

// startAegir starts aegir in a process (and process group) of its own.
func startAegir(t *testing.T, home string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := aegirCmd(t, home, args...)
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
	domain := testsite.Domain(t, "kill")
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

// treeFiles lists the files under dir (none when it is absent), with
// their total size.
func treeFiles(dir string) (files []string, size int64) {
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
			size += fi.Size()
		}
		return nil
	})
	return files, size
}

// waitFor polls cond until it holds or 30 seconds passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// killDispatcher SIGKILLs the dispatcher's process group (aegir's own;
// the commands it started run in groups of their own, and live on).
func killDispatcher(child interface{ Wait() error }, pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = child.Wait()
}

// A dispatcher killed (SIGKILL) while drush installs a site, in a process
// group of its own that lives on: the next dispatch kills that installer
// before it undoes the install (database, user, settings and files), takes
// no backup of the half-made site, leaves no temporary file in the aegir
// home, and aegir task retry then installs the site.
func TestInstallKilledMidwayIsUndone(t *testing.T) {
	t.Parallel()
	h, argsLog, failFlag := newDrupalEnv(t)
	root := h.addDrupal(t, "d1", argsLog, failFlag)
	hang := failFlag + ".install"
	pidFile := failFlag + ".pid"
	// The stand-in drush hangs in site:install while hang exists, its
	// pid in pidFile.
	drush := filepath.Join(root, "vendor/bin/drush")
	orig, err := os.ReadFile(drush)
	if err != nil {
		t.Fatal(err)
	}
	script := strings.Replace(string(orig), "echo '[success] done.'",
		"for a in \"$@\"; do [ \"$a\" = site:install ] && [ -e "+hang+" ] && { echo $$ > "+pidFile+"; sleep 120; }; done\necho '[success] done.'", 1)
	if err := os.WriteFile(drush, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	domain := testsite.Domain(t, "kinst")
	id := strings.TrimSpace(must(t, h.home, "site", "install", domain, "--platform", "d1", "--profile", "minimal", "--queue"))
	child := startAegir(t, h.home, "hosting", "dispatch")
	var pid int
	waitFor(t, "the installer to start", func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	killDispatcher(child, child.Process.Pid)
	dbName := siteRecord(t, h.home, domain)["db_name"].(string)
	siteDir := filepath.Join(root, "sites", domain)
	if !testenv.ProcessAlive(pid) || !dbExists(t, dbName) || !exists(filepath.Join(siteDir, "settings.php")) {
		t.Fatalf("after kill -9 of the dispatcher: installer alive %v, database there %v, settings there %v; want all three",
			testenv.ProcessAlive(pid), dbExists(t, dbName), exists(filepath.Join(siteDir, "settings.php")))
	}
	leftBefore, bytesBefore := treeFiles(filepath.Join(h.home, "tmp"))
	t.Logf("left by the killed install: %d files, %d bytes under HOME/tmp: %v", len(leftBefore), bytesBefore, leftBefore)

	_, errs, _ := aegir(t, h.home, "hosting", "dispatch")
	log := must(t, h.home, "task", "log", id)
	if testenv.ProcessAlive(pid) {
		t.Errorf("the installer (pid %d) still runs after the rescue\n%s", pid, log)
	}
	if !strings.Contains(log, "killed process group") {
		t.Errorf("the rescue does not say it killed the installer:\n%s\n%s", log, errs)
	}
	if dbExists(t, dbName) || dbUserExists(t, dbName) || exists(siteDir) {
		t.Errorf("after the rescue: database %v, user %v, site directory %v; want none\n%s", dbExists(t, dbName), dbUserExists(t, dbName), exists(siteDir), log)
	}
	if left, size := treeFiles(filepath.Join(h.home, "tmp")); len(left) > 0 {
		t.Errorf("after the rescue, HOME/tmp holds %d files (%d bytes): %v", len(left), size, left)
	}
	if left, _ := treeFiles(filepath.Join(h.home, "backups")); len(left) > 0 || strings.Contains(log, "backing up") {
		t.Errorf("the rescue backed up the half-made site: %v\n%s", left, log)
	}
	// Nobody asked for --no-backup: the log says why there is none.
	if strings.Contains(log, "--no-backup") || !strings.Contains(log, "no backup taken first: the install never finished") {
		t.Errorf("the rescue does not say why it took no backup:\n%s", log)
	}
	if left, _ := filepath.Glob(filepath.Join(h.home, "journal", "*")); len(left) > 0 {
		t.Errorf("the rescue left %v in the journal directory", left)
	}

	_ = os.Remove(hang)
	retry := strings.TrimSpace(must(t, h.home, "task", "retry", id))
	must(t, h.home, "hosting", "dispatch")
	// (warning: the stand-in Drupal cannot tell which packages it has on)
	if st := taskStatus(t, h.home, retry); st != "success" && st != "warning" {
		t.Fatalf("the retried install ended %s:\n%s", st, must(t, h.home, "task", "log", retry))
	}
	if rec := siteRecord(t, h.home, domain); rec["status"] != "installed" || !dbExists(t, rec["db_name"].(string)) {
		t.Fatalf("after the retry: %v", rec)
	}
	if left, _ := treeFiles(filepath.Join(h.home, "tmp")); len(left) > 0 {
		t.Errorf("the install that worked left %v", left)
	}
}

// A dispatcher killed (SIGKILL) while it backs a site up, its dump blocked
// by a table lock: the next dispatch kills the dump, removes the archive
// it was writing and the dump's credentials file (the database admin's
// password), logs what it removed, and aegir task retry then takes the
// backup.
func TestBackupKilledMidwayLeavesNothing(t *testing.T) {
	t.Parallel()
	h, argsLog, failFlag := newDrupalEnv(t)
	h.addDrupal(t, "d1", argsLog, failFlag)
	domain := testsite.Domain(t, "kbak")
	must(t, h.home, "site", "install", domain, "--platform", "d1", "--profile", "minimal", "-q")
	db1 := siteRecord(t, h.home, domain)["db_name"].(string)
	admin := mariadb(t)
	for _, q := range []string{
		"CREATE TABLE `" + db1 + "`.a_big (v TEXT) ENGINE=InnoDB",
		"INSERT INTO `" + db1 + "`.a_big SELECT CONCAT(SHA2(RAND(),512), SHA2(RAND(),512), SHA2(RAND(),512), SHA2(RAND(),512)) FROM `" + db1 + "`.seq_1_to_20000",
		"CREATE TABLE `" + db1 + "`.z_locked (v INT) ENGINE=InnoDB",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := admin.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "LOCK TABLES `"+db1+"`.z_locked WRITE"); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(must(t, h.home, "site", "backup", domain, "--queue"))
	child := startAegir(t, h.home, "hosting", "dispatch")
	tmpDir := filepath.Join(h.home, "tmp", "task-"+id)
	backupDir := filepath.Join(h.home, "backups")
	waitFor(t, "the dump to block on the lock", func() bool {
		var n int
		_ = admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock' AND INFO LIKE '%z_locked%'").Scan(&n)
		return n > 0
	})
	killDispatcher(child, child.Process.Pid)
	cnf, _ := filepath.Glob(filepath.Join(tmpDir, "aegir-db.*", "my.cnf"))
	archives, _ := filepath.Glob(filepath.Join(backupDir, ".*.tmp-*"))
	if len(cnf) != 1 || len(archives) != 1 {
		t.Fatalf("after kill -9 of the dispatcher: credentials files %v under %s, half-written archives %v; want one of each", cnf, tmpDir, archives)
	}
	tmpFiles, tmpBytes := treeFiles(filepath.Join(h.home, "tmp"))
	fi, _ := os.Stat(archives[0])
	t.Logf("left by the killed backup: %s (%d bytes), %d files (%d bytes) under HOME/tmp", filepath.Base(archives[0]), fi.Size(), len(tmpFiles), tmpBytes)

	_, errs, _ := aegir(t, h.home, "hosting", "dispatch")
	log := must(t, h.home, "task", "log", id)
	if left, size := treeFiles(filepath.Join(h.home, "tmp")); len(left) > 0 {
		t.Errorf("after the rescue, HOME/tmp holds %d files (%d bytes): %v\n%s\n%s", len(left), size, left, log, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(backupDir, ".*")); len(left) > 0 {
		t.Errorf("after the rescue, the backups directory holds %v", left)
	}
	if !strings.Contains(log, "killed process group") || !strings.Contains(log, "removed what task "+id+" left behind") || !strings.Contains(log, filepath.Base(archives[0])) {
		t.Errorf("the rescue does not say what it killed and removed:\n%s", log)
	}
	// The dump no longer waits for the lock.
	var waiting int
	_ = admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%z_locked%' AND ID <> CONNECTION_ID()").Scan(&waiting)
	if _, err := conn.ExecContext(t.Context(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	if waiting != 0 {
		// The server notices a dead client only when it writes to it.
		t.Logf("%d dump queries still listed by the server after the rescue", waiting)
	}

	retry := strings.TrimSpace(must(t, h.home, "task", "retry", id))
	must(t, h.home, "hosting", "dispatch")
	if st := taskStatus(t, h.home, retry); st != "success" {
		t.Fatalf("the retried backup ended %s:\n%s", st, must(t, h.home, "task", "log", retry))
	}
	if list := backups(t, h.home, domain); len(list) != 1 {
		t.Fatalf("backups after the retry: %+v, want one", list)
	}
	if left, _ := treeFiles(filepath.Join(h.home, "tmp")); len(left) > 0 {
		t.Errorf("the backup that worked left %v", left)
	}
}
