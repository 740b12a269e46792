package fpm_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	pexec "github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
)

// domain is a new domain whose Unix user, if aegir makes it, is removed
// when the test ends (only that one: its comment names the domain).
func domain(t *testing.T) string {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	d := "fpm" + hex.EncodeToString(b[:]) + ".test"
	u := entities.SiteUnixUser(d)
	t.Cleanup(func() {
		out, err := exec.Command("getent", "passwd", u).Output()
		if err == nil && strings.Contains(string(out), ":aegir site "+d+":") {
			_ = exec.Command("pkill", "-KILL", "-u", u).Run()
			_ = exec.Command("userdel", "-f", u).Run()
		}
	})
	return d
}

type logLines []string

func (l *logLines) Log(level, msg string) { *l = append(*l, level+": "+msg) }

func newRuntime(t *testing.T, p *testenv.PHPFPM) (*fpm.Runtime, *logLines) {
	t.Helper()
	var log logLines
	env := &engine.Env{Log: &log, Reloads: engine.NewReloadSet()}
	rt, err := fpm.New(pexec.NewLocal(), fpm.Config{FPMSpec: provision.FPMSpec{PoolDir: p.PoolDir, TestCmd: p.TestCmd, ReloadCmd: p.ReloadCmd,
		RuntimeDir: p.RuntimeDir}}, env)
	if err != nil {
		t.Fatal(err)
	}
	return rt, &log
}

