package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// isoEnv is a host whose php-fpm takes isolated sites' pools: a private
// php-fpm with a pool directory, its test and reload commands and a
// runtime directory, all the test's, in the home's aegir.yaml.
type isoEnv struct {
	*hostEnv
	fpm     *testenv.PHPFPM
	runtime string // php_fpm.runtime_dir
}

func newIsoEnv(t *testing.T, kind string) *isoEnv {
	t.Helper()
	var pools *testenv.PHPFPM
	h := startHost(t, kind, testenv.StartPHPFPMPools, func(home string, fpm *testenv.PHPFPM) {
		pools = fpm
		f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// More keys of the php_fpm section newHome ends the file with.
		fmt.Fprintf(f, "  pool_dir: %s\n  test_cmd: '%s'\n  reload_cmd: '%s'\n", fpm.PoolDir, fpm.TestCmd, fpm.ReloadCmd)
	})
	return &isoEnv{hostEnv: h, fpm: pools, runtime: filepath.Join(filepath.Dir(h.home), "runtime")}
}

// isoDomain is a new unique domain whose databases and Unix user are
// removed when the test ends, whatever became of its site: only a user
// aegir made for this domain (its comment says so).
func isoDomain(t *testing.T, prefix string) string {
	t.Helper()
	d := testsite.Domain(t, prefix)
	user := entities.SiteUnixUser(d)
	t.Cleanup(func() {
		if gecos, ok := userComment(user); ok && gecos == "aegir site "+d {
			_ = exec.Command("pkill", "-KILL", "-u", user).Run()
			if out, err := exec.Command("userdel", "-f", user).CombinedOutput(); err != nil {
				t.Logf("clean-up: userdel %s: %v %s", user, err, out)
			}
		}
	})
	return d
}

// userComment is the GECOS field of a Unix user, and whether it exists.
func userComment(user string) (string, bool) {
	out, err := exec.Command("getent", "passwd", user).Output()
	if err != nil {
		return "", false
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(f) < 5 {
		return "", true
	}
	return f[4], true
}

// poolUsers are the users that the workers of php-fpm pool name run as.
func poolUsers(t *testing.T, pool string) []string {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "user:32,args").Output()
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == "php-fpm:" && f[2] == "pool" && f[3] == pool {
			users = append(users, f[0])
		}
	}
	return users
}

func ownerOf(t *testing.T, p string) (user, group string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := exec.Command("id", "-nu", itoa(int(st.Uid))).Output()
	g, _ := exec.Command("getent", "group", itoa(int(st.Gid))).Output()
	return strings.TrimSpace(string(u)), strings.SplitN(string(g), ":", 2)[0], fi.Mode()
}

