package cli_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/provision/db"
)

// worldState is what a dry run must leave as it was: the state's records
// (as the list commands print them), the sites' databases and users on
// MariaDB, and every file (path, mode, size, time) and directory of the
// platforms and of the aegir home but its state file.
func worldState(t *testing.T, home string, domains []string, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"site", "list"}, {"task", "list"}, {"backup", "list"}, {"platform", "list"}, {"cert", "list"}} {
		b.WriteString(must(t, home, append(args, "--format", "json")...))
	}
	for _, d := range domains {
		base := db.NameFor(d, nil)
		for _, q := range []string{`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? ORDER BY 1`, `SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User LIKE ? ORDER BY 1`} {
			names, err := strings1(mariadb(t), q, base+"%")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, names)
		}
	}
	for _, dir := range append(dirs, home) {
		var lines []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(filepath.Base(p), "aegir.db") {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				// What comes and goes in it is listed; its own time
				// moves with the state's journal files.
				lines = append(lines, fmt.Sprintf("%s %v", p, fi.Mode()))
				return nil
			}
			lines = append(lines, fmt.Sprintf("%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano()))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

type planRec struct {
	Task, Target string
	Changes      []struct{ Kind, Action, What, Server, Detail string }
}

// has says whether the plan has a change of kind with action whose what
// contains what.
func (p planRec) has(kind, action, what string) bool {
	for _, c := range p.Changes {
		if c.Kind == kind && c.Action == action && strings.Contains(c.What, what) {
			return true
		}
	}
	return false
}

// --dry-run on site migrate, restore, delete, sync and edit, and on
// platform migrate (per wave, each site's move), prints what would change, as JSON with --format json, exits 0, and changes nothing:
// the state's records, the databases and users, the platforms' files and
// the home's (virtual hosts, certificates, backups) are as they were.
func TestDryRunsChangeNothing(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	root2 := testenv.WordPressPlatform(t)
	must(t, h.home, "platform", "add", "wp2", "--server", "web1", "--root", root2, "-q")
	live, liveDB := wordPressSite(t, h, "wp", root, "dr", false, "Live", "live.txt")
	stg := testsite.Domain(t, "drs")
	must(t, h.home, "site", "clone", live, stg, "-q")
	must(t, h.home, "site", "backup", live, "-q")
	before := worldState(t, h.home, []string{live, stg}, root, root2)

	plan := func(args ...string) planRec {
		t.Helper()
		out, errs, code := aegir(t, h.home, append(args, "--dry-run", "--format", "json")...)
		if code != 0 {
			t.Fatalf("aegir %s --dry-run: exit %d\n%s", strings.Join(args, " "), code, errs)
		}
		var p planRec
		if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Changes) == 0 {
			t.Fatalf("aegir %s --dry-run printed %q (%v), want a plan", strings.Join(args, " "), out, err)
		}
		if after := worldState(t, h.home, []string{live, stg}, root, root2); after != before {
			t.Fatalf("aegir %s --dry-run changed something:\nbefore:\n%s\nafter:\n%s", strings.Join(args, " "), before, after)
		}
		return p
	}
	vhost := filepath.Join(h.home, "config", "web1", "vhost.d", live+".conf")
	if p := plan("site", "migrate", live, "--platform", "wp2"); p.Task != "site.migrate" || !p.has("database", "create", db.NameFor(live, nil)) ||
		!p.has("database", "remove", liveDB) || !p.has("files", "create", root2) || !p.has("files", "remove", root) ||
		!p.has("vhost", "rewrite", vhost) || !p.has("record", "update", "platform") || !p.has("backup", "create", live) {
		t.Fatalf("the plan of a migrate: %+v", p)
	}
	if p := plan("site", "restore", live); !p.has("files", "replace", filepath.Join(root, "wp-content/uploads", live)) || !p.has("database", "remove", liveDB) {
		t.Fatalf("the plan of a restore: %+v", p)
	}
	if p := plan("site", "delete", live); !p.has("vhost", "remove", vhost) || !p.has("database", "remove", liveDB) || !p.has("db_user", "remove", liveDB) ||
		!p.has("settings", "remove", filepath.Join(root, "wp-content/aegir-sites", live+".php")) || !p.has("backup", "create", live) || !p.has("record", "update", "status") {
		t.Fatalf("the plan of a delete: %+v", p)
	}
	if p := plan("site", "delete", live, "--no-backup"); p.has("backup", "create", live) {
		t.Fatalf("the plan of a delete --no-backup takes a backup: %+v", p)
	}
	if p := plan("site", "sync", stg, live); !p.has("backup", "create", live) || !p.has("files", "replace", live) || !p.has("database", "create", "") {
		t.Fatalf("the plan of a sync: %+v", p)
	}
	if p := plan("site", "sync", stg, live, "--files"); !p.has("database", "keep", liveDB) {
		t.Fatalf("the plan of a sync of the files: %+v", p)
	}
	if p := plan("site", "edit", live, "--add-alias", "www."+live, "--https", "on"); !p.has("record", "update", "aliases") || !p.has("vhost", "rewrite", vhost) ||
		!p.has("certificate", "replace", live) || !p.has("record", "create", "www."+live) {
		t.Fatalf("the plan of an edit: %+v", p)
	}
	// platform migrate: per wave, each site's move as a plan.
	out, errs, code := aegir(t, h.home, "platform", "migrate", "wp", "wp2", "--canary", "1", "--wave", "5", "--max-failures", "1", "--dry-run", "--format", "json")
	if code != 0 {
		t.Fatalf("platform migrate --dry-run: exit %d\n%s", code, errs)
	}
	var mp struct {
		Task, Target, To    string
		Sites, Canary, Wave int
		PerServer           int `json:"per_server"`
		MaxFailures         int `json:"max_failures"`
		Waves               []struct {
			Name  string
			Sites []planRec
		}
	}
	if err := json.Unmarshal([]byte(out), &mp); err != nil || mp.Task != "platform.migrate" || mp.Target != "wp" || mp.To != "wp2" || mp.Sites != 2 ||
		mp.MaxFailures != 1 || len(mp.Waves) != 2 || mp.Waves[0].Name != "canary" || mp.Waves[1].Name != "wave 1" ||
		len(mp.Waves[0].Sites) != 1 || len(mp.Waves[1].Sites) != 1 {
		t.Fatalf("the plan of a platform migrate: %v\n%s", err, out)
	}
	for _, w := range mp.Waves {
		p := w.Sites[0]
		if p.Task != "site.migrate" || !p.has("database", "create", db.NameFor(p.Target, nil)) || !p.has("files", "create", root2) ||
			!p.has("files", "remove", root) || !p.has("record", "update", "platform") || !p.has("backup", "create", p.Target) {
			t.Fatalf("the move of %s in the plan of a platform migrate: %+v", p.Target, p)
		}
	}
	if mp.Waves[0].Sites[0].Target == mp.Waves[1].Sites[0].Target {
		t.Fatalf("one site in two waves: %s", out)
	}
	if after := worldState(t, h.home, []string{live, stg}, root, root2); after != before {
		t.Fatalf("platform migrate --dry-run changed something:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	out, _, code = aegir(t, h.home, "platform", "migrate", "wp", "wp2", "--dry-run")
	if code != 0 || !strings.Contains(out, "canary") || !strings.Contains(out, "wave 1") || !strings.Contains(out, filepath.Join(root2, "wp-content/uploads", live)) {
		t.Fatalf("the plan of a platform migrate as a table: exit %d\n%s", code, out)
	}

	// The table: one change a line.
	out, _, code = aegir(t, h.home, "site", "delete", live, "--dry-run")
	if code != 0 || !strings.Contains(out, "vhost") || !strings.Contains(out, vhost) {
		t.Fatalf("the plan as a table: exit %d\n%s", code, out)
	}
	t.Logf("site delete --dry-run:\n%s", out)
	if after := worldState(t, h.home, []string{live, stg}, root, root2); after != before {
		t.Fatal("a dry run as a table changed something")
	}
	if _, err := os.Stat(vhost); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "site", "delete", stg, "--no-backup", "-q")
	must(t, h.home, "site", "delete", live, "--no-backup", "-q")
}
