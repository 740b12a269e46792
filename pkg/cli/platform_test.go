package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

type platformRec struct {
	Name, Status, Type, Commit, Composer string
	CoreVersion                          string `json:"core_version"`
	GitURL                               string `json:"git_url"`
	GitRef                               string `json:"git_ref"`
	Locked                               bool
}

func platformOf(t *testing.T, home, name string) platformRec {
	t.Helper()
	var p platformRec
	if err := json.Unmarshal([]byte(must(t, home, "platform", "show", name, "--format", "json")), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// refusedLocked runs aegir with args and fails unless it exits 2 saying
// platform is locked, with the hint to unlock it, and site domain was not
// recorded.
func refusedLocked(t *testing.T, home, platform, domain string, args ...string) {
	t.Helper()
	_, errs, code := aegir(t, home, args...)
	if code != cli.ExitUsage || !strings.Contains(errs, `platform "`+platform+`" is locked`) || !strings.Contains(errs, "aegir platform unlock "+platform) {
		t.Fatalf("aegir %s onto a locked platform: exit %d, want 2 with the unlock hint\n%s", strings.Join(args, " "), code, errs)
	}
	if _, _, code := aegir(t, home, "site", "show", domain); code != cli.ExitNotFound {
		t.Fatalf("aegir %s onto a locked platform recorded %s (show: exit %d)", strings.Join(args, " "), domain, code)
	}
}

// A locked platform takes no new sites: install, clone and migrate onto
// it exit 2 with the hint to unlock it and record nothing; its sites are
// verified and migrated away, it is verified (and stays locked) and
// deleted. platform add --locked, and the config key platform.locked, add
// platforms locked; show and list say so.
func TestPlatformLock(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	root2 := testenv.WordPressPlatform(t)
	src, _ := wordPressSite(t, h, "wp", root, "lk", false, "Before the lock", "lock.txt")

	out := must(t, h.home, "platform", "lock", "wp")
	if p := platformOf(t, h.home, "wp"); p.Status != "locked" || !p.Locked || !strings.Contains(out, "locked") {
		t.Fatalf("after lock: %+v\n%s", p, out)
	}
	if list := must(t, h.home, "platform", "list"); !strings.Contains(list, "locked") {
		t.Fatalf("platform list does not show the lock:\n%s", list)
	}
	fresh := testsite.Domain(t, "lkn")
	refusedLocked(t, h.home, "wp", fresh, "site", "install", fresh, "--platform", "wp")
	refusedLocked(t, h.home, "wp", fresh, "site", "clone", src, fresh)

	// A verify of the platform and of its site run, and keep the lock.
	must(t, h.home, "platform", "verify", "wp", "-q")
	must(t, h.home, "site", "verify", src, "-q")
	if p := platformOf(t, h.home, "wp"); p.Status != "locked" || p.Type != "wordpress" {
		t.Fatalf("a verify undid the lock: %+v", p)
	}

	// Added locked: no site goes on it; the site migrates away from wp
	// to it only once it is unlocked.
	must(t, h.home, "platform", "add", "wp2", "--server", "web1", "--root", root2, "--locked", "-q")
	if p := platformOf(t, h.home, "wp2"); p.Status != "locked" || p.CoreVersion == "" {
		t.Fatalf("platform add --locked: %+v", p)
	}
	_, errs, code := aegir(t, h.home, "site", "migrate", src, "--platform", "wp2")
	if code != cli.ExitUsage || !strings.Contains(errs, "aegir platform unlock wp2") {
		t.Fatalf("migrate onto a locked platform: exit %d\n%s", code, errs)
	}
	if rec := siteRecord(t, h.home, src); rec["platform"] != "wp" {
		t.Fatalf("the refused migrate moved the site: %v", rec)
	}
	must(t, h.home, "platform", "unlock", "wp2")
	if p := platformOf(t, h.home, "wp2"); p.Status != "enabled" || p.Locked {
		t.Fatalf("after unlock: %+v", p)
	}
	removeLoginPlugin(t, root2)
	must(t, h.home, "site", "migrate", src, "--platform", "wp2", "-q")
	if ok, got := h.pageHas(t, src, "Before the lock", ""); !ok {
		t.Fatalf("the site migrated away from the locked platform: %s", got)
	}
	// The locked platform, now empty, is deleted.
	must(t, h.home, "platform", "delete", "wp", "-q")

	// The config key locks every new platform.
	f, err := os.OpenFile(filepath.Join(h.home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nplatform:\n  locked: true\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	must(t, h.home, "platform", "add", "wp3", "--server", "web1", "--root", testenv.WordPressPlatform(t), "-q")
	if p := platformOf(t, h.home, "wp3"); p.Status != "locked" {
		t.Fatalf("platform add with platform.locked: true: %+v", p)
	}
	refusedLocked(t, h.home, "wp3", fresh, "site", "install", fresh, "--platform", "wp3")
	must(t, h.home, "site", "delete", src, "--no-backup", "-q")
}