// Two isolated WordPress sites on one platform: each one's PHP runs in its
// own pool as its own user, and a PHP file in the platform's code, run by
// an HTTP request to site A, gets "Permission denied" reading site B's
// settings and listing B's uploads, while the same file run for B reads
// them (the check can fail). A site installed shared and switched to
// isolated keeps working; delete leaves no user, group, pool file, socket
// or runtime directory.
func TestIsolatedSitesWordPress(t *testing.T) {
	for _, kind := range []string{"nginx", "apache"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			h := newIsoEnv(t, kind)
			root := h.wpPlatform(t, "wp")
			a, b := isoDomain(t, "isa-"+kind[:2]), isoDomain(t, "isb-"+kind[:2])
			ua, ub := entities.SiteUnixUser(a), entities.SiteUnixUser(b)

			// The server's verify found its php-fpm; a version it does not
			// have is refused with the one it has, and nothing is recorded.
			version := strings.TrimPrefix(filepath.Base(testenv.PHPFPMBinary), "php-fpm")
			if out := must(t, h.home, "server", "show", "web1", "--format", "json"); !strings.Contains(out, `"php_versions": [`+"\n"+`        "`+version+`"`) {
				t.Fatalf("server show lacks php_versions [%s]: %s", version, out)
			}
			if _, errs, code := aegir(t, h.home, "site", "install", a, "--platform", "wp", "--php", "5.6"); code != 2 || !strings.Contains(errs, `invalid --php "5.6": is not on server web1 (it has `+version+`)`) {
				t.Fatalf("install with an absent PHP: exit %d\n%s", code, errs)
			}
			if _, _, code := aegir(t, h.home, "site", "show", a); code != 3 {
				t.Fatalf("a refused install recorded %s: site show exit %d", a, code)
			}
			must(t, h.home, "site", "install", a, "--platform", "wp", "--isolation", "site", "--php", version, "-q")
			if rec := siteRecord(t, h.home, a); rec["php"] != version {
				t.Fatalf("php of %s: %v, want %s", a, rec["php"], version)
			}
			// B starts shared, as sites did before, and is switched.
			must(t, h.home, "site", "install", b, "--platform", "wp", "-q")
			if rec := siteRecord(t, h.home, b); rec["isolation"] != "shared" || rec["unix_user"] != "" {
				t.Fatalf("b before the switch: isolation %v, unix_user %v", rec["isolation"], rec["unix_user"])
			}
			writeUpload(t, root, b, "b.txt", "b's upload")
			must(t, h.home, "site", "edit", b, "--isolation", "site", "-q")
			for d, u := range map[string]string{a: ua, b: ub} {
				rec := siteRecord(t, h.home, d)
				if rec["isolation"] != "site" || rec["unix_user"] != u || rec["status"] != "installed" {
					t.Fatalf("%s: isolation %v, unix_user %v, status %v", d, rec["isolation"], rec["unix_user"], rec["status"])
				}
				title := "<title>" + d + "</title>"
				ok := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }
				if code, body, _ := h.get(t, d, "/", ok); !ok(code, body, nil) {
					t.Fatalf("GET %s: %d, want its page: %.300s", d, code, body)
				}
				if users := poolUsers(t, u); len(users) == 0 || strings.ReplaceAll(strings.Join(users, ""), u, "") != "" {
					t.Fatalf("pool %s's workers run as %v, want %s", u, users, u)
				}
				if _, err := os.Stat(filepath.Join(h.fpm.PoolDir, "aegir-"+u+".conf")); err != nil {
					t.Fatal(err)
				}
				settings := filepath.Join(root, "wp-content/aegir-sites", d+".php")
				if _, g, m := ownerOf(t, settings); g != u || m.Perm() != 0o440 {
					t.Fatalf("%s: group %s mode %v, want %s 0440", settings, g, m, u)
				}
				uploads := filepath.Join(root, "wp-content/uploads", d)
				if o, g, m := ownerOf(t, uploads); o != u || g != "www-data" || m.Perm() != 0o750 || m&os.ModeSetgid == 0 {
					t.Fatalf("%s: %s:%s %v, want %s:www-data 2750", uploads, o, g, m, u)
				}
			}
			// B's upload made while shared is B's user's now.
			if o, _, _ := ownerOf(t, filepath.Join(root, "wp-content/uploads", b, "2026/01/b.txt")); o != ub {
				t.Fatalf("b's old upload belongs to %s, want %s", o, ub)
			}

			probe := "aegir-probe-" + strings.Split(a, ".")[0] + ".php"
			code := fmt.Sprintf(`<?php
$r = @file_get_contents(%q);
echo $r === false ? "read: " . error_get_last()["message"] : "read: ok", "\n";
$l = @scandir(%q);
echo $l === false ? "list: " . error_get_last()["message"] : "list: ok", "\n";
`, filepath.Join(root, "wp-content/aegir-sites", b+".php"), filepath.Join(root, "wp-content/uploads", b))
			if err := os.WriteFile(filepath.Join(root, probe), []byte(code), 0o644); err != nil {
				t.Fatal(err)
			}
			any := func(code int, _ string, _ http.Header) bool { return code == 200 }
			_, body, _ := h.get(t, a, "/"+probe, any)
			if !strings.Contains(body, "read: file_get_contents(") || !strings.Contains(body, "Permission denied") ||
				!strings.Contains(body, "list: scandir(") || strings.Count(body, "Permission denied") != 2 {
				t.Fatalf("site A's PHP on B's settings and uploads: %q, want both denied", body)
			}
			if _, body, _ := h.get(t, b, "/"+probe, any); body != "read: ok\nlist: ok\n" {
				t.Fatalf("site B's PHP on its own settings and uploads: %q, want both ok", body)
			}
			os.Remove(filepath.Join(root, probe))

			// Site A's own logs: its access log has the request just
			// made, its pool's PHP log what its PHP logged, and --follow
			// prints a request made while it runs.
			if out := must(t, h.home, "site", "logs", a, "--access", "--lines", "5"); !strings.Contains(out, `"GET /`+probe+` HTTP/1.1" 200`) {
				t.Fatalf("site logs --access of %s: %q, want the probe's request", a, out)
			}
			marker := "aegir-marker-" + strings.Split(a, ".")[0]
			logger := "aegir-log-" + strings.Split(a, ".")[0] + ".php"
			if err := os.WriteFile(filepath.Join(root, logger), []byte(`<?php error_log("`+marker+`"); echo "logged";`), 0o644); err != nil {
				t.Fatal(err)
			}
			h.get(t, a, "/"+logger, any)
			os.Remove(filepath.Join(root, logger))
			if out := must(t, h.home, "site", "logs", a, "--php"); !strings.Contains(out, marker) {
				t.Fatalf("site logs --php of %s: %q, want %s", a, out, marker)
			}
			// The request is made again until it is printed: the first
			// may come before the follower read the log's size.
			follow := followLogs(t, h.home, a, "--access", "--lines", "0")
			if out := follow.waitFor(t, "GET /?follow-"+marker, func() { h.get(t, a, "/?follow-"+marker, any) }); strings.Contains(out, "GET /"+probe) {
				t.Fatalf("--follow --lines 0 printed an old line: %q", out)
			}

			// B made shared again: it runs as the web server's user, its
			// uploads are that user's, its user, pool, temporary files and
			// sessions are gone, its logs stay.
			putWhoami(t, root)
			must(t, h.home, "site", "edit", b, "--isolation", "shared", "-q")
			runsAs(t, h.web, b, b, "www-data")
			if o, _, _ := ownerOf(t, filepath.Join(root, "wp-content/uploads", b, "2026/01/b.txt")); o != "www-data" {
				t.Fatalf("b's upload belongs to %s once shared, want www-data", o)
			}
			if _, ok := userComment(ub); ok || exists(h.poolFile(b)) || exists(filepath.Join(h.runtime, "sites", b, "tmp")) || exists(filepath.Join(h.runtime, "sites", b, "sessions")) {
				t.Fatalf("b shared again: user there %v, pool there %v, tmp there %v", ok, exists(h.poolFile(b)), exists(filepath.Join(h.runtime, "sites", b, "tmp")))
			}
			if !exists(filepath.Join(h.runtime, "sites", b, "logs", "access.log")) {
				t.Fatal("b's logs went when it became shared")
			}

			for _, d := range []string{a, b} {
				must(t, h.home, "site", "delete", d, "--no-backup", "-q")
				h.runtimeGone(t, d)
			}
		})
	}
}

