package cli_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// site sync from a staging clone of a WordPress site to the live site:
// live answers with the staging content (its address rewritten, the new
// upload served), from a new database, the old one dropped; the backup of
// live taken first is recorded and brings live back as it was; staging
// is not changed and no snapshot of it is left. --files alone brings the
// files and leaves the database; a disabled live is refused without
// --force.
func TestSyncWordPress(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	live, liveDB := wordPressSite(t, h, "wp", root, "sy", false, "Live content", "live.txt")
	stg := testsite.Domain(t, "sys")
	must(t, h.home, "site", "clone", live, stg, "-q")
	stgDB := siteRecord(t, h.home, stg)["db_name"].(string)
	addPost(t, stgDB, "Staging news")
	writeUpload(t, root, stg, "new.txt", "new upload")
	addPost(t, liveDB, "Live only")
	before := len(backups(t, h.home, live))

	if _, errs, code := aegir(t, h.home, "site", "sync", live, live); code != cli.ExitUsage {
		t.Fatalf("a sync onto itself: exit %d\n%s", code, errs)
	}
	if _, errs, code := aegir(t, h.home, "site", "sync", stg, live); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, errs)
	}
	if ok, got := h.pageHas(t, live, "Staging news", "Live only"); !ok {
		t.Fatalf("live after the sync: %s", got)
	}
	if _, body, _ := h.get(t, live, "/", func(int, string, http.Header) bool { return true }); strings.Contains(body, stg) {
		t.Fatalf("live still links to the staging address:\n%.2000s", body)
	}
	fileOK := func(code int, body string, _ http.Header) bool { return code == 200 && body == "new upload" }
	if code, body, _ := h.get(t, live, "/wp-content/uploads/"+live+"/2026/01/new.txt", fileOK); !fileOK(code, body, nil) {
		t.Fatalf("the staging upload on live: %d %q", code, body)
	}
	newDB := siteRecord(t, h.home, live)["db_name"].(string)
	if newDB == liveDB || !dbExists(t, newDB) || dbExists(t, liveDB) {
		t.Fatalf("live's databases after the sync: now %s (there %v), before %s (there %v)", newDB, dbExists(t, newDB), liveDB, dbExists(t, liveDB))
	}
	if ok, got := h.pageHas(t, stg, "Staging news", ""); !ok {
		t.Fatalf("staging after the sync: %s", got)
	}
	if left, _ := filepath.Glob(filepath.Join(h.home, "backups", stg+"*")); len(left) > 0 || len(backups(t, h.home, stg)) > 0 {
		t.Fatalf("the sync left a snapshot of staging: %v", left)
	}
	list := backups(t, h.home, live)
	if len(list) != before+1 {
		t.Fatalf("live's backups after the sync: %+v, want one more than %d", list, before)
	}
	// The backup taken first brings live back as it was.
	must(t, h.home, "site", "restore", live, "--backup", strconv.FormatInt(list[0].ID, 10), "-q")
	if ok, got := h.pageHas(t, live, "Live only", "Staging news"); !ok {
		t.Fatalf("live restored from its pre-sync backup: %s", got)
	}

	// The files alone: the upload comes, the database stays.
	writeUpload(t, root, stg, "second.txt", "second upload")
	addPost(t, stgDB, "Second staging post")
	must(t, h.home, "site", "sync", stg, live, "--files", "-q")
	secondOK := func(code int, body string, _ http.Header) bool { return code == 200 && body == "second upload" }
	if code, body, _ := h.get(t, live, "/wp-content/uploads/"+live+"/2026/01/second.txt", secondOK); !secondOK(code, body, nil) {
		t.Fatalf("the upload synced alone: %d %q", code, body)
	}
	if ok, got := h.pageHas(t, live, "Live only", "Second staging post"); !ok {
		t.Fatalf("live after a sync of the files alone: %s", got)
	}

	must(t, h.home, "site", "disable", live, "-q")
	if _, errs, code := aegir(t, h.home, "site", "sync", stg, live); code != cli.ExitUsage || !strings.Contains(errs, "disabled") || !strings.Contains(errs, "--force") {
		t.Fatalf("a sync onto a disabled site: exit %d\n%s", code, errs)
	}
	must(t, h.home, "site", "delete", stg, "--no-backup", "-q")
	must(t, h.home, "site", "delete", live, "--no-backup", "-q")
}

// A dispatcher killed in the middle of a sync, once the source's files
// took the target's place and the target is being checked: the next
// dispatch plays the sync's journal back, so the target has its own
// files and database again, the sync's new database is dropped, and
// nothing is left beside its files; its backup taken first is recorded.
// A sync after that works.
func TestSyncKilledMidwayIsUndone(t *testing.T) {
	t.Parallel()
	h, argsLog, failFlag := newDrupalEnv(t)
	root := h.addDrupal(t, "d1", argsLog, failFlag)
	src, dst := testsite.Domain(t, "kss"), testsite.Domain(t, "ksd")
	for _, d := range []string{src, dst} {
		must(t, h.home, "site", "install", d, "--platform", "d1", "--profile", "minimal", "-q")
		if err := os.WriteFile(filepath.Join(root, "sites", d, "files", "mine.txt"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dstDB := siteRecord(t, h.home, dst)["db_name"].(string)
	mine := filepath.Join(root, "sites", dst, "files", "mine.txt")

	if err := os.WriteFile(failFlag+".hang", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(must(t, h.home, "site", "sync", src, dst, "--queue"))
	_ = os.Remove(argsLog)
	child := startAegir(t, h.home, "hosting", "dispatch")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(argsLog); strings.Contains(string(b), "status") {
			break // checking the synced site: the swap is done
		}
		if time.Now().After(deadline) {
			t.Fatal("the sync never reached its check")
		}
	}
	if b, _ := os.ReadFile(mine); string(b) != src {
		t.Fatalf("the source's files are not in place when the check runs: %q", b)
	}
	_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
	_ = child.Wait()
	_ = os.Remove(failFlag + ".hang")

	aegir(t, h.home, "hosting", "dispatch")
	if st := taskStatus(t, h.home, id); st != "error" {
		t.Fatalf("the killed sync after the next dispatch: %s", st)
	}
	if b, _ := os.ReadFile(mine); string(b) != dst {
		t.Fatalf("after the rescue the target's file says %q, want its own", b)
	}
	if dbs := siteDBs(t, dst); len(dbs) != 1 || dbs[0] != dstDB || siteRecord(t, h.home, dst)["db_name"] != dstDB {
		t.Fatalf("the target's databases after the rescue: %v, want only %s", dbs, dstDB)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "sites", ".*aegir-*")); len(left) > 0 || exists(filepath.Join(h.home, "journal", "task-"+id+".json")) {
		t.Fatalf("the rescue left %v (or the journal)", left)
	}
	if len(backups(t, h.home, dst)) != 1 {
		t.Fatal("the backup the killed sync took first is not recorded")
	}
	// The snapshot of the source was the sync's own: neither kept nor
	// recorded, so nothing of the source may be left in backups/.
	if left, _ := filepath.Glob(filepath.Join(h.home, "backups", "*"+src+"*")); len(left) > 0 || len(backups(t, h.home, src)) > 0 {
		t.Fatalf("the rescue left the sync's snapshot of %s: %v", src, left)
	}
	must(t, h.home, "site", "sync", src, dst, "-q")
	if b, _ := os.ReadFile(mine); string(b) != src {
		t.Fatalf("a sync after the rescue: the target's file says %q", b)
	}
}
