package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
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
	_, errs, code := aegir(t, m2, "site", "restore", domain)
	if code == 0 || !strings.Contains(errs, fmt.Sprintf("backup %d of %s is on master m1 (%s)", b.ID, domain, b.Path)) ||
		!strings.Contains(errs, "hint: run the task on master m1, or copy the archive to the same path here") {
		t.Fatalf("restore on m2 without the archive: exit %d\n%s", code, errs)
	}
	if rec := siteRecord(t, h.home, domain); rec["db_name"] != db1 || rec["status"] != "installed" {
		t.Fatalf("the refused restore changed the site: %v", rec)
	}
	if ok, got := h.pageHas(t, domain, "Made after the backup", ""); !ok {
		t.Fatalf("the site does not answer as before the refused restore: %s", got)
	}

	// On m1 itself a missing archive is the back end's to refuse, as
	// ever: the message is not about another master.
	_, errs, code = aegir(t, h.home, "site", "restore", domain)
	if code == 0 || strings.Contains(errs, "is on master") {
		t.Fatalf("restore on m1 without the archive: exit %d\n%s", code, errs)
	}

	// With the archive at its path (shared storage), m1 restores it.
	if err := os.Rename(away, b.Path); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "site", "restore", domain, "-q")
	if ok, got := h.pageHas(t, domain, "Made before the backup", "Made after the backup"); !ok {
		t.Fatalf("after the restore on m1: %s", got)
	}
}
