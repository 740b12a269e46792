package cli_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/provision/db"
)

// wpPlatform adds a new WordPress tree (testenv.WordPressPlatform) as
// platform name on web1 and returns its root.
func (h *hostEnv) wpPlatform(t *testing.T, name string) string {
	t.Helper()
	root := testenv.WordPressPlatform(t)
	must(t, h.home, "platform", "add", name, "--server", "web1", "--root", root, "-q")
	return root
}

// strings1 runs a query of one string column on db.
func strings1(db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// siteDBs lists the databases whose names start with the one derived
// from domain.
func siteDBs(t *testing.T, domain string) []string {
	t.Helper()
	base := db.NameFor(domain, nil)
	out, err := strings1(mariadb(t), `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? ORDER BY 1`, base+"%")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// addPost publishes a post straight into a WordPress site's database.
func addPost(t *testing.T, dbName, title string) {
	t.Helper()
	_, err := mariadb(t).Exec("INSERT INTO `"+dbName+"`.wp_posts (post_author, post_title, post_content, post_status, post_type, post_date, post_date_gmt, post_modified, post_modified_gmt, to_ping, pinged, post_content_filtered, post_excerpt, post_name) VALUES (1, ?, ?, 'publish', 'post', NOW(), UTC_TIMESTAMP(), NOW(), UTC_TIMESTAMP(), '', '', '', '', ?)",
		title, "Text of "+title, strings.ToLower(strings.ReplaceAll(title, " ", "-")))
	if err != nil {
		t.Fatal(err)
	}
}

// writeUpload puts a file into a WordPress site's uploads.
func writeUpload(t *testing.T, root, domain, name, content string) string {
	t.Helper()
	p := filepath.Join(root, "wp-content", "uploads", domain, "2026", "01", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wordPressSite installs a WordPress site (with an alias www.DOMAIN when
// alias) on platform, publishes a post titled post and puts a file in its
// uploads, and returns its domain and database.
func wordPressSite(t *testing.T, h *hostEnv, platform, root, prefix string, alias bool, post, upload string) (domain, dbName string) {
	t.Helper()
	domain = testsite.Unique(prefix)
	testsite.DropDBsOf(t, domain)
	args := []string{"site", "install", domain, "--platform", platform, "-q"}
	if alias {
		args = append(args, "--alias", "www."+domain)
	}
	must(t, h.home, args...)
	dbName = siteRecord(t, h.home, domain)["db_name"].(string)
	addPost(t, dbName, post)
	writeUpload(t, root, domain, upload, upload+" content")
	return domain, dbName
}

type backupRec struct {
	ID         int64
	Site       string
	SiteStatus string `json:"site_status"`
	Path       string
	Size       int64
	SHA256     string
	Created    time.Time
	Master     string
}

func backups(t *testing.T, home, domain string) []backupRec {
	t.Helper()
	var list []backupRec
	if err := json.Unmarshal([]byte(must(t, home, "backup", "list", "--site", domain, "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// leftovers lists staging and set-aside paths a move left on a platform.
func leftovers(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"wp-content/uploads/.*aegir-*", "wp-content/aegir-sites/.*aegir-*"} {
		m, _ := filepath.Glob(filepath.Join(root, pat))
		out = append(out, m...)
	}
	return out
}

// pageHas fetches the home page of domain once and says whether it
// shows want (and, when not empty, not unwanted).
func (h *hostEnv) pageHas(t *testing.T, domain, want, unwanted string) (bool, string) {
	t.Helper()
	ok := func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, want) && (unwanted == "" || !strings.Contains(body, unwanted))
	}
	code, body, _ := h.get(t, domain, "/", ok)
	return ok(code, body, nil), fmt.Sprintf("%d %.300s", code, body)
}

// Backup and restore of a real WordPress site: the archive is private and
// checks out; content made before the backup is back after the restore
// and content made after it is gone; a damaged backup fails verify and is
// refused by restore with nothing changed, both when the file no longer
// matches its recorded checksum and when a member no longer matches the
// manifest.
func TestBackupRestoreWordPress(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain, db1 := wordPressSite(t, h, "wp", root, "rs", true, "Made before the backup", "before.txt")

	start := time.Now()
	var b backupRec
	if err := json.Unmarshal([]byte(must(t, h.home, "site", "backup", domain, "--format", "json", "-q")), &b); err != nil {
		t.Fatal(err)
	}
	t.Logf("site backup: %s", time.Since(start).Round(time.Millisecond))
	st, err := os.Stat(b.Path)
	if err != nil || st.Mode().Perm() != 0o600 || filepath.Dir(b.Path) != filepath.Join(h.home, "backups") || b.Site != domain || b.Size != st.Size() {
		t.Fatalf("backup %+v: %v %v", b, err, st)
	}
	if out, _, code := aegir(t, h.home, "backup", "verify", fmt.Sprint(b.ID), "--format", "json"); code != 0 || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("backup verify: exit %d\n%s", code, out)
	}

	addPost(t, db1, "Made after the backup")
	after := writeUpload(t, root, domain, "after.txt", "after")
	if ok, got := h.pageHas(t, domain, "Made after the backup", ""); !ok {
		t.Fatalf("the new post does not show: %s", got)
	}

	removeLoginPlugin(t, root)
	start = time.Now()
	_, errs, code := aegir(t, h.home, "site", "restore", domain)
	if code != 0 {
		t.Fatalf("site restore: exit %d\n%s", code, errs)
	}
	t.Logf("site restore: %s", time.Since(start).Round(time.Millisecond))
	checkLoginPluginBack(t, h, root, domain)
	if ok, got := h.pageHas(t, domain, "Made before the backup", "Made after the backup"); !ok {
		t.Fatalf("after restore, want the post made before and not the one after: %s", got)
	}
	// WordPress sends an alias to the site's own address.
	canonical := func(code int, _ string, hdr http.Header) bool {
		return code == 301 && strings.HasPrefix(hdr.Get("Location"), "http://"+domain+":")
	}
	if code, _, hdr := h.get(t, "www."+domain, "/", canonical); !canonical(code, "", hdr) {
		t.Fatalf("the alias after restore: %d %s", code, hdr.Get("Location"))
	}
	if exists(after) || !exists(filepath.Join(root, "wp-content/uploads", domain, "2026/01/before.txt")) {
		t.Fatalf("uploads after restore: after.txt there %v, before.txt there %v", exists(after), exists(filepath.Join(root, "wp-content/uploads", domain, "2026/01/before.txt")))
	}
	db2 := siteRecord(t, h.home, domain)["db_name"].(string)
	if db2 == db1 || !dbExists(t, db2) || dbExists(t, db1) || dbUserExists(t, db1) {
		t.Fatalf("databases after restore: record %s (was %s); old still there: %v", db2, db1, dbExists(t, db1))
	}
	if left := leftovers(t, root); len(left) > 0 {
		t.Fatalf("restore left behind: %v", left)
	}

	// Damaged: one byte of the archive changed. verify names the
	// problem; restore refuses before it touches anything.
	addPost(t, db2, "Made after the restore")
	bad := filepath.Join(filepath.Dir(b.Path), "copy-of-"+filepath.Base(b.Path))
	orig, _ := os.ReadFile(b.Path)
	damaged := append([]byte(nil), orig...)
	damaged[len(damaged)/2] ^= 0x20
	if err := os.WriteFile(b.Path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := aegir(t, h.home, "backup", "verify", fmt.Sprint(b.ID), "--format", "json")
	if code != cli.ExitFailed || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, "SHA-256") {
		t.Fatalf("verify of a damaged backup: exit %d\n%s", code, out)
	}
	_, errs, code = aegir(t, h.home, "site", "restore", domain, "--backup", fmt.Sprint(b.ID))
	if code != cli.ExitFailed || !strings.Contains(errs, "refusing the backup") || !strings.Contains(errs, "hint: ") {
		t.Fatalf("restore of a damaged backup: exit %d\n%s", code, errs)
	}
	assertUnchanged := func(when string) {
		t.Helper()
		if rec := siteRecord(t, h.home, domain); rec["db_name"] != db2 {
			t.Fatalf("%s: the site's database changed to %v", when, rec["db_name"])
		}
		if dbs := siteDBs(t, domain); len(dbs) != 1 || dbs[0] != db2 {
			t.Fatalf("%s: databases %v, want only %s", when, dbs, db2)
		}
		if left := leftovers(t, root); len(left) > 0 {
			t.Fatalf("%s: left behind %v", when, left)
		}
		if ok, got := h.pageHas(t, domain, "Made after the restore", ""); !ok {
			t.Fatalf("%s: the site lost what it had: %s", when, got)
		}
	}
	assertUnchanged("refused restore")

	// Damaged before its checksum was taken (the record agrees with the
	// file): the members' checks catch it while unpacking, and everything
	// the restore had made is undone.
	sum := sha256.Sum256(damaged)
	state, err := sql.Open("sqlite", "file:"+filepath.Join(h.home, "aegir.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	if _, err := state.Exec(`UPDATE backups SET sha256 = ? WHERE id = ?`, hex.EncodeToString(sum[:]), b.ID); err != nil {
		t.Fatal(err)
	}
	_, errs, code = aegir(t, h.home, "site", "restore", domain, "--backup", fmt.Sprint(b.ID))
	if code != cli.ExitFailed || !strings.Contains(errs, "refusing the backup") || !strings.Contains(errs, "rollback: drop database") {
		t.Fatalf("restore of a backup damaged inside: exit %d\n%s", code, errs)
	}
	assertUnchanged("restore stopped while unpacking")
	_ = os.Remove(bad)

	// Delete takes a backup first, then the site is gone.
	n := len(backups(t, h.home, domain))
	must(t, h.home, "site", "delete", domain, "-q")
	list := backups(t, h.home, domain)
	if len(list) != n+1 || !exists(list[0].Path) {
		t.Fatalf("backups after delete: %+v (had %d)", list, n)
	}
	if dbs := siteDBs(t, domain); len(dbs) != 0 {
		t.Fatalf("databases left after delete: %v", dbs)
	}
	must(t, h.home, "backup", "delete", fmt.Sprint(list[0].ID), "-q")
	if exists(list[0].Path) || len(backups(t, h.home, domain)) != n {
		t.Fatal("backup delete left the file or the record")
	}
}

// Migrate a WordPress site from one platform and database server to
// another (a second server record for the same MariaDB: the database gets
// a new name there, so old and new can be told apart), then to a new
// domain; and a migrate that fails at its last step leaves the site
// working where it was.
func TestMigrateWordPress(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	root1 := testenv.WordPressPlatform(t)
	root2 := testenv.WordPressPlatform(t)
	must(t, h.home, "platform", "add", "wp1", "--server", "web1", "--root", root1, "-q")
	must(t, h.home, "platform", "add", "wp2", "--server", "web1", "--root", root2, "-q")
	must(t, h.home, "server", "add", "db2", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1", "-q")
	domain, db1 := wordPressSite(t, h, "wp1", root1, "mg", true, "Content that moves", "moves.txt")

	removeLoginPlugin(t, root2)
	start := time.Now()
	_, errs, code := aegir(t, h.home, "site", "migrate", domain, "--platform", "wp2", "--db-server", "db2")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, errs)
	}
	t.Logf("site migrate: %s", time.Since(start).Round(time.Millisecond))
	checkLoginPluginBack(t, h, root2, domain)
	rec := siteRecord(t, h.home, domain)
	db2 := rec["db_name"].(string)
	if rec["platform"] != "wp2" || rec["db_server"] != "db2" || db2 == db1 || !dbExists(t, db2) || dbExists(t, db1) || dbUserExists(t, db1) {
		t.Fatalf("after migrate: record %v; old database there %v", rec, dbExists(t, db1))
	}
	if ok, got := h.pageHas(t, domain, "Content that moves", ""); !ok {
		t.Fatalf("the migrated site: %s", got)
	}
	fileOK := func(code int, body string, _ http.Header) bool { return code == 200 && body == "moves.txt content" }
	if code, body, _ := h.get(t, domain, "/wp-content/uploads/"+domain+"/2026/01/moves.txt", fileOK); !fileOK(code, body, nil) {
		t.Fatalf("the uploaded file over HTTP after migrate: %d %q", code, body)
	}
	if exists(filepath.Join(root1, "wp-content/uploads", domain)) || exists(filepath.Join(root1, "wp-content/aegir-sites", domain+".php")) {
		t.Fatal("the site's files are still on the old platform")
	}
	if len(backups(t, h.home, domain)) != 1 {
		t.Fatal("the migrate's backup was not recorded")
	}
	// WordPress is loaded once after the move, for its check and its
	// packages both; the packages it has enabled are recorded on wp2.
	var moves []struct{ ID int64 }
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--site", domain, "--type", "site.migrate", "--format", "json")), &moves); err != nil || len(moves) != 1 {
		t.Fatalf("the migrate's task: %v %v", moves, err)
	}
	log := must(t, h.home, "task", "log", fmt.Sprint(moves[0].ID))
	if n := strings.Count(log, "the code of aegir's wp-status.php"); n != 1 {
		t.Fatalf("the migrate loaded WordPress's status %d times, want once (its check's read gives its packages):\n%s", n, log)
	}
	// Between two platforms of one WordPress the database needs no
	// upgrade: the step is not run (a later migrate with an older
	// db_version runs it).
	if !strings.Contains(log, "is up to date for platform wp2 (db_version ") || strings.Contains(log, "wp-upgrade.php") {
		t.Fatalf("the migrate between two platforms of one WordPress ran its database upgrade:\n%s", log)
	}
	var pkgs []struct {
		Name, Type, Platform string
		Enabled              bool
	}
	if err := json.Unmarshal([]byte(must(t, h.home, "package", "list", "--site", domain, "--format", "json")), &pkgs); err != nil {
		t.Fatal(err)
	}
	enabled := map[string]bool{}
	for _, p := range pkgs {
		if p.Enabled {
			enabled[p.Type] = true
		}
	}
	if !enabled["core"] || !enabled["theme"] {
		t.Fatalf("the packages recorded after the migrate: %+v", pkgs)
	}

	// A failing last step: the web server's config test refuses the new
	// virtual host (a broken template). Everything is undone; the site
	// answers where it was, from the same database.
	tmpl := filepath.Join(h.home, "templates", "nginx-site.conf.tmpl")
	if err := os.WriteFile(tmpl, []byte("server { this is not nginx; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code = aegir(t, h.home, "site", "migrate", domain, "--platform", "wp1", "--db-server", "web1")
	if code != cli.ExitFailed || !strings.Contains(errs, "rolling back") || !strings.Contains(errs, "hint: ") {
		t.Fatalf("migrate with a broken template: exit %d\n%s", code, errs)
	}
	_ = os.Remove(tmpl)
	if rec := siteRecord(t, h.home, domain); rec["platform"] != "wp2" || rec["db_name"] != db2 {
		t.Fatalf("a failed migrate changed the record: %v", rec)
	}
	if dbs := siteDBs(t, domain); len(dbs) != 1 || dbs[0] != db2 {
		t.Fatalf("databases after a failed migrate: %v", dbs)
	}
	if exists(filepath.Join(root1, "wp-content/uploads", domain)) || exists(filepath.Join(root1, "wp-content/aegir-sites", domain+".php")) {
		t.Fatal("a failed migrate left files on the platform it was going to")
	}
	if ok, got := h.pageHas(t, domain, "Content that moves", ""); !ok {
		t.Fatalf("the site after a failed migrate: %s", got)
	}

	// A new domain on the same platform: the site answers there, with its
	// addresses rewritten, and no more on the old one.
	// Its database is made older first: the move's upgrade step runs.
	if _, err := mariadb(t).Exec("UPDATE `" + db2 + "`.wp_options SET option_value = '44000' WHERE option_name = 'db_version'"); err != nil {
		t.Fatal(err)
	}
	nd := testsite.Domain(t, "mn")
	must(t, h.home, "site", "migrate", domain, "--platform", "wp2", "--domain", nd, "-q")
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--type", "site.migrate", "--limit", "1", "--format", "json")), &moves); err != nil || len(moves) != 1 {
		t.Fatalf("the migrate's task: %v %v", moves, err)
	}
	if log := must(t, h.home, "task", "log", fmt.Sprint(moves[0].ID)); !strings.Contains(log, "WordPress database upgraded from db_version 44000") {
		t.Fatalf("the migrate of a site with an older database did not upgrade it:\n%s", log)
	}
	if ok, got := h.pageHas(t, nd, "Content that moves", "http://"+domain); !ok {
		t.Fatalf("the site on its new domain (no old addresses): %s", got)
	}
	gone := func(code int, body string, _ http.Header) bool { return !strings.Contains(body, "Content that moves") }
	if code, body, _ := h.get(t, domain, "/", gone); !gone(code, body, nil) {
		t.Fatalf("the old domain still serves the site: %d", code)
	}
	if _, _, code := aegir(t, h.home, "site", "show", domain); code != cli.ExitNotFound {
		t.Fatalf("site show of the old domain: exit %d", code)
	}
	if rec := siteRecord(t, h.home, nd); rec["platform"] != "wp2" || rec["db_server"] != "db2" {
		t.Fatalf("record after the domain change: %v", rec)
	}
	// The alias went with the site: it serves the site, whose links are
	// the new domain's.
	if ok, got := h.pageHas(t, "www."+domain, "Content that moves", "http://"+domain+":"); !ok {
		t.Fatalf("the alias after the domain change: %s", got)
	}
	if left := append(leftovers(t, root1), leftovers(t, root2)...); len(left) > 0 {
		t.Fatalf("migrates left behind: %v", left)
	}
	// A backup from before the domain change, restored: its old address
	// is rewritten to the site's new one.
	list := backups(t, h.home, nd)
	if len(list) != 3 {
		t.Fatalf("backups of the migrated site: %+v", list)
	}
	must(t, h.home, "site", "restore", nd, "--backup", fmt.Sprint(list[len(list)-1].ID), "-q")
	if ok, got := h.pageHas(t, nd, "Content that moves", "http://"+domain+":"); !ok {
		t.Fatalf("restored from before the domain change: %s", got)
	}
	must(t, h.home, "site", "delete", nd, "--no-backup", "-q")
}

// A clone answers on its own domain with the source's content, from its
// own database with its own user, password and secrets; the source is
// untouched. Bad requests are refused before anything is done.
func TestCloneWordPress(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	src, srcDB := wordPressSite(t, h, "wp", root, "cs", false, "Original content", "shared.txt")
	dst := testsite.Domain(t, "cd")

	// Refused: a domain in use, a platform that does not exist.
	if _, errs, code := aegir(t, h.home, "site", "clone", src, src); code != cli.ExitUsage {
		t.Fatalf("clone onto its own domain: exit %d\n%s", code, errs)
	}
	if _, errs, code := aegir(t, h.home, "site", "clone", src, dst, "--platform", "nope"); code != cli.ExitNotFound {
		t.Fatalf("clone onto a missing platform: exit %d\n%s", code, errs)
	}

	removeLoginPlugin(t, root)
	start := time.Now()
	_, errs, code := aegir(t, h.home, "site", "clone", src, dst)
	if code != 0 {
		t.Fatalf("clone: exit %d\n%s", code, errs)
	}
	t.Logf("site clone: %s", time.Since(start).Round(time.Millisecond))
	checkLoginPluginBack(t, h, root, dst)
	rec := siteRecord(t, h.home, dst)
	dstDB, _ := rec["db_name"].(string)
	if rec["status"] != "installed" || dstDB == "" || dstDB == srcDB || !dbExists(t, dstDB) || !dbUserExists(t, dstDB) {
		t.Fatalf("clone record %v", rec)
	}
	if siteDBPassword(t, h.home, dst) == siteDBPassword(t, h.home, src) {
		t.Fatal("the clone shares the source's database password")
	}
	if ok, got := h.pageHas(t, dst, "Original content", "http://"+src); !ok {
		t.Fatalf("the clone on its domain: %s", got)
	}
	if ok, got := h.pageHas(t, src, "Original content", ""); !ok {
		t.Fatalf("the source after the clone: %s", got)
	}
	salt := func(domain string) string {
		b, _ := os.ReadFile(filepath.Join(root, "wp-content/aegir-sites", domain+".php"))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "'AUTH_KEY'") {
				return l
			}
		}
		return ""
	}
	if salt(src) == "" || salt(src) == salt(dst) {
		t.Fatal("the clone has the source's secret keys")
	}
	// The clone's database is its own: content added there stays there.
	addPost(t, dstDB, "Only in the clone")
	if ok, got := h.pageHas(t, src, "Original content", "Only in the clone"); !ok {
		t.Fatalf("the source shows the clone's content: %s", got)
	}
	if !exists(filepath.Join(root, "wp-content/uploads", dst, "2026/01/shared.txt")) {
		t.Fatal("the clone's uploads are missing")
	}
	if list := backups(t, h.home, src); len(list) != 1 {
		t.Fatalf("the clone's backup of the source: %+v", list)
	}
	must(t, h.home, "site", "delete", dst, "--no-backup", "-q")
	must(t, h.home, "site", "delete", src, "--no-backup", "-q")
}

// drupalPlatform builds a Drupal 10 tree (Drupal itself cannot be
// fetched here) whose drush is a stand-in: it appends its arguments to
// argsLog, fails "status" while the file failFlag exists, and hangs in
// it while failFlag.hang exists.
func drupalPlatform(t *testing.T, argsLog, failFlag string) string {
	t.Helper()
	root := filepath.Join(testenv.PublicDir(t), "drupal")
	files := map[string]string{
		"core/lib/Drupal.php":                "<?php\nnamespace Drupal;\nclass Drupal {\n  const VERSION = '10.3.6';\n}\n",
		"core/modules/node/node.info.yml":    "name: Node\ntype: module\npackage: Core\nversion: VERSION\n",
		"index.php":                          "<?php echo 'drupal ok';\n",
		"sites/default/default.settings.php": "<?php\n",
		"vendor/bin/drush": "#!/bin/sh\n# stand-in drush\necho \"$*\" >> " + argsLog + "\n" +
			"for a in \"$@\"; do [ \"$a\" = status ] && [ -e " + failFlag + " ] && { echo 'bootstrap failed' >&2; exit 1; }; done\n" +
			"for a in \"$@\"; do [ \"$a\" = status ] && [ -e " + failFlag + ".hang ] && sleep 120; done\necho '[success] done.'\n",
	}
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "vendor/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// newDrupalEnv is a host environment for stand-in Drupal platforms, with
// the files their drush logs its arguments to and fails on.
func newDrupalEnv(t *testing.T) (h *hostEnv, argsLog, failFlag string) {
	t.Helper()
	h = newHostEnv(t, "nginx")
	logDir := testenv.PublicDir(t)
	if err := os.Chmod(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	return h, filepath.Join(logDir, "drush-args"), filepath.Join(logDir, "fail-status")
}

// addDrupal adds a stand-in Drupal platform (drupalPlatform) named name
// on web1 and returns its root.
func (h *hostEnv) addDrupal(t *testing.T, name, argsLog, failFlag string) string {
	t.Helper()
	root := drupalPlatform(t, argsLog, failFlag)
	must(t, h.home, "platform", "add", name, "--server", "web1", "--root", root, "--drush", filepath.Join(root, "vendor/bin/drush"), "-q")
	return root
}

// Drupal: the site's directory (settings, public files) is backed up and
// restored; a restore that fails after the swap (drush cannot bootstrap
// the restored site) puts the site back exactly as it was; a migrate to
// another platform runs drush updatedb there.
func TestBackupRestoreMigrateDrupal(t *testing.T) {
	t.Parallel()
	h, argsLog, failFlag := newDrupalEnv(t)
	root1, root2 := h.addDrupal(t, "d1", argsLog, failFlag), h.addDrupal(t, "d2", argsLog, failFlag)
	domain := testsite.Domain(t, "dr")
	must(t, h.home, "site", "install", domain, "--platform", "d1", "--profile", "minimal", "-q")
	rows := func() []string {
		t.Helper()
		dbName := siteRecord(t, h.home, domain)["db_name"].(string)
		out, err := strings1(mariadb(t), "SELECT title FROM `"+dbName+"`.node ORDER BY title")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	db1 := siteRecord(t, h.home, domain)["db_name"].(string)
	if _, err := mariadb(t).Exec("CREATE TABLE `" + db1 + "`.node (title VARCHAR(100)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	_, _ = mariadb(t).Exec("INSERT INTO `" + db1 + "`.node VALUES ('before')")
	siteDir := filepath.Join(root1, "sites", domain)
	if err := os.WriteFile(filepath.Join(siteDir, "files", "before.txt"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "site", "backup", domain, "-q")
	_, _ = mariadb(t).Exec("INSERT INTO `" + db1 + "`.node VALUES ('after')")
	if err := os.WriteFile(filepath.Join(siteDir, "files", "after.txt"), []byte("after"), 0o644); err != nil {
		t.Fatal(err)
	}

	// drush cannot bootstrap the restored site: all is put back.
	if err := os.WriteFile(failFlag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := aegir(t, h.home, "site", "restore", domain)
	if code != cli.ExitFailed || !strings.Contains(errs, "drush cannot bootstrap") || !strings.Contains(errs, "rollback: put "+siteDir+" back") {
		t.Fatalf("restore with a failing check: exit %d\n%s", code, errs)
	}
	if got := rows(); strings.Join(got, ",") != "after,before" || !exists(filepath.Join(siteDir, "files", "after.txt")) {
		t.Fatalf("after a failed restore: rows %v, after.txt there %v", got, exists(filepath.Join(siteDir, "files", "after.txt")))
	}
	if dbs := siteDBs(t, domain); len(dbs) != 1 {
		t.Fatalf("databases after a failed restore: %v", dbs)
	}
	if left, _ := filepath.Glob(filepath.Join(root1, "sites", ".*aegir-*")); len(left) > 0 {
		t.Fatalf("a failed restore left %v", left)
	}
	settings, _ := os.ReadFile(filepath.Join(siteDir, "settings.php"))
	if !strings.Contains(string(settings), "'"+db1+"'") {
		t.Fatal("after a failed restore, settings.php no longer names the site's database")
	}

	_ = os.Remove(failFlag)
	must(t, h.home, "site", "restore", domain, "-q")
	if got := rows(); strings.Join(got, ",") != "before" || exists(filepath.Join(siteDir, "files", "after.txt")) || !exists(filepath.Join(siteDir, "files", "before.txt")) {
		t.Fatalf("after restore: rows %v", got)
	}
	db2 := siteRecord(t, h.home, domain)["db_name"].(string)
	settings, _ = os.ReadFile(filepath.Join(siteDir, "settings.php"))
	if db2 == db1 || !strings.Contains(string(settings), "'"+db2+"'") {
		t.Fatalf("settings.php after restore does not name the new database %s", db2)
	}

	_ = os.Remove(argsLog)
	must(t, h.home, "site", "migrate", domain, "--platform", "d2", "-q")
	args, _ := os.ReadFile(argsLog)
	if !strings.Contains(string(args), "--root="+root2) || !strings.Contains(string(args), "updatedb") {
		t.Fatalf("drush on the new platform was not asked for updatedb; it got:\n%s", args)
	}
	if exists(siteDir) || !exists(filepath.Join(root2, "sites", domain, "files", "before.txt")) {
		t.Fatalf("after migrate: old dir there %v", exists(siteDir))
	}
	if got := rows(); strings.Join(got, ",") != "before" {
		t.Fatalf("rows after migrate: %v", got)
	}

	// Deleted, then brought back from its backup while drush cannot
	// bootstrap it: everything the restore made is removed, the site
	// stays queued; once drush works, a retry brings it back.
	must(t, h.home, "-y", "site", "delete", domain, "-q")
	siteDir2 := filepath.Join(root2, "sites", domain)
	vhost := filepath.Join(h.home, "config", "web1", "vhost.d", domain+".conf")
	if err := os.WriteFile(failFlag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code = aegir(t, h.home, "site", "restore", domain)
	if code != cli.ExitFailed || !strings.Contains(errs, "drush cannot bootstrap") {
		t.Fatalf("restore of the deleted site with a failing check: exit %d\n%s", code, errs)
	}
	if exists(siteDir2) || exists(vhost) || len(siteDBs(t, domain)) != 0 {
		t.Fatalf("a failed restore of a deleted site left: site dir %v, vhost %v, databases %v", exists(siteDir2), exists(vhost), siteDBs(t, domain))
	}
	if left, _ := filepath.Glob(filepath.Join(root2, "sites", ".*aegir-*")); len(left) > 0 {
		t.Fatalf("a failed restore left %v", left)
	}
	if rec := siteRecord(t, h.home, domain); rec["status"] != "queued" {
		t.Fatalf("site after a failed restore: %v, want queued", rec["status"])
	}
	_ = os.Remove(failFlag)
	failed := strings.Fields(must(t, h.home, "task", "list", "--site", domain, "--status", "error", "--format", "csv", "--fields", "id"))
	// The oldest failed task was on the site record that was deleted.
	if _, errs, code := aegir(t, h.home, "task", "retry", failed[len(failed)-1]); code != cli.ExitUsage || !strings.Contains(errs, "which was deleted since") {
		t.Fatalf("retry of a task on a deleted site: exit %d\n%s", code, errs)
	}
	must(t, h.home, "task", "retry", failed[1], "-q") // the newest
	must(t, h.home, "hosting", "dispatch", "-q")
	if rec := siteRecord(t, h.home, domain); rec["status"] != "installed" || !exists(filepath.Join(siteDir2, "files", "before.txt")) {
		t.Fatalf("site after the retried restore: %v; files there %v", rec["status"], exists(filepath.Join(siteDir2, "files", "before.txt")))
	}
	if got := rows(); strings.Join(got, ",") != "before" {
		t.Fatalf("rows after the retried restore: %v", got)
	}
	must(t, h.home, "-y", "site", "delete", domain, "--no-backup", "-q")
}

// A deleted site comes back from the backup site delete took: recorded
// again with the aliases the backup lists (but one another site has taken
// since, left out with a warning), its content and uploads back, and its
// certificate served again. A damaged backup of a deleted site records
// nothing; a domain with no deleted site's backup is not found.
func TestRestoreDeletedSite(t *testing.T) {
	t.Parallel()
	h := newHTTPSEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "gone")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "--alias", "www."+domain, "--alias", "old."+domain, "--https", "on", "-q")
	db1 := siteRecord(t, h.home, domain)["db_name"].(string)
	addPost(t, db1, "Kept through the delete")
	upload := writeUpload(t, root, domain, "kept.txt", "kept")
	serial := h.servedSerial(t, domain, "")

	must(t, h.home, "-y", "site", "delete", domain, "-q")
	if bs := backups(t, h.home, domain); len(bs) != 1 || bs[0].SiteStatus != "deleted" {
		t.Fatalf("backups of the deleted site: %+v", bs)
	}
	if _, errs, code := aegir(t, h.home, "site", "show", domain); code != cli.ExitNotFound || !strings.Contains(errs, "was deleted") || !strings.Contains(errs, "aegir site restore "+domain) {
		t.Fatalf("site show of the deleted site: exit %d\n%s", code, errs)
	}
	if dbExists(t, db1) || exists(upload) {
		t.Fatalf("after delete: database there %v, upload there %v", dbExists(t, db1), exists(upload))
	}
	// Another site takes one of the aliases meanwhile.
	other := testsite.Domain(t, "taker")
	must(t, h.home, "site", "install", other, "--platform", "wp", "--alias", "old."+domain, "-q")

	_, errs, code := aegir(t, h.home, "site", "restore", domain)
	if code != 0 || !strings.Contains(errs, "site "+domain+" was deleted") || !strings.Contains(errs, "warning: alias old."+domain+" is now a name of site "+other) {
		t.Fatalf("restore of the deleted site: exit %d\n%s", code, errs)
	}
	rec := siteRecord(t, h.home, domain)
	if rec["status"] != "installed" || fmt.Sprint(rec["aliases"]) != "[www."+domain+"]" || rec["https"] != "on" || rec["db_name"] == "" {
		t.Fatalf("site after its restore: %v", rec)
	}
	if ok, got := h.pageHas(t, domain, "Kept through the delete", ""); !ok {
		t.Fatalf("the restored site does not show its post: %s", got)
	}
	if !exists(upload) {
		t.Fatal("the upload did not come back")
	}
	if s := h.servedSerial(t, domain, ""); s != serial {
		t.Fatalf("serving certificate %s after the restore, want the one it had (%s)", s, serial)
	}
	if c := certOf(t, h.home, domain); c == nil || c.NotAfter == nil {
		t.Fatalf("certificate record after the restore: %+v", c)
	}
	if bs := backups(t, h.home, domain); len(bs) != 1 || bs[0].SiteStatus != "installed" {
		t.Fatalf("backups of the restored site: %+v", bs)
	}

	// Deleted again, its backup damaged: nothing is recorded.
	must(t, h.home, "-y", "site", "delete", domain, "-q")
	b := backups(t, h.home, domain)[0]
	raw, _ := os.ReadFile(b.Path)
	raw[len(raw)/2] ^= 0x01
	if err := os.WriteFile(b.Path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code = aegir(t, h.home, "site", "restore", domain, "--backup", fmt.Sprint(b.ID))
	if code != cli.ExitFailed || !strings.Contains(errs, "nothing was recorded") {
		t.Fatalf("restore of a deleted site from a damaged backup: exit %d\n%s", code, errs)
	}
	if _, _, code := aegir(t, h.home, "site", "show", domain); code != cli.ExitNotFound {
		t.Fatalf("site show after the refused restore: exit %d, want %d (not recorded)", code, cli.ExitNotFound)
	}
	if _, errs, code := aegir(t, h.home, "site", "restore", "never-there.test"); code != cli.ExitNotFound || !strings.Contains(errs, "never-there.test") {
		t.Fatalf("restore of a site that never was: exit %d\n%s", code, errs)
	}
}

// A restore rewrites the site's settings for its new database and drops
// the old one: the very first request after the command returns, with no
// retry, is served from the restored database, on nginx and on apache.
// php-fpm's opcache would run the settings it compiled before (for up to
// opcache.revalidate_freq, 2 s on Debian; an hour here, so that only
// aegir's own refresh can make the test pass) and the page would fail to
// reach the dropped database.
func TestRestoreFirstRequestRunsNewSettings(t *testing.T) {
	for _, kind := range []string{"nginx", "apache"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newHostEnv(t, kind, "opcache.revalidate_freq=3600")
			root := h.wpPlatform(t, "wp")
			domain, db1 := wordPressSite(t, h, "wp", root, "oc"+kind[:1], false, "Made before the backup", "before.txt")
			// A site installed a while ago: opcache caches no file
			// younger than 2 s (opcache.file_update_protection).
			old := time.Now().Add(-time.Hour)
			for _, f := range []string{filepath.Join(root, "wp-content", "aegir-sites", domain+".php"), filepath.Join(root, "wp-config.php")} {
				if err := os.Chtimes(f, old, old); err != nil {
					t.Fatal(err)
				}
			}
			must(t, h.home, "site", "backup", domain, "-q")
			addPost(t, db1, "Made after the backup")
			if code, body := h.getOnce(t, domain, "/"); code != 200 || !strings.Contains(body, "Made after the backup") {
				t.Fatalf("before the restore: %d %.300q", code, body)
			}

			must(t, h.home, "site", "restore", domain, "-q")
			code, body := h.getOnce(t, domain, "/")
			if code != 200 || !strings.Contains(body, "Made before the backup") || strings.Contains(body, "Made after the backup") {
				t.Fatalf("the first request after the restore: %d %.300q; want the restored database's page", code, body)
			}
			if db2 := siteRecord(t, h.home, domain)["db_name"]; db2 == db1 || dbExists(t, db1) {
				t.Fatalf("databases after the restore: %v (was %s; still there: %v)", db2, db1, dbExists(t, db1))
			}
		})
	}
}
