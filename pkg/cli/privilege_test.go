package cli_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// newDeployEnv is a remote server reached as deployUser (a testenv deploy
// user: no sudo rule, or only the helper's), with its own nginx whose
// reload the deploy user asks for by touching a file that root watches
// (a systemd path unit's job on a real server): aegir runs no sudo for
// the web server either.
func newDeployEnv(t *testing.T, home, name, deployUser string, fpm *testenv.PHPFPM) *remoteEnv {
	t.Helper()
	r := &remoteEnv{sshd: testenv.StartSSHDWith(t, testenv.SSHDOptions{User: deployUser})}
	r.base = r.sshd.UserTempDir(t)
	r.remoteHome = filepath.Join(r.base, "aegir")
	r.web = testenv.StartNginx(t, filepath.Join(r.remoteHome, "config", name))
	trigger := filepath.Join(r.base, "reload-nginx")
	testenv.ReloadOnTouch(t, r.web, trigger, deployUser)
	must(t, home, "server", "add", name, "--host", r.sshd.Host, "--ssh-user", r.sshd.User, "--ssh-port", itoa(r.sshd.Port),
		"--ssh-key", r.sshd.KeyFile, "--accept-host-key", "--remote-home", r.remoteHome, "-q",
		"--http", "nginx", "--http-port", itoa(r.web.Port), "--https-port", itoa(r.web.HTTPSPort), "--http-listen-ip", "127.0.0.1",
		"--http-test-cmd", "true", "--http-restart-cmd", "touch "+trigger, "--php-fpm", fpm.Socket,
		"--db", "mariadb", "--db-host", "127.0.0.1")
	return r
}

// procUmask is the umask of process pid.
func procUmask(t *testing.T, pid string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no Umask in /proc/%s/status", pid)
	return 0
}

// leftOf lists what under dir names domain (its settings, uploads, virtual
// host, logs).
func leftOf(t *testing.T, dir, domain string) []string {
	t.Helper()
	var left []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(p, domain) {
			left = append(left, p)
		}
		return nil
	})
	return left
}

// uploadThroughPHP has the site's PHP write an upload as WordPress does
// (wp_upload_bits), through the web server, and returns its file.
func uploadThroughPHP(t *testing.T, w *testenv.Web, root, domain string) string {
	t.Helper()
	probe := "aegir-upload-" + strings.Split(domain, ".")[0] + ".php"
	if err := os.WriteFile(filepath.Join(root, probe), []byte(`<?php
require __DIR__ . '/wp-load.php';
$r = wp_upload_bits('probe.txt', null, 'written by php');
echo $r['error'] ? 'error: ' . $r['error'] : 'file: ' . $r['file'];
`), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(root, probe))
	any := func(code int, _ string, _ http.Header) bool { return code == 200 }
	_, body := getFrom(t, w, domain, "/"+probe, any)
	file, ok := strings.CutPrefix(body, "file: ")
	if !ok || !strings.HasPrefix(file, filepath.Join(root, "wp-content", "uploads", domain)+"/") {
		t.Fatalf("PHP's upload: %q", body)
	}
	return file
}