func TestRenderPool(t *testing.T) {
	rt, err := fpm.New(pexec.NewLocal(), fpm.Config{FPMSpec: provision.FPMSpec{RuntimeDir: "/srv/aegir", DisableFunctions: "exec, system"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := fpm.Site{Domain: "blog.example.com", User: "ae-blog_example_com", Version: "8.2", Root: "/var/www/wp"}
	got := string(rt.RenderPool(s))
	for _, want := range []string{"[ae-blog_example_com]\n", "user = ae-blog_example_com\n", "group = ae-blog_example_com\n",
		"listen = /srv/aegir/fpm/ae-blog_example_com.sock\n", "listen.owner = www-data\n", "listen.mode = 0660\n", "pm = ondemand\n",
		"php_admin_value[open_basedir] = /var/www/wp/:/srv/aegir/sites/blog.example.com/\n",
		"php_admin_value[upload_tmp_dir] = /srv/aegir/sites/blog.example.com/tmp\n",
		"php_admin_value[session.save_path] = /srv/aegir/sites/blog.example.com/sessions\n",
		"php_admin_value[error_log] = /srv/aegir/sites/blog.example.com/logs/php.log\n",
		"php_admin_value[disable_functions] = exec,system\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("pool lacks %q:\n%s", want, got)
		}
	}
	if f := rt.PoolFile("8.2", s.User); f != "/etc/php/8.2/fpm/pool.d/aegir-ae-blog_example_com.conf" {
		t.Errorf("pool file %s", f)
	}
}

func TestCheckConfig(t *testing.T) {
	for _, bad := range []provision.FPMSpec{{PoolDir: "etc/php"}, {PoolDir: "/etc/php/{version}/../x"}, {RuntimeDir: "/var/lib/a b"},
		{TestCmd: "php-fpm -t\nrm -rf /"}, {DisableFunctions: "exec;system"}, {DisableFunctions: "exec,$x"}} {
		if err := fpm.CheckConfig(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := fpm.CheckConfig(provision.FPMSpec{PoolDir: fpm.DefaultPoolDir, TestCmd: fpm.DefaultTestCmd, ReloadCmd: fpm.DefaultReloadCmd,
		RuntimeDir: fpm.DefaultRuntimeDir, DisableFunctions: fpm.DefaultDisableFunctions}); err != nil {
		t.Errorf("defaults: %v", err)
	}
	// A site whose user is not its own is refused before anything runs.
	rt, _ := fpm.New(pexec.NewLocal(), fpm.Config{}, nil)
	if _, err := rt.EnsureUser(context.Background(), fpm.Site{Domain: "a.test", User: "root", Version: "8.2", Root: "/srv/wp"}); err == nil {
		t.Error("user root accepted for a.test")
	}
}

func TestChooseVersion(t *testing.T) {
	if v, err := fpm.ChooseVersion("", []string{"7.4", "8.2"}); v != "8.2" || err != nil {
		t.Errorf("default: %q %v", v, err)
	}
	if v, err := fpm.ChooseVersion("7.4", []string{"7.4", "8.2"}); v != "7.4" || err != nil {
		t.Errorf("7.4: %q %v", v, err)
	}
	_, err := fpm.ChooseVersion("8.1", []string{"7.4", "8.2"})
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext || !strings.Contains(err.Error(), "7.4, 8.2") {
		t.Errorf("absent version: %v", err)
	}
	// This machine's php-fpm is among the versions found.
	vs, err := fpm.Versions(context.Background(), pexec.NewLocal())
	if err != nil || len(vs) == 0 || vs[len(vs)-1] != strings.TrimPrefix(filepath.Base(testenv.PHPFPMBinary), "php-fpm") {
		t.Errorf("versions %v %v", vs, err)
	}
}

// A pool through the real php-fpm: its user made, the pool written,
// tested and reloaded, its socket answering; a pool whose user does not
// exist fails php-fpm's test and is removed again, php-fpm keeping its
// configuration; removal leaves no file, socket or user.
func TestPoolLifecycle(t *testing.T) {
	p := testenv.StartPHPFPMPools(t)
	rt, log := newRuntime(t, p)
	ctx := context.Background()
	d := domain(t)
	s := fpm.Site{Domain: d, User: entities.SiteUnixUser(d), Version: strings.TrimPrefix(filepath.Base(testenv.PHPFPMBinary), "php-fpm"), Root: t.TempDir()}
	file := filepath.Join(p.PoolDir, "aegir-"+s.User+".conf")

	// No user yet: php-fpm's test fails and the file goes.
	if _, err := rt.WritePool(ctx, s, false); err == nil || !strings.Contains(err.Error(), "configuration test failed") || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("pool of a missing user: %v", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed pool file left: %v", err)
	}

	if made, err := rt.EnsureUser(ctx, s); err != nil || !made {
		t.Fatalf("EnsureUser: %v %v", made, err)
	}
	if made, err := rt.EnsureUser(ctx, s); err != nil || made {
		t.Fatalf("second EnsureUser: %v %v", made, err)
	}
	if err := rt.EnsureDirs(ctx, s.Domain, s.User); err != nil {
		t.Fatal(err)
	}
	changed, err := rt.WritePool(ctx, s, false)
	if err != nil || !changed {
		t.Fatalf("WritePool: %v %v\n%s", changed, err, strings.Join(*log, "\n"))
	}
	if changed, err := rt.WritePool(ctx, s, false); err != nil || changed {
		t.Fatalf("second WritePool: %v %v", changed, err)
	}
	sock := rt.Socket(s.User)
	waitFor(t, func() bool { fi, err := os.Stat(sock); return err == nil && fi.Mode()&os.ModeSocket != 0 })
	for _, dir := range []string{"tmp", "sessions"} {
		fi, err := os.Stat(filepath.Join(rt.SiteDir(d), dir))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", dir, fi, err)
		}
	}

	if _, err := rt.RemovePool(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveUser(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveDirs(ctx, s.Domain); err != nil {
		t.Fatal(err)
	}
	for _, left := range []string{file, sock, rt.SiteDir(d)} {
		if _, err := os.Lstat(left); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", left, err)
		}
	}
	if err := exec.Command("getent", "passwd", s.User).Run(); err == nil {
		t.Errorf("user %s left", s.User)
	}
}

// A pool written whose reload failed is served by the next write of a
// pool of that version, even one that changes nothing (a verify of the
// site once php-fpm reloads again).
func TestFailedReloadRepaired(t *testing.T) {
	p := testenv.StartPHPFPMPools(t)
	ctx := context.Background()
	broken := *p
	broken.ReloadCmd = "false"
	rtBroken, _ := newRuntime(t, &broken)
	d := domain(t)
	s := fpm.Site{Domain: d, User: entities.SiteUnixUser(d), Version: strings.TrimPrefix(filepath.Base(testenv.PHPFPMBinary), "php-fpm"), Root: t.TempDir()}
	if _, err := rtBroken.EnsureUser(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rtBroken.EnsureDirs(ctx, s.Domain, s.User); err != nil {
		t.Fatal(err)
	}
	if changed, err := rtBroken.WritePool(ctx, s, false); !changed || err == nil || !strings.Contains(err.Error(), "reloading php-fpm") {
		t.Fatalf("WritePool with a failing reload: %v %v", changed, err)
	}
	sock := rtBroken.Socket(s.User)
	if _, err := os.Stat(sock); err == nil {
		t.Fatal("the pool answers without a reload")
	}
	rt, log := newRuntime(t, p)
	if changed, err := rt.WritePool(ctx, s, false); changed || err != nil {
		t.Fatalf("second WritePool: %v %v", changed, err)
	}
	if !strings.Contains(strings.Join(*log, "\n"), "an earlier reload of php-fpm") {
		t.Errorf("log of the repair: %q", *log)
	}
	waitFor(t, func() bool { fi, err := os.Stat(sock); return err == nil && fi.Mode()&os.ModeSocket != 0 })
	// Repaired: the next write reloads no more.
	*log = nil
	if _, err := rt.WritePool(ctx, s, false); err != nil || strings.Contains(strings.Join(*log, "\n"), "reloading") {
		t.Fatalf("third WritePool: %v %q", err, *log)
	}
	if _, err := rt.RemovePool(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveUser(ctx, s); err != nil {
		t.Fatal(err)
	}
}

// A user of the site's name that aegir did not make for it is neither
// taken nor removed.
func TestForeignUser(t *testing.T) {
	rt, _ := newRuntime(t, &testenv.PHPFPM{PoolDir: t.TempDir(), RuntimeDir: t.TempDir(), TestCmd: "true", ReloadCmd: "true"})
	d := domain(t)
	u := entities.SiteUnixUser(d)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--comment", "aegir site "+d, u).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	// The user the test made has the comment domain() removes: make it
	// another's.
	if out, err := exec.Command("usermod", "--comment", "someone else", u).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", "-f", u).Run() })
	s := fpm.Site{Domain: d, User: u, Version: "8.2", Root: "/srv/wp"}
	if _, err := rt.EnsureUser(context.Background(), s); err == nil || !strings.Contains(err.Error(), "is not aegir's") {
		t.Fatalf("foreign user taken: %v", err)
	}
	if err := rt.RemoveUser(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("getent", "passwd", u).Run(); err != nil {
		t.Fatal("a user not aegir's was removed")
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

// The logrotate file names the sites' logs under the runtime directory
// and is one the real logrotate reads without complaint; a shared site's
// log directory is root's, and what an isolated site had of its own goes
// when it becomes shared.
func TestLogsAndLogrotate(t *testing.T) {
	dir := t.TempDir()
	rt, _ := newRuntime(t, &testenv.PHPFPM{PoolDir: t.TempDir(), RuntimeDir: filepath.Join(dir, "runtime"), TestCmd: "true", ReloadCmd: "true"})
	ctx := context.Background()
	if got := fpm.LogFile("", "a.test", fpm.LogPHP); got != "/var/lib/aegir/sites/a.test/logs/php.log" {
		t.Errorf("LogFile: %s", got)
	}
	conf := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(conf, rt.Logrotate(), 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rt.Logrotate()), filepath.Join(dir, "runtime", "sites")+"/*/logs/*.log {") {
		t.Errorf("logrotate: %s", rt.Logrotate())
	}
	if out, err := exec.Command("logrotate", "-d", "-s", filepath.Join(dir, "state"), conf).CombinedOutput(); err != nil || strings.Contains(string(out), "error:") {
		t.Fatalf("logrotate -d: %v\n%s", err, out)
	}
	d := domain(t)
	s := fpm.Site{Domain: d, User: entities.SiteUnixUser(d), Version: "8.2", Root: "/srv/wp"}
	if _, err := rt.EnsureUser(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rt.EnsureDirs(ctx, d, s.User); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveUser(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := rt.EnsureDirs(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	// Its temporary files and sessions stay until its pool is gone (the
	// pool may still run while its virtual host switches).
	for _, kept := range []string{"tmp", "sessions"} {
		if _, err := os.Lstat(filepath.Join(rt.SiteDir(d), kept)); err != nil {
			t.Errorf("%s of a site becoming shared, before DropOwnDirs: %v", kept, err)
		}
	}
	if err := rt.DropOwnDirs(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"tmp", "sessions"} {
		if _, err := os.Lstat(filepath.Join(rt.SiteDir(d), gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of a site now shared: %v", gone, err)
		}
	}
	fi, err := os.Stat(rt.LogDir(d))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("log dir of a shared site: %v %v", fi, err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("log dir of a shared site belongs to %d:%d", st.Uid, st.Gid)
	}
}
