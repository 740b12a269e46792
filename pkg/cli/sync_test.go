package cli_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