// A remote server whose deploy user has no sudo rule at all hosts a
// shared WordPress site fully: install; its uploads directory is the
// deploy user's with the web server's group, setgid and group-writable;
// PHP (www-data) writes an upload through WordPress; a backup holds it;
// delete leaves nothing of the site on disk.
func TestRemoteNoSudoSharedSite(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	// Its php-fpm keeps group write, as docs/remote-servers.md says to
	// set it (UMask=0002).
	fpm := testenv.StartPHPFPMUmask(t, "0002")
	r := newDeployEnv(t, home, "web3", testenv.NoSudoUser, fpm)
	if out, code := testenv.AsUser(t, testenv.NoSudoUser, "sudo", "-n", "true"); code == 0 {
		t.Fatalf("%s may sudo: %s", testenv.NoSudoUser, out)
	}

	// server verify says what the server lacks for isolated sites; of
	// its php-fpm's umask, nothing.
	if _, errs, code := aegir(t, home, "server", "verify", "web3"); code != 0 || !strings.Contains(errs, "the privileged helper /usr/local/sbin/aegir-priv does not run on") ||
		!strings.Contains(errs, "isolated sites cannot be") || !strings.Contains(errs, "install -o root -g root -m 0755 aegir /usr/local/sbin/aegir-priv") ||
		strings.Contains(errs, "pid "+fpm.Pid(t)+",") {
		t.Fatalf("server verify without the helper: exit %d\n%s", code, errs)
	}
	root := filepath.Join(r.base, "wp")
	must(t, home, "platform", "add", "wp3", "--server", "web3", "--root", root, "--push-from", testenv.WordPressPlatform(t), "-q")
	domain := testsite.Domain(t, "nosudo")
	must(t, home, "site", "install", domain, "--platform", "wp3", "-q")
	title := "<title>" + domain + "</title>"
	hasTitle := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }
	if code, body := getFrom(t, r.web, domain, "/", hasTitle); !hasTitle(code, body, nil) {
		t.Fatalf("GET %s: %d %.300s", domain, code, body)
	}
	uploads := filepath.Join(root, "wp-content", "uploads", domain)
	if o, g, m := ownerOf(t, uploads); o != testenv.NoSudoUser || g != "www-data" || m.Perm() != 0o775 || m&os.ModeSetgid == 0 {
		t.Fatalf("%s: %s:%s %v, want %s:www-data 2775", uploads, o, g, m, testenv.NoSudoUser)
	}

	// PHP, as www-data, writes an upload the way WordPress does.
	file := uploadThroughPHP(t, r.web, root, domain)
	if o, g, _ := ownerOf(t, file); o != "www-data" || g != "www-data" {
		t.Fatalf("%s: %s:%s, want www-data's", file, o, g)
	}

	// PHP code that makes its own directory with mkdir(): group-writable
	// (php-fpm's umask 0002) with the web server's group (setgid), so
	// that the deploy user removes what PHP put there.
	mkdirProbe := "aegir-mkdir-" + strings.Split(domain, ".")[0] + ".php"
	if err := os.WriteFile(filepath.Join(root, mkdirProbe), []byte(fmt.Sprintf(`<?php
$d = %q;
echo @mkdir($d) && @file_put_contents($d . '/cache.txt', 'x') ? 'made' : 'failed: ' . error_get_last()['message'];
`, filepath.Join(uploads, "plugin-cache"))), 0o644); err != nil {
		t.Fatal(err)
	}
	made := func(code int, body string, _ http.Header) bool { return code == 200 && body == "made" }
	if code, body := getFrom(t, r.web, domain, "/"+mkdirProbe, made); !made(code, body, nil) {
		t.Fatalf("PHP's mkdir in %s: %d %q", uploads, code, body)
	}
	os.Remove(filepath.Join(root, mkdirProbe))
	if o, g, m := ownerOf(t, filepath.Join(uploads, "plugin-cache")); o != "www-data" || g != "www-data" || m.Perm()&0o070 != 0o070 {
		t.Fatalf("the directory PHP made: %s:%s %v, want www-data's, group-writable", o, g, m)
	}
	if _, g, m := ownerOf(t, filepath.Join(uploads, "plugin-cache", "cache.txt")); g != "www-data" || m.Perm()&0o060 != 0o060 {
		t.Fatalf("the file PHP made: group %s %v, want www-data's, group-writable", g, m)
	}

	must(t, home, "site", "backup", domain, "-q")
	bs, _ := filepath.Glob(filepath.Join(home, "backups", domain+"*.tar.gz"))
	if len(bs) != 1 {
		t.Fatalf("backups: %v", bs)
	}
	if out, err := exec.Command("tar", "-tzf", bs[0]).Output(); err != nil || !strings.Contains(string(out), "probe.txt") {
		t.Fatalf("the backup lacks PHP's upload (%v):\n%s", err, out)
	}

	must(t, home, "site", "delete", domain, "--no-backup", "-q")
	if left := append(leftOf(t, r.base, domain), leftOf(t, filepath.Join(filepath.Dir(home), "runtime"), domain)...); len(left) != 0 {
		t.Fatalf("left after delete: %s", strings.Join(left, ", "))
	}
	if _, errs, code := aegir(t, home, "site", "show", domain); code != 3 {
		t.Fatalf("site show after delete: exit %d %s", code, errs)
	}
}

