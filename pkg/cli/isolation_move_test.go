package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// whoami is a PHP file, put in a platform's code, that prints the user
// its PHP runs as (the pool's workers').
const whoami = "aegir-whoami.php"

func putWhoami(t *testing.T, root string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, whoami), []byte("<?php echo posix_getpwuid(posix_geteuid())['name'];"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runsAs checks that site d answers its front page on w (its title is
// title) and that its PHP runs as user.
func runsAs(t *testing.T, w *testenv.Web, d, title, user string) {
	t.Helper()
	page := func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, "<title>"+title+"</title>")
	}
	if code, body := getFrom(t, w, d, "/", page); !page(code, body, nil) {
		t.Fatalf("GET %s: %d, want its page: %.300s", d, code, body)
	}
	as := func(code int, body string, _ http.Header) bool { return code == 200 && body == user }
	if code, body := getFrom(t, w, d, "/"+whoami, as); !as(code, body, nil) {
		t.Fatalf("%s's PHP runs as %q (%d), want %s", d, body, code, user)
	}
}

// ownedBy checks that site d's uploads directory on root, and the file
// in it, belong to its user (the directory with the web server's group,
// 2750).
func ownedBy(t *testing.T, root, d, file string) {
	t.Helper()
	u := entities.SiteUnixUser(d)
	dir := filepath.Join(root, "wp-content/uploads", d)
	if o, g, m := ownerOf(t, dir); o != u || g != "www-data" || m.Perm() != 0o750 || m&os.ModeSetgid == 0 {
		t.Fatalf("%s: %s:%s %v, want %s:www-data 2750", dir, o, g, m, u)
	}
	if o, _, _ := ownerOf(t, filepath.Join(dir, "2026/01", file)); o != u {
		t.Fatalf("%s's %s belongs to %s, want %s", d, file, o, u)
	}
}

// runtimeGone checks that nothing of domain's runtime is left: no user or
// group, no pool file or socket, no runtime directory.
func (h *isoEnv) runtimeGone(t *testing.T, d string) {
	t.Helper()
	u := entities.SiteUnixUser(d)
	if _, ok := userComment(u); ok {
		t.Errorf("user %s is left", u)
	}
	if exec.Command("getent", "group", u).Run() == nil {
		t.Errorf("group %s is left", u)
	}
	for _, p := range []string{h.poolFile(d), filepath.Join(h.runtime, "fpm", u+".sock"), filepath.Join(h.runtime, "sites", d)} {
		if exists(p) {
			t.Errorf("%s is left", p)
		}
	}
}

func (h *isoEnv) poolFile(d string) string {
	return filepath.Join(h.fpm.PoolDir, "aegir-"+entities.SiteUnixUser(d)+".conf")
}

