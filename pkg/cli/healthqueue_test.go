package cli_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// treeSum is a digest of every file's path and content under dir.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// The health queue: a WordPress site that starts answering 500 after its
// install (a must-use plugin fails its pages) is found by the next
// dispatch's site.health task, which ends in error with the reason
// (task list --status error shows it), records the health error 500,
// tells the site.unhealthy webhook once, and changes nothing on the
// server (its virtual hosts and the site's files are as they were). Once
// fixed, the next health run records it ok; failing again, it is told of
// again.
func TestHealthQueueFindsAFailingSite(t *testing.T) {
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "hq")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "-q")
	f, err := os.OpenFile(filepath.Join(h.home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The other queues off: the health queue's task is the dispatch's one.
	fmt.Fprintf(f, "\nqueue:\n  cron:\n    enabled: false\n  stats:\n    enabled: false\n  cert:\n    enabled: false\n")
	f.Close()
	secret := "a-shared-secret-for-the-receiver"
	r := newHookReceiver(t, secret)
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "webhook", "add", r.URL+"/health", "--events", "site.unhealthy", "--secret-file", secretFile, "-q")

	type summary struct{ Ran, Failed, Delivered int }
	// healthRun makes the site due (as when an hour has gone since its
	// last check) and dispatches.
	healthRun := func() summary {
		t.Helper()
		stateExec(t, h.home, `UPDATE sites SET health_checked = NULL WHERE domain = ?`, domain)
		stateExec(t, h.home, `DELETE FROM queue_items WHERE queue = 'health'`)
		stateExec(t, h.home, `UPDATE queue_runs SET last_run = NULL WHERE name = 'health'`)
		var sum summary
		if err := json.Unmarshal([]byte(must(t, h.home, "hosting", "dispatch", "--format", "json")), &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	plugin := filepath.Join(root, "wp-content", "mu-plugins", "break.php")
	breakSite := func() {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(plugin, []byte(fmt.Sprintf(breakOnNew, domain)), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := h.get(t, domain, "/", func(code int, _ string, _ http.Header) bool { return code == 500 }); code != 500 {
			t.Fatalf("the broken site answers %d, want 500", code)
		}
	}

	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" {
		t.Fatalf("health after the install: %+v", hl)
	}
	breakSite()
	// The site still shows its install's health: nothing checked it since.
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" {
		t.Fatalf("health before the health queue ran: %+v", hl)
	}
	cfgBefore, rootBefore := treeSum(t, filepath.Join(h.home, "config")), treeSum(t, root)
	sum := healthRun()
	if sum.Ran != 1 || sum.Failed != 1 || sum.Delivered != 1 {
		t.Fatalf("dispatch of the failing site's health: %+v, want 1 task failed, 1 delivery", sum)
	}
	if hl := siteHealth(t, h.home, domain); hl.Status != "error" || hl.HTTPCode != 500 || !strings.Contains(hl.Error, "HTTP 500") {
		t.Fatalf("health of the site answering 500: %+v", hl)
	}
	var tasks []struct {
		ID     int64
		Type   string
		Status string
		Error  string
	}
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--status", "error", "--format", "json")), &tasks); err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Type != "site.health" || !strings.Contains(tasks[0].Error, "HTTP 500") {
		t.Fatalf("task list --status error: %+v, want the site.health task with the reason", tasks)
	}
	if cfgBefore != treeSum(t, filepath.Join(h.home, "config")) || rootBefore != treeSum(t, root) {
		t.Fatal("the health task changed the server's configuration or the platform's files")
	}
	got := r.events("/health")
	if len(got) != 1 || got[0].Event != "site.unhealthy" || got[0].Site != domain {
		t.Fatalf("webhook received %+v, want one site.unhealthy of %s", got, domain)
	}
	// Still failing: not told again.
	if sum := healthRun(); sum.Ran != 1 || sum.Failed != 1 || sum.Delivered != 0 {
		t.Fatalf("second dispatch of the failing site's health: %+v, want 1 task failed, no delivery", sum)
	}

	// Fixed: ok again, the task ends well.
	if err := os.Remove(plugin); err != nil {
		t.Fatal(err)
	}
	if sum := healthRun(); sum.Ran != 1 || sum.Failed != 0 {
		t.Fatalf("dispatch of the fixed site's health: %+v, want 1 task, none failed", sum)
	}
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 200 || hl.Error != "" {
		t.Fatalf("health of the fixed site: %+v", hl)
	}
	// Failing again: told again.
	breakSite()
	if sum := healthRun(); sum.Failed != 1 || sum.Delivered != 1 || len(r.events("/health")) != 2 {
		t.Fatalf("dispatch of the site failing again: %+v, %d events, want 1 failed, a second site.unhealthy", sum, len(r.events("/health")))
	}
	if err := os.Remove(plugin); err != nil {
		t.Fatal(err)
	}

	// Its database user dropped: the health task says so and, unlike a
	// verify, does not make the user again.
	dbUser := siteRecord(t, h.home, domain)["db_name"].(string)
	if _, err := mariadb(t).Exec("DROP USER `" + dbUser + "`@`127.0.0.1`"); err != nil {
		t.Fatal(err)
	}
	if sum := healthRun(); sum.Ran != 1 || sum.Failed != 1 {
		t.Fatalf("dispatch of the health of a site without its database user: %+v, want 1 failed", sum)
	}
	if hl := siteHealth(t, h.home, domain); hl.Status != "error" || !strings.Contains(hl.Error, dbUser) {
		t.Fatalf("health of a site without its database user: %+v", hl)
	}
	if dbUserExists(t, dbUser) {
		t.Fatal("the health task made the database user again")
	}
	must(t, h.home, "site", "verify", domain, "-q")
	if hl := siteHealth(t, h.home, domain); hl.Status != "ok" {
		t.Fatalf("health after verify made the user again: %+v", hl)
	}
}
