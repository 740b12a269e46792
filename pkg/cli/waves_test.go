package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// breakOnNew is a must-use plugin that makes one domain's pages answer
// 500 through the web server (not in the command line's PHP, which a
// move's own WordPress check runs): a site that works on its old
// platform and fails only on the new one.
const breakOnNew = `<?php
if (PHP_SAPI !== 'cli' && explode(':', $_SERVER['HTTP_HOST'] ?? '')[0] === '%s') {
	http_response_code(500);
	echo 'broken on the new platform';
	exit;
}
`

// migrateProgress is the JSON of a platform migrate's progress.
type migrateProgress struct {
	Task                        int64
	Status                      string
	Done, Failed, Running, Left int
	Skipped                     int
	OnOld                       int `json:"on_old"`
	Waves                       []struct {
		Name  string
		Sites []struct {
			Domain, Status, Error string
			Task                  int64
		}
	}
}

// `platform migrate` of 12 WordPress sites between two WordPress
// platforms, canary 1 and waves of 4, 4 moves at once, with the last site
// of wave 2 failing its health gate on the new platform (a must-use
// plugin there makes its pages answer 500): the canary, wave 1 and the
// rest of wave 2 moved and answer with their content on the new platform;
// the failing site was rolled back and answers on the old one, with one
// database; wave 3 never started; the parent ended in error naming the
// site, and task show and --status say done 8, failed 1, left 3. Without a
// terminal the progress is one line per site. Once the plugin is gone, the
// same command moves the 4 sites left.
func TestPlatformMigrateWaves(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	oldRoot := h.wpPlatform(t, "old")
	newRoot := h.wpPlatform(t, "new")

	// The installs run in one dispatch of 4 workers: the fastest path.
	var sites []string
	for i := 0; i < 12; i++ {
		d := testsite.Domain(t, fmt.Sprintf("mw%02d", i))
		sites = append(sites, d)
		must(t, h.home, "site", "install", d, "--platform", "old", "--title", "Site "+d, "--queue", "-q")
	}
	must(t, h.home, "hosting", "dispatch", "--workers", "4", "-q")
	for _, d := range sites {
		if rec := siteRecord(t, h.home, d); rec["status"] != "installed" {
			t.Fatalf("%s after the installs: %v (aegir task list --site %s)", d, rec["status"], d)
		}
		addPost(t, siteRecord(t, h.home, d)["db_name"].(string), "Post of "+d)
	}
	failing := sites[8] // the last of wave 2: the sites before it started before any failure
	plugin := filepath.Join(newRoot, "wp-content", "mu-plugins", "break.php")
	if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plugin, []byte(fmt.Sprintf(breakOnNew, failing)), 0o644); err != nil {
		t.Fatal(err)
	}

	answers := func(d string) bool {
		t.Helper()
		ok, got := h.pageHas(t, d, "Post of "+d, "")
		if ok {
			ok, got = h.pageHas(t, d, "<title>Site "+d, "")
		}
		if !ok {
			t.Logf("%s answers %s", d, got)
		}
		return ok
	}
	platformOf := func(d string) string { return siteRecord(t, h.home, d)["platform"].(string) }
	settings := func(root, d string) bool { return exists(filepath.Join(root, "wp-content", "aegir-sites", d+".php")) }

	plan := must(t, h.home, "platform", "migrate", "old", "new", "--sites", strings.Join(sites, ","), "--canary", "1", "--wave", "4",
		"--per-server", "4", "--dry-run", "--format", "json")
	var mp struct {
		Waves []struct {
			Name  string
			Sites []struct{ Task, Target string }
		}
	}
	if err := json.Unmarshal([]byte(plan), &mp); err != nil || len(mp.Waves) != 4 || mp.Waves[0].Name != "canary" || mp.Waves[1].Name != "wave 1" ||
		mp.Waves[2].Name != "wave 2" || mp.Waves[3].Name != "wave 3" || len(mp.Waves[0].Sites) != 1 || len(mp.Waves[2].Sites) != 4 ||
		mp.Waves[2].Sites[3].Target != failing || len(mp.Waves[3].Sites) != 3 {
		t.Fatalf("the dry run's plan: %v\n%s", err, plan)
	}
	if platformOf(sites[0]) != "old" {
		t.Fatal("the dry run moved a site")
	}

	out, errs, code := aegir(t, h.home, "platform", "migrate", "old", "new", "--sites", strings.Join(sites, ","), "--canary", "1", "--wave", "4", "--per-server", "4")
	if code != 1 {
		t.Fatalf("platform migrate with a site failing on the new platform: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(errs, failing+" (task ") || !strings.Contains(errs, "fails its health gate on platform new") {
		t.Errorf("the error does not name %s and its health gate:\n%s", failing, errs)
	}
	if n := strings.Count(errs, ": moved to platform new (task "); n != 8 {
		t.Errorf("%d lines of a moved site on stderr (not a terminal), want 8 (one per site):\n%s", n, errs)
	}
	if strings.Contains(errs, "\x1b[") {
		t.Errorf("bars drawn on a pipe:\n%s", errs)
	}
	for i, d := range sites {
		switch {
		case i < 8:
			if p := platformOf(d); p != "new" {
				t.Errorf("%s (wave %d) is on %s, want new", d, (i+3)/4, p)
			}
			if settings(oldRoot, d) || !settings(newRoot, d) {
				t.Errorf("%s: its settings are on old %v, on new %v; want only on new", d, settings(oldRoot, d), settings(newRoot, d))
			}
		case i == 8:
			if p := platformOf(d); p != "old" {
				t.Errorf("the failing site %s is on %s, want old (rolled back)", d, p)
			}
			if settings(newRoot, d) || !settings(oldRoot, d) {
				t.Errorf("the failing site %s: its settings are on old %v, on new %v; want only on old", d, settings(oldRoot, d), settings(newRoot, d))
			}
			if dbs := siteDBs(t, d); len(dbs) != 1 {
				t.Errorf("the failing site %s has the databases %v, want its one", d, dbs)
			}
		default:
			if p := platformOf(d); p != "old" {
				t.Errorf("%s of wave 3 is on %s: the wave started after the failure", d, p)
			}
		}
		if !answers(d) {
			t.Errorf("%s does not answer with its content", d)
		}
	}
	if l := leftovers(t, oldRoot); len(l) > 0 {
		t.Errorf("left on the old platform: %v", l)
	}

	// The parent: task show and --status agree.
	var st migrateProgress
	if err := json.Unmarshal([]byte(must(t, h.home, "platform", "migrate", "old", "new", "--status", "--format", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "error" || st.Done != 8 || st.Failed != 1 || st.Left != 3 || st.OnOld != 4 || len(st.Waves) != 4 {
		t.Errorf("--status: %+v, want error, done 8, failed 1, left 3, 4 on old, 4 waves", st)
	}
	var show struct {
		Status, Error string
		Progress      migrateProgress
	}
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "show", fmt.Sprint(st.Task), "--format", "json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.Status != "error" || !strings.Contains(show.Error, failing) || show.Progress.Done != 8 || show.Progress.Failed != 1 || show.Progress.Left != 3 {
		t.Errorf("task show of the parent: %s %q, progress %+v", show.Status, show.Error, show.Progress)
	}
	if w := show.Progress.Waves[2].Sites[3]; w.Domain != failing || w.Status != "failed" || !strings.Contains(w.Error, "HTTP 500") {
		t.Errorf("the failing site in the progress: %+v", w)
	}
	var kids []struct{ Target, Type string }
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--parent", fmt.Sprint(st.Task), "--format", "json")), &kids); err != nil {
		t.Fatal(err)
	}
	if len(kids) != 9 {
		t.Errorf("the parent has %d children, want 9 (none for wave 3): %+v", len(kids), kids)
	}
	table := must(t, h.home, "task", "show", fmt.Sprint(st.Task))
	if !strings.Contains(table, "done 8, failed 1, left 3") {
		t.Errorf("task show's table has no progress line:\n%s", table)
	}

	// Fixed: the same command goes on with the 4 sites left.
	if err := os.Remove(plugin); err != nil {
		t.Fatal(err)
	}
	out, errs, code = aegir(t, h.home, "platform", "migrate", "old", "new", "--canary", "1", "--wave", "4", "--per-server", "4")
	if code != 0 {
		t.Fatalf("platform migrate after the fix: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if n := strings.Count(errs, ": moved to platform new (task "); n != 4 {
		t.Errorf("the re-run moved %d sites, want the 4 left:\n%s", n, errs)
	}
	for _, d := range sites {
		if p := platformOf(d); p != "new" || !answers(d) || settings(oldRoot, d) {
			t.Errorf("%s after the re-run: on %s, settings on old %v", d, p, settings(oldRoot, d))
		}
	}
	st = migrateProgress{}
	if err := json.Unmarshal([]byte(must(t, h.home, "platform", "migrate", "old", "new", "--status", "--format", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "success" || st.Done != 4 || st.Failed != 0 || st.Left != 0 || st.OnOld != 0 {
		t.Errorf("--status after the re-run: %+v", st)
	}
}

// wpSites installs n WordPress sites on platform (queued, then one
// dispatch of 4 workers: the fastest path) and returns their domains.
func wpSites(t *testing.T, h *hostEnv, platform, prefix string, n int) []string {
	t.Helper()
	var sites []string
	for i := 0; i < n; i++ {
		d := testsite.Domain(t, fmt.Sprintf("%s%02d", prefix, i))
		sites = append(sites, d)
		must(t, h.home, "site", "install", d, "--platform", platform, "--queue", "-q")
	}
	must(t, h.home, "hosting", "dispatch", "--workers", "4", "-q")
	for _, d := range sites {
		if rec := siteRecord(t, h.home, d); rec["status"] != "installed" {
			t.Fatalf("%s after the installs: %v (aegir task list --site %s)", d, rec["status"], d)
		}
	}
	return sites
}

// On a terminal a platform migrate draws a bar per wave, redrawn in place
// as its sites move, and leaves them full at the end.
func TestPlatformMigrateBarsOnTerminal(t *testing.T) {
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "old")
	h.wpPlatform(t, "new")
	wpSites(t, h, "old", "mb", 3)
	shown, code := onTerminal(t, h.home, 100, "platform", "migrate", "old", "new", "--canary", "1", "--wave", "2", "--per-server", "2")
	if code != 0 {
		t.Fatalf("platform migrate on a terminal: exit %d\n%s", code, shown)
	}
	for _, want := range []string{`canary +\[#{40}\] 1/1  done 1, failed 0, left 0`, `wave 1 +\[#{40}\] 2/2  done 2, failed 0, left 0`,
		`wave 1 +\[-{40}\] 0/2`, "\x1b\\[2A\x1b\\[J", `Success:.* platform old migrated in`} {
		if !regexp.MustCompile(want).MatchString(shown) {
			t.Errorf("the terminal did not show %s:\n%q", want, shown)
		}
	}
	if strings.Contains(shown, ": moved to platform new") {
		t.Errorf("a line per site on a terminal, besides the bars:\n%s", shown)
	}
}

// The master killed (SIGKILL) in the middle of a platform migrate: the
// next dispatch marks the parent and its running move failed and rolls the
// move back; the site it was moving answers on the old platform; the same
// command then goes on with the sites left, and every site ends on the new
// platform, answering.
func TestPlatformMigrateAfterKill(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "old")
	h.wpPlatform(t, "new")
	sites := wpSites(t, h, "old", "mk", 4)
	cmd := startAegir(t, h.home, "platform", "migrate", "old", "new", "--canary", "0", "--wave", "4", "--per-server", "1", "-q")
	// Killed once the first site moved and the second is on its way.
	moving := func() (done, running int) {
		var kids []struct{ Status string }
		out, _, _ := aegir(t, h.home, "task", "list", "--type", "site.migrate", "--format", "json")
		_ = json.Unmarshal([]byte(out), &kids)
		for _, k := range kids {
			switch k.Status {
			case "success":
				done++
			case "processing":
				running++
			}
		}
		return done, running
	}
	for end := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if d, r := moving(); d >= 1 && r == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the platform migrate moved no site and started no second one in 3 minutes")
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()

	must(t, h.home, "hosting", "dispatch", "-q")
	var parents []struct{ Status, Error string }
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--type", "platform.migrate", "--format", "json")), &parents); err != nil || len(parents) != 1 ||
		parents[0].Status != "error" || !strings.Contains(parents[0].Error, "dispatcher died") {
		t.Fatalf("the killed parent after a dispatch: %+v %v", parents, err)
	}
	if d, r := moving(); r != 0 || d < 1 {
		t.Errorf("after the rescue: %d moves done, %d still processing", d, r)
	}
	for _, d := range sites {
		if ok, got := h.pageHas(t, d, "<title>"+d, ""); !ok {
			t.Errorf("%s after the kill and rescue: %s", d, got)
		}
	}
	must(t, h.home, "platform", "migrate", "old", "new", "--canary", "0", "--per-server", "2", "-q")
	for _, d := range sites {
		if p := siteRecord(t, h.home, d)["platform"]; p != "new" {
			t.Errorf("%s after the re-run is on %v", d, p)
		}
		if ok, got := h.pageHas(t, d, "<title>"+d, ""); !ok {
			t.Errorf("%s after the re-run: %s", d, got)
		}
		if dbs := siteDBs(t, d); len(dbs) != 1 {
			t.Errorf("%s has the databases %v, want one", d, dbs)
		}
	}
}

// Bad input to platform migrate: one line naming the field, exit 2 (3
// for a platform that does not exist), and no task recorded.
func TestPlatformMigrateBadInput(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	must(t, home, "server", "add", "web1", "--host", "localhost", "--http", "nginx", "--db", "mariadb", "--db-host", "127.0.0.1", "--queue", "-q")
	must(t, home, "platform", "add", "p1", "--server", "web1", "--root", t.TempDir(), "--queue", "-q")
	must(t, home, "platform", "add", "p2", "--server", "web1", "--root", t.TempDir(), "--queue", "-q")
	must(t, home, "platform", "add", "p3", "--server", "web1", "--root", t.TempDir(), "--queue", "-q")
	must(t, home, "site", "install", "other.test", "--platform", "p3", "--queue", "-q")
	tasks := must(t, home, "task", "list", "--format", "count")
	for _, c := range []struct {
		args  []string
		code  int
		field string
	}{
		{[]string{"p1", "p1"}, 2, "NEW"},
		{[]string{"p1", "p2", "--wave", "0"}, 2, "--wave"},
		{[]string{"p1", "p2", "--canary", "-1"}, 2, "--canary"},
		{[]string{"p1", "p2", "--per-server", "0"}, 2, "--per-server"},
		{[]string{"p1", "p2", "--max-failures", "some"}, 2, "--max-failures"},
		{[]string{"p1", "p2", "--max-failures", "120%"}, 2, "--max-failures"},
		{[]string{"p1", "p2", "--sites", "other.test"}, 2, "--sites"},
		{[]string{"p1", "p2", "--sites", "nosuch.test"}, 2, "--sites"},
		{[]string{"p1", "p2", "--status", "--dry-run"}, 2, "--status"},
		{[]string{"p1", "nosuch"}, 3, "nosuch"},
		{[]string{"nosuch", "p2"}, 3, "nosuch"},
	} {
		_, errs, code := aegir(t, home, append([]string{"platform", "migrate"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.field) {
			t.Errorf("platform migrate %v: exit %d, want %d naming %s:\n%s", c.args, code, c.code, c.field, errs)
		}
	}
	if _, errs, code := aegir(t, home, "platform", "migrate", "p1", "p2", "--status"); code != 3 || !strings.Contains(errs, "--dry-run") {
		t.Errorf("--status before any platform migrate: exit %d, want 3 with a hint:\n%s", code, errs)
	}
	if now := must(t, home, "task", "list", "--format", "count"); now != tasks {
		t.Errorf("bad input recorded tasks: %s before, %s after", tasks, now)
	}
	// A locked platform takes no sites: exit 2 with the way to unlock it.
	must(t, home, "platform", "lock", "p2", "-q")
	if _, errs, code := aegir(t, home, "platform", "migrate", "p1", "p2"); code != 2 || !strings.Contains(errs, "locked") || !strings.Contains(errs, "aegir platform unlock p2") {
		t.Errorf("platform migrate onto a locked platform: exit %d, want 2 with the unlock hint:\n%s", code, errs)
	}
	must(t, home, "platform", "unlock", "p2", "-q")
	// A platform with no sites: nothing to do, and no task.
	if _, errs, code := aegir(t, home, "platform", "migrate", "p1", "p2"); code != 0 || !strings.Contains(errs, "no sites left") {
		t.Errorf("platform migrate of a platform with no sites: exit %d\n%s", code, errs)
	}
}