// A remote server whose deploy user's one sudo rule is the privileged
// helper installs an isolated WordPress site: its user, pool and runtime
// directories made by the helper, its files handed to its user, its PHP
// running as that user; switched to shared, its files come back to the
// deploy user; delete removes all of it, and nothing is left.
func TestRemoteHelperIsolatedSite(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	fpm := testenv.StartPHPFPMPools(t)
	runtime := filepath.Join(filepath.Dir(home), "runtime")
	logrotate := filepath.Join(filepath.Dir(home), "logrotate.conf")
	r := newDeployEnv(t, home, "web4", testenv.HelperUser, fpm)
	phpFPM := fmt.Sprintf("php_fpm:\n  pool_dir: %s\n  test_cmd: '%s'\n  reload_cmd: '%s'\n  runtime_dir: %s\n  logrotate_file: %s\n",
		fpm.PoolDir, fpm.TestCmd, fpm.ReloadCmd, runtime, logrotate)
	helper := testenv.InstallHelper(t, fmt.Sprintf("deploy_user: %s\nroots:\n  - %s\n%s", testenv.HelperUser, r.base, phpFPM))
	f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "  pool_dir: %s\n  test_cmd: '%s'\n  reload_cmd: '%s'\n  helper: %s\n", fpm.PoolDir, fpm.TestCmd, fpm.ReloadCmd, helper)
	f.Close()
	if _, errs, code := aegir(t, home, "server", "verify", "web4"); code != 0 || !strings.Contains(errs, "the privileged helper "+helper+" on ") || !strings.Contains(errs, "is this aegir") {
		t.Fatalf("server verify with the helper: exit %d\n%s", code, errs)
	} else if mask := procUmask(t, fpm.Pid(t)); mask&0o020 != 0 && (!strings.Contains(errs, fmt.Sprintf("pid %s, umask %04o", fpm.Pid(t), mask)) || !strings.Contains(errs, "add [Service] UMask=0002")) {
		// This php-fpm runs with the test's umask: verify names it.
		t.Fatalf("server verify of a php-fpm whose umask %04o takes group write away:\n%s", mask, errs)
	} else if info, _ := exec.Command(testenv.PHPFPMBinary, "-i").Output(); strings.Contains(string(info), "\nopcache.validate_permission => Off") != strings.Contains(errs, "runs with opcache.validate_permission off") {
		// The system's php.ini of php-fpm, as verify reads it.
		t.Fatalf("server verify and php-fpm's opcache.validate_permission (its -i: off %v):\n%s", strings.Contains(string(info), "\nopcache.validate_permission => Off"), errs)
	}

	root := filepath.Join(r.base, "wp")
	must(t, home, "platform", "add", "wp4", "--server", "web4", "--root", root, "--push-from", testenv.WordPressPlatform(t), "-q")
	// server verify compares the helper's configuration with aegir's: a
	// platform outside its roots, or another runtime directory, is a
	// warning that says what to write in the helper's configuration.
	helperConf := fmt.Sprintf("deploy_user: %s\nroots:\n  - %s\n%s", testenv.HelperUser, r.base, phpFPM)
	if _, errs, code := aegir(t, home, "server", "verify", "web4"); code != 0 || !strings.Contains(errs, "hold the server's platforms, and its php-fpm directories are aegir's") || strings.Contains(errs, "may not touch") {
		t.Fatalf("server verify with the helper's roots holding the platform: exit %d\n%s", code, errs)
	}
	other := filepath.Join(r.base, "elsewhere")
	wrongRuntime := strings.Replace(phpFPM, "runtime_dir: "+runtime, "runtime_dir: "+other, 1)
	if err := os.WriteFile(testenv.HelperConfig(helper), []byte(fmt.Sprintf("deploy_user: %s\nroots:\n  - %s\n%s", testenv.HelperUser, other, wrongRuntime)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, home, "server", "verify", "web4"); code != 0 ||
		!strings.Contains(errs, "may not touch the platform roots "+root+" (its roots: "+other+")") || !strings.Contains(errs, "add their parent directory to roots: in "+testenv.HelperConfig(helper)) ||
		!strings.Contains(errs, "has php_fpm.runtime_dir "+other+", aegir "+runtime) || !strings.Contains(errs, "set php_fpm.runtime_dir: "+runtime+" in "+testenv.HelperConfig(helper)) {
		t.Fatalf("server verify with the helper's roots and runtime_dir not aegir's: exit %d\n%s", code, errs)
	}
	if err := os.WriteFile(testenv.HelperConfig(helper), []byte(helperConf), 0o644); err != nil {
		t.Fatal(err)
	}
	domain := isoDomain(t, "rhelp")
	u := entities.SiteUnixUser(domain)
	must(t, home, "site", "install", domain, "--platform", "wp4", "--isolation", "site", "-q")
	title := "<title>" + domain + "</title>"
	hasTitle := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }
	if code, body := getFrom(t, r.web, domain, "/", hasTitle); !hasTitle(code, body, nil) {
		t.Fatalf("GET %s: %d %.300s", domain, code, body)
	}
	if users := poolUsers(t, u); len(users) == 0 || strings.ReplaceAll(strings.Join(users, ""), u, "") != "" {
		t.Fatalf("pool %s's workers run as %v, want %s", u, users, u)
	}
	if o, g, m := ownerOf(t, filepath.Join(root, "wp-content/uploads", domain)); o != u || g != "www-data" || m.Perm() != 0o750 || m&os.ModeSetgid == 0 {
		t.Fatalf("uploads: %s:%s %v, want %s:www-data 2750", o, g, m, u)
	}
	if o, g, m := ownerOf(t, filepath.Join(root, "wp-content/aegir-sites", domain+".php")); o != testenv.HelperUser || g != u || m.Perm() != 0o440 {
		t.Fatalf("settings: %s:%s %v, want %s:%s 0440", o, g, m, testenv.HelperUser, u)
	}
	// The site's PHP writes an upload, as its user.
	if o, _, _ := ownerOf(t, uploadThroughPHP(t, r.web, root, domain)); o != u {
		t.Fatalf("PHP's upload belongs to %s, want %s", o, u)
	}

	// Shared again: its files (its user's upload too) back to the deploy
	// user with the web server's group, through the helper; its user and
	// pool gone, and its temporary files and sessions (the helper's
	// removal), its logs kept; PHP, as www-data now, still writes uploads.
	siteDir := filepath.Join(runtime, "sites", domain)
	for _, d := range []string{"tmp", "sessions", "logs"} {
		if !exists(filepath.Join(siteDir, d)) {
			t.Fatalf("%s/%s is not there while the site is isolated", siteDir, d)
		}
	}
	must(t, home, "site", "edit", domain, "--isolation", "shared", "-q")
	if _, ok := userComment(u); ok {
		t.Errorf("user %s is left after the switch to shared", u)
	}
	for _, d := range []string{"tmp", "sessions"} {
		if exists(filepath.Join(siteDir, d)) {
			t.Errorf("%s/%s is left after the switch to shared", siteDir, d)
		}
	}
	if !exists(filepath.Join(siteDir, "logs", "access.log")) || exists(filepath.Join(fpm.PoolDir, "aegir-"+u+".conf")) {
		t.Errorf("after the switch to shared: its logs there %v (want them), its pool there %v", exists(filepath.Join(siteDir, "logs", "access.log")), exists(filepath.Join(fpm.PoolDir, "aegir-"+u+".conf")))
	}
	uploads := filepath.Join(root, "wp-content/uploads", domain)
	if o, g, m := ownerOf(t, uploads); o != testenv.HelperUser || g != "www-data" || m.Perm() != 0o775 || m&os.ModeSetgid == 0 {
		t.Fatalf("uploads after the switch: %s:%s %v, want %s:www-data 2775", o, g, m, testenv.HelperUser)
	}
	if o, _, _ := ownerOf(t, uploadThroughPHP(t, r.web, root, domain)); o != "www-data" {
		t.Fatalf("PHP's upload after the switch belongs to %s, want www-data", o)
	}

	must(t, home, "site", "delete", domain, "--no-backup", "-q")
	if _, ok := userComment(u); ok {
		t.Errorf("user %s is left after delete", u)
	}
	left := append(leftOf(t, r.base, domain), leftOf(t, runtime, domain)...)
	left = append(left, leftOf(t, fpm.PoolDir, u)...)
	if len(left) != 0 {
		t.Fatalf("left after delete: %s", strings.Join(left, ", "))
	}
}