// follower is an aegir site logs --follow running until the test ends.
type follower struct {
	cli.SyncBuffer
	stop context.CancelFunc
	done chan int
}

// followLogs runs aegir site logs DOMAIN --follow ARGS in the background.
func followLogs(t *testing.T, home, domain string, args ...string) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{stop: cancel, done: make(chan int, 1)}
	var errb strings.Builder
	go func() {
		f.done <- cli.Run(ctx, append([]string{"--home", home, "site", "logs", domain, "--follow"}, args...), cli.IOStreams{In: strings.NewReader(""), Out: f, Err: &errb})
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

// waitFor waits until the follower printed want, calling poke every
// second until then, and stops it; it returns all it printed.
func (f *follower) waitFor(t *testing.T, want string, poke func()) string {
	t.Helper()
	for i := 0; i < 300 && !strings.Contains(f.String(), want); i++ {
		if i%10 == 0 {
			poke()
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.stop()
	if code := <-f.done; code != 0 {
		t.Fatalf("site logs --follow: exit %d", code)
	}
	f.done <- 0
	out := f.String()
	if !strings.Contains(out, want) {
		t.Fatalf("site logs --follow printed %q, want %q", out, want)
	}
	return out
}

// An isolated Drupal site (a stand-in Drupal tree whose drush records its
// calls: Drupal itself cannot be fetched here): it answers through its own
// pool as its own user, its files directory (sites/DOMAIN/files) and what
// is in it are its user's, its settings.php its group's 0440, and a PHP
// file of the platform run by another isolated site's pool gets
// "Permission denied" reading that settings.php, while the site's own
// pool reads it. A script compiled before the second site's install
// reloaded php-fpm is compiled again after it.
func TestIsolatedDrupal(t *testing.T) {
	t.Parallel()
	h := newIsoEnv(t, "nginx")
	logDir := testenv.PublicDir(t)
	if err := os.Chmod(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	root := h.addDrupal(t, "d10", filepath.Join(logDir, "drush-args"), filepath.Join(logDir, "fail-status"))
	a, b := isoDomain(t, "isd-a"), isoDomain(t, "isd-b")
	ua, ub := entities.SiteUnixUser(a), entities.SiteUnixUser(b)
	// A's PHP compiles a script; B's install reloads php-fpm, which
	// empties its opcache, and B's new pool compiles that script again
	// (what php-fpm had compiled of the platform before the reload).
	must(t, h.home, "site", "install", a, "--platform", "d10", "--isolation", "site", "-q")
	hot, cached := "aegir-hot-"+strings.Split(a, ".")[0]+".php", "aegir-cached-"+strings.Split(a, ".")[0]+".php"
	for f, code := range map[string]string{hot: `<?php echo "hot";`, cached: fmt.Sprintf(`<?php echo opcache_is_script_cached(%q) ? "cached" : "not cached";`, filepath.Join(root, hot))} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(root, f))
		// Older than opcache.file_update_protection (2 s): opcache
		// caches no file written just now.
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(filepath.Join(root, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	isHot := func(code int, body string, _ http.Header) bool { return code == 200 && body == "hot" }
	if code, body, _ := h.get(t, a, "/"+hot, isHot); !isHot(code, body, nil) {
		t.Fatalf("GET %s/%s: %d %q", a, hot, code, body)
	}
	must(t, h.home, "site", "install", b, "--platform", "d10", "--isolation", "site", "-q")
	isCached := func(code int, body string, _ http.Header) bool { return code == 200 && body == "cached" }
	if code, body, _ := h.get(t, b, "/"+cached, isCached); !isCached(code, body, nil) {
		t.Fatalf("after %s's install reloaded php-fpm, the script %s's PHP ran: %d %q, want cached", b, a, code, body)
	}
	putWhoami(t, root)
	for d, u := range map[string]string{a: ua, b: ub} {
		page := func(code int, body string, _ http.Header) bool { return code == 200 && body == "drupal ok" }
		if code, body, _ := h.get(t, d, "/", page); !page(code, body, nil) {
			t.Fatalf("GET %s: %d %.300q, want drupal ok", d, code, body)
		}
		as := func(code int, body string, _ http.Header) bool { return code == 200 && body == u }
		if code, body, _ := h.get(t, d, "/"+whoami, as); !as(code, body, nil) {
			t.Fatalf("%s's PHP runs as %q (%d), want %s", d, body, code, u)
		}
		if users := poolUsers(t, u); len(users) == 0 || strings.ReplaceAll(strings.Join(users, ""), u, "") != "" {
			t.Fatalf("pool %s's workers run as %v, want %s", u, users, u)
		}
		files := filepath.Join(root, "sites", d, "files")
		if o, _, m := ownerOf(t, files); o != u || !m.IsDir() {
			t.Fatalf("%s: owner %s %v, want a directory of %s", files, o, m, u)
		}
		settings := filepath.Join(root, "sites", d, "settings.php")
		if _, g, m := ownerOf(t, settings); g != u || m.Perm() != 0o440 {
			t.Fatalf("%s: group %s mode %v, want %s 0440", settings, g, m, u)
		}
	}
	// What the site's PHP writes in its files directory is its user's.
	writer := "aegir-write-" + strings.Split(a, ".")[0] + ".php"
	if err := os.WriteFile(filepath.Join(root, writer), []byte(fmt.Sprintf(`<?php
$d = %q;
echo @mkdir($d) && @file_put_contents($d . '/x.txt', 'x') ? 'written' : 'failed: ' . error_get_last()['message'];
`, filepath.Join(root, "sites", a, "files/styles"))), 0o644); err != nil {
		t.Fatal(err)
	}
	okWrite := func(code int, body string, _ http.Header) bool { return code == 200 && body == "written" }
	if code, body, _ := h.get(t, a, "/"+writer, okWrite); !okWrite(code, body, nil) {
		t.Fatalf("%s's PHP writing in its files directory: %d %q", a, code, body)
	}
	os.Remove(filepath.Join(root, writer))
	if o, _, _ := ownerOf(t, filepath.Join(root, "sites", a, "files/styles/x.txt")); o != ua {
		t.Fatalf("a file %s's PHP wrote belongs to %s, want %s", a, o, ua)
	}

	probe := "aegir-probe-" + strings.Split(a, ".")[0] + ".php"
	if err := os.WriteFile(filepath.Join(root, probe), []byte(fmt.Sprintf(`<?php
$r = @file_get_contents(%q);
echo $r === false ? "read: " . error_get_last()["message"] : "read: ok";
`, filepath.Join(root, "sites", a, "settings.php"))), 0o644); err != nil {
		t.Fatal(err)
	}
	any := func(code int, _ string, _ http.Header) bool { return code == 200 }
	if _, body, _ := h.get(t, b, "/"+probe, any); !strings.Contains(body, "read: file_get_contents(") || !strings.Contains(body, "Permission denied") {
		t.Fatalf("site B's PHP reading A's settings.php: %q, want permission denied", body)
	}
	if _, body, _ := h.get(t, a, "/"+probe, any); body != "read: ok" {
		t.Fatalf("site A's PHP reading its own settings.php: %q, want ok", body)
	}
	os.Remove(filepath.Join(root, probe))

	// Nor through include, once A's pool has compiled A's settings.php
	// into the opcache every pool of the master shares (php-fpm checks
	// the file's permissions for B's user: opcache.validate_permission).
	settings := filepath.Join(root, "sites", a, "settings.php")
	incl := "aegir-include-" + strings.Split(a, ".")[0] + ".php"
	old := time.Now().Add(-time.Hour) // opcache caches no file written just now
	if err := os.Chtimes(settings, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, incl), []byte(fmt.Sprintf(`<?php
$app_root = %q; $site_path = 'sites/x';
$r = @include %q;
echo $r === false ? "denied" : "read " . $databases['default']['default']['database'];
`, root, settings)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, incl), old, old); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := h.get(t, a, "/"+incl, any); !strings.HasPrefix(body, "read ") || body == "read " {
		t.Fatalf("site A's PHP including its own settings.php: %q, want its database", body)
	}
	if _, body, _ := h.get(t, b, "/"+incl, any); body != "denied" {
		t.Fatalf("site B's PHP including A's settings.php once A's pool compiled it: %q, want denied", body)
	}
	os.Remove(filepath.Join(root, incl))
	os.Remove(filepath.Join(root, whoami))
	for _, d := range []string{a, b} {
		must(t, h.home, "site", "delete", d, "--no-backup", "-q")
		h.runtimeGone(t, d)
	}

	// A Drupal installer that fails while the site's pool is readied
	// beside it: the install fails, and its pool, user and directories
	// go with the rest.
	failing := drupalPlatform(t, filepath.Join(logDir, "drush-args-f"), filepath.Join(logDir, "fail-status-f"))
	if err := os.WriteFile(filepath.Join(failing, "vendor/bin/drush"), []byte("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = site:install ] && { echo 'site:install failed' >&2; exit 1; }; done\necho '[success] done.'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, h.home, "platform", "add", "d10f", "--server", "web1", "--root", failing, "--drush", filepath.Join(failing, "vendor/bin/drush"), "-q")
	c := isoDomain(t, "isd-c")
	if _, errs, code := aegir(t, h.home, "site", "install", c, "--platform", "d10f", "--isolation", "site"); code == 0 || !strings.Contains(errs, "site:install failed") {
		t.Fatalf("install with a failing drush: exit %d\n%s", code, errs)
	}
	h.runtimeGone(t, c)
	if exists(filepath.Join(failing, "sites", c)) {
		t.Errorf("the failed install left %s", filepath.Join(failing, "sites", c))
	}
}

// An isolated install readies its pool beside its installer, and still
// fails, leaving nothing of the site, when its pool does not come to
// serve: php-fpm's test refuses it (the pool is put back as it was), or
// the reload runs but the pool's socket never answers (the reload's own
// outcome); then, with php-fpm's commands right again, a site installs
// and answers through its pool.
func TestIsolatedInstallFailedPoolIsUndone(t *testing.T) {
	t.Parallel()
	h := newIsoEnv(t, "nginx")
	root := h.wpPlatform(t, "wp")
	conf := filepath.Join(h.home, "aegir.yaml")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	set := func(key, from, to string) {
		t.Helper()
		b := strings.Replace(string(orig), key+": '"+from+"'", key+": '"+to+"'", 1)
		if b == string(orig) {
			t.Fatalf("no %s: '%s' in %s", key, from, conf)
		}
		if err := os.WriteFile(conf, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, key, from, to, want string
	}{
		{"test", "test_cmd", h.fpm.TestCmd, "false", "configuration test failed with the pool"},
		{"reload", "reload_cmd", h.fpm.ReloadCmd, "true", "does not answer after php-fpm's reload"},
	} {
		set(c.key, c.from, c.to)
		d := isoDomain(t, "isf-"+c.name)
		if _, errs, code := aegir(t, h.home, "site", "install", d, "--platform", "wp", "--isolation", "site"); code == 0 || !strings.Contains(errs, c.want) {
			t.Fatalf("install with %s '%s': exit %d, want a failure saying %q:\n%s", c.key, c.to, code, c.want, errs)
		}
		h.runtimeGone(t, d)
		if left := leftOf(t, root, d); len(left) != 0 {
			t.Errorf("install with %s '%s' left %s", c.key, c.to, strings.Join(left, ", "))
		}
	}
	if err := os.WriteFile(conf, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	d := isoDomain(t, "isf-ok")
	must(t, h.home, "site", "install", d, "--platform", "wp", "--isolation", "site", "-q")
	putWhoami(t, root)
	runsAs(t, h.web, d, d, entities.SiteUnixUser(d))
	must(t, h.home, "site", "delete", d, "--no-backup", "-q")
	h.runtimeGone(t, d)
}