func (h *isoEnv) pool(t *testing.T, d string) string {
	t.Helper()
	b, err := os.ReadFile(h.poolFile(d))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// addRootServer adds web2, a "remote" server reached over SSH as root
// (a private sshd on loopback: the same machine, so that its users and
// pools are this machine's), with its own nginx.
func (h *isoEnv) addRootServer(t *testing.T) *testenv.Web {
	t.Helper()
	sshd := testenv.StartSSHDWith(t, testenv.SSHDOptions{RootLogin: true})
	remoteHome := filepath.Join(testenv.PublicDir(t), "aegir")
	w := testenv.StartNginx(t, filepath.Join(remoteHome, "config", "web2"))
	must(t, h.home, "server", "add", "web2", "--host", sshd.Host, "--ssh-user", "root", "--ssh-port", itoa(sshd.Port),
		"--ssh-key", sshd.KeyFile, "--accept-host-key", "--remote-home", remoteHome, "-q",
		"--http", "nginx", "--http-port", itoa(w.Port), "--https-port", itoa(w.HTTPSPort), "--http-listen-ip", "127.0.0.1",
		"--http-test-cmd", w.TestCmd, "--http-restart-cmd", w.ReloadCmd, "--php-fpm", h.fpm.Socket)
	return w
}

// An isolated WordPress site keeps its runtime through its moves: a
// backup restored runs as its user with its files its user's; a clone
// gets a user and pool of its own (named after its domain) and runs as
// it; a migrate to another platform keeps its user, its pool opening the
// new platform alone; a migrate to another server under a new domain
// makes the new user, pool and logs there (the old logs copied along) and
// removes the old ones; a migrate or clone that fails is rolled back with
// its runtime (the new user gone, the old pool as it was); delete leaves
// nothing.
func TestIsolatedMovesWordPress(t *testing.T) {
	t.Parallel()
	h := newIsoEnv(t, "nginx")
	root1, root2 := h.wpPlatform(t, "wp1"), h.wpPlatform(t, "wp2")
	putWhoami(t, root1)
	putWhoami(t, root2)
	a, c := isoDomain(t, "mva"), isoDomain(t, "mvc")
	ua, uc := entities.SiteUnixUser(a), entities.SiteUnixUser(c)
	must(t, h.home, "site", "install", a, "--platform", "wp1", "--isolation", "site", "-q")
	runsAs(t, h.web, a, a, ua)

	// A verify hands the uploads over again only when their directory is
	// not the site's: a file under a right top stays as it is (no walk of
	// every upload at each verify); under a wrong top, all is handed over.
	up := writeUpload(t, root1, a, "a.txt", "a's upload") // root's
	must(t, h.home, "site", "verify", a, "-q")
	if o, _, _ := ownerOf(t, up); o != "root" {
		t.Fatalf("a verify re-owned every upload (%s is %s's)", up, o)
	}
	if err := os.Chown(filepath.Join(root1, "wp-content/uploads", a), 0, 0); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "site", "verify", a, "-q")
	ownedBy(t, root1, a, "a.txt")

	// Backup and restore: the upload made after the backup is gone, the
	// site runs as its user, its files are its user's.
	must(t, h.home, "site", "backup", a, "-q")
	after := writeUpload(t, root1, a, "after.txt", "after")
	must(t, h.home, "-y", "site", "restore", a, "-q")
	if exists(after) {
		t.Fatal("the restore did not restore the uploads")
	}
	runsAs(t, h.web, a, a, ua)
	ownedBy(t, root1, a, "a.txt")

	// A clone: its own user and pool, its files its own.
	must(t, h.home, "site", "clone", a, c)
	if rec := siteRecord(t, h.home, c); rec["isolation"] != "site" || rec["unix_user"] != uc {
		t.Fatalf("the clone's record: isolation %v, unix_user %v", rec["isolation"], rec["unix_user"])
	}
	runsAs(t, h.web, c, a, uc)
	ownedBy(t, root1, c, "a.txt")
	if users := poolUsers(t, uc); len(users) == 0 || strings.ReplaceAll(strings.Join(users, ""), uc, "") != "" {
		t.Fatalf("the clone's pool runs as %v, want %s", users, uc)
	}
	runsAs(t, h.web, a, a, ua)

	// A clone that fails (the web server refuses its virtual host) leaves
	// no user, pool or runtime directory.
	tmpl := filepath.Join(h.home, "templates", "nginx-site.conf.tmpl")
	if err := os.MkdirAll(filepath.Dir(tmpl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmpl, []byte("server { this is not nginx; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := isoDomain(t, "mvf")
	if _, errs, code := aegir(t, h.home, "site", "clone", a, failed); code != cli.ExitFailed || !strings.Contains(errs, "rollback: remove the php-fpm pool, Unix user and runtime directory of "+failed) {
		t.Fatalf("clone with a broken template: exit %d\n%s", code, errs)
	}
	h.runtimeGone(t, failed)

	// A migrate to another platform that fails: the pool is as it was.
	before := h.pool(t, a)
	if _, errs, code := aegir(t, h.home, "site", "migrate", a, "--platform", "wp2"); code != cli.ExitFailed || !strings.Contains(errs, "rollback: write the php-fpm pool of "+a+" back") {
		t.Fatalf("migrate with a broken template: exit %d\n%s", code, errs)
	}
	if got := h.pool(t, a); got != before {
		t.Fatalf("the pool after a failed migrate:\n%s\nwant\n%s", got, before)
	}
	_ = os.Remove(tmpl)
	runsAs(t, h.web, a, a, ua)

	// Migrated to another platform: the same user, its pool opens the new
	// platform alone, its files are its user's there.
	must(t, h.home, "site", "migrate", a, "--platform", "wp2", "-q")
	runsAs(t, h.web, a, a, ua)
	ownedBy(t, root2, a, "a.txt")
	if p := h.pool(t, a); !strings.Contains(p, "open_basedir] = "+root2+"/:") || strings.Contains(p, root1) {
		t.Fatalf("the pool after the migrate to %s:\n%s", root2, p)
	}
	if exists(filepath.Join(root1, "wp-content/uploads", a)) {
		t.Fatal("the site's files are still on the old platform")
	}

	// Migrated to another server, under a new domain: a new user, pool
	// and logs there; the old ones gone, the old logs copied along.
	w2 := h.addRootServer(t)
	root3 := testenv.WordPressPlatform(t)
	putWhoami(t, root3)
	must(t, h.home, "platform", "add", "wp3", "--server", "web2", "--root", root3, "-q")
	d := isoDomain(t, "mvd")
	ud := entities.SiteUnixUser(d)
	must(t, h.home, "site", "migrate", a, "--platform", "wp3", "--domain", d, "-q")
	runsAs(t, w2, d, a, ud)
	ownedBy(t, root3, d, "a.txt")
	h.runtimeGone(t, a)
	moved, _ := filepath.Glob(filepath.Join(h.runtime, "sites", d, "logs", "moved-*", "access.log"))
	if len(moved) != 1 {
		t.Fatalf("the old logs in the new log directory: %v", moved)
	}
	if b, _ := os.ReadFile(moved[0]); !strings.Contains(string(b), "GET /"+whoami) {
		t.Fatalf("the old access log, carried: %q", b)
	}
	if out := must(t, h.home, "site", "logs", d, "--access"); !strings.Contains(out, "GET /"+whoami) {
		t.Fatalf("site logs of the migrated site: %q", out)
	}

	// Delete: nothing of either site is left.
	for _, s := range []string{c, d} {
		must(t, h.home, "site", "delete", s, "--no-backup", "-q")
		h.runtimeGone(t, s)
	}
}

// A clone of an isolated site whose dispatcher is killed (SIGKILL) once
// the clone's user, pool and files are made: the next dispatch plays
// back its journal, and the clone's user, group, pool and runtime
// directory are gone with its files, the source running as before.
func TestIsolatedCloneKilledMidwayIsUndone(t *testing.T) {
	t.Parallel()
	h := newIsoEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	putWhoami(t, root)
	a, c := isoDomain(t, "kla"), isoDomain(t, "klc")
	must(t, h.home, "site", "install", a, "--platform", "wp", "--isolation", "site", "-q")
	// WordPress's steps run for the clone wait while the flag is there,
	// after saying so.
	flags := testenv.PublicDir(t)
	if err := os.Chmod(flags, 0o777); err != nil {
		t.Fatal(err)
	}
	hang, reached := filepath.Join(flags, "hang"), filepath.Join(flags, "reached")
	plugin := `<?php
if (PHP_SAPI === 'cli' && DB_NAME !== '` + siteRecord(t, h.home, a)["db_name"].(string) + `' && file_exists('` + hang + `')) {
	file_put_contents('` + reached + `', '1');
	while (file_exists('` + hang + `')) { usleep(50000); }
}
`
	if err := os.MkdirAll(filepath.Join(root, "wp-content/mu-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "wp-content/mu-plugins/aegir-hang.php"), []byte(plugin), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(must(t, h.home, "site", "clone", a, c, "--queue"))
	child := startAegir(t, h.home, "hosting", "dispatch")
	waitFor(t, "the clone's WordPress step", func() bool { return exists(reached) })
	if _, ok := userComment(entities.SiteUnixUser(c)); !ok || !exists(h.poolFile(c)) {
		t.Fatalf("the clone's user (%v) or pool (%v) is not made when its WordPress steps run", ok, exists(h.poolFile(c)))
	}
	killDispatcher(child, child.Process.Pid)
	_ = os.Remove(hang)
	_, errs, _ := aegir(t, h.home, "hosting", "dispatch")
	if log := must(t, h.home, "task", "log", id); !strings.Contains(log, "undoing the clone of "+a) ||
		!strings.Contains(log, "rollback: remove the php-fpm pool, Unix user and runtime directory of "+c) {
		t.Fatalf("the killed clone after the next dispatch:\n%s\n%s", log, errs)
	}
	h.runtimeGone(t, c)
	if exists(filepath.Join(root, "wp-content/uploads", c)) || exists(filepath.Join(root, "wp-content/aegir-sites", c+".php")) {
		t.Fatal("the rescue left the clone's files")
	}
	runsAs(t, h.web, a, a, entities.SiteUnixUser(a))
}

// A platform migrate moves isolated sites with the shared ones: two
// isolated WordPress sites (moved at once) and a shared one go from wp1 to
// wp2; none is left out; each answers on wp2 with its title, an isolated
// one's PHP as its own user, its pool opening wp2 alone and its uploads
// its user's there; nothing of them is left on wp1.
func TestPlatformMigrateIsolated(t *testing.T) {
	t.Parallel()
	h := newIsoEnv(t, "nginx")
	root1, root2 := h.wpPlatform(t, "wp1"), h.wpPlatform(t, "wp2")
	putWhoami(t, root1)
	putWhoami(t, root2)
	iso := []string{isoDomain(t, "pmi"), isoDomain(t, "pmj")}
	shared := isoDomain(t, "pms")
	for _, d := range iso {
		must(t, h.home, "site", "install", d, "--platform", "wp1", "--isolation", "site", "-q")
		writeUpload(t, root1, d, "up.txt", "upload of "+d)
		must(t, h.home, "site", "verify", d, "-q")
		runsAs(t, h.web, d, d, entities.SiteUnixUser(d))
	}
	must(t, h.home, "site", "install", shared, "--platform", "wp1", "-q")

	// The plan names each isolated site's pool, rewritten for wp2.
	plan := must(t, h.home, "platform", "migrate", "wp1", "wp2", "--canary", "1", "--wave", "2", "--per-server", "2", "--dry-run", "--format", "json")
	var mp struct{ Waves []struct{ Sites []planRec } }
	if err := json.Unmarshal([]byte(plan), &mp); err != nil {
		t.Fatal(err)
	}
	pools := map[string]bool{}
	for _, w := range mp.Waves {
		for _, p := range w.Sites {
			pools[p.Target] = p.has("php_fpm_pool", "rewrite", p.Target)
		}
	}
	if len(pools) != 3 || !pools[iso[0]] || !pools[iso[1]] || pools[shared] {
		t.Fatalf("the plan's pools rewritten: %v\n%s", pools, plan)
	}

	out, errs, code := aegir(t, h.home, "platform", "migrate", "wp1", "wp2", "--canary", "1", "--wave", "2", "--per-server", "2")
	if code != 0 {
		t.Fatalf("platform migrate with isolated sites: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if strings.Contains(errs, "left out") {
		t.Errorf("platform migrate left a site out:\n%s", errs)
	}
	if n := strings.Count(errs, ": moved to platform wp2 (task "); n != 3 {
		t.Errorf("%d sites moved, want 3:\n%s", n, errs)
	}
	for _, d := range append(iso, shared) {
		if p := siteRecord(t, h.home, d)["platform"]; p != "wp2" {
			t.Errorf("%s is on %v, want wp2", d, p)
		}
		if exists(filepath.Join(root1, "wp-content/uploads", d)) || exists(filepath.Join(root1, "wp-content", "aegir-sites", d+".php")) {
			t.Errorf("%s's files or settings are left on wp1", d)
		}
	}
	for _, d := range iso {
		runsAs(t, h.web, d, d, entities.SiteUnixUser(d))
		ownedBy(t, root2, d, "up.txt")
		if p := h.pool(t, d); !strings.Contains(p, "open_basedir] = "+root2+"/:") || strings.Contains(p, root1) {
			t.Errorf("%s's pool after the platform migrate:\n%s", d, p)
		}
		if dbs := siteDBs(t, d); len(dbs) != 1 {
			t.Errorf("%s has the databases %v, want one", d, dbs)
		}
	}
	if ok, got := h.pageHas(t, shared, "<title>"+shared, ""); !ok {
		t.Errorf("the shared site %s on wp2: %s", shared, got)
	}
}
