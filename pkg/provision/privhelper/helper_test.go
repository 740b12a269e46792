package privhelper_test

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/priv"
	"github.com/aegir-project/aegir/pkg/provision/privhelper"
)

// TestMain runs the test binary as the helper when testenv.InstallHelper's
// copy of it is started (through sudo).
func TestMain(m *testing.M) {
	if privhelper.Invoked(os.Args[0]) {
		exe, _ := os.Executable()
		os.Exit(privhelper.Main(os.Args[1:], testenv.HelperConfig(exe), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fixture is a helper configuration for a root of the test's own, whose
// deploy user is nobody.
type fixture struct {
	root, conf string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the helper runs as root")
	}
	base := t.TempDir() // root's, 0700
	f := &fixture{root: filepath.Join(base, "platforms"), conf: filepath.Join(base, "priv.conf")}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, fmt.Sprintf("deploy_user: nobody\nweb_user: www-data\nroots:\n  - %s\nphp_fpm:\n  runtime_dir: %s\n", f.root, filepath.Join(base, "runtime")))
	return f
}

func (f *fixture) write(t *testing.T, conf string) {
	t.Helper()
	if err := os.WriteFile(f.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs the helper in this process and returns its exit status and
// output.
func (f *fixture) run(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := privhelper.Main(args, f.conf, &out, &errb)
	return code, out.String() + errb.String()
}

func owner(t *testing.T, p string) (uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func uidOf(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(u.Uid, &n)
	return n
}

// The helper refuses (exit 2, nothing changed) a path outside its roots,
// with "..", through a symbolic link, a root itself, an owner or group
// that is not the deploy, web or a site's user, a domain that is not one,
// and an unknown operation.
func TestHelperRefuses(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.root, "wp", "uploads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("x"), 0o600)
	link := filepath.Join(f.root, "wp", "link")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"chown", "-R", "nobody:www-data", outside}, "is outside the helper's roots"},
		{[]string{"remove", "/etc"}, "is outside the helper's roots"},
		{[]string{"chown", "nobody", f.root + "/wp/../../etc"}, `must not contain ".."`},
		{[]string{"remove", f.root + "/wp/.."}, `must not contain ".."`},
		{[]string{"chown", "-R", "nobody:www-data", link}, "is a symbolic link"},
		{[]string{"remove", link}, "is a symbolic link"},
		{[]string{"chown", "nobody", filepath.Join(link, "secret")}, "is a symbolic link or not a directory"},
		{[]string{"remove", filepath.Join(link, "secret")}, "is a symbolic link or not a directory"},
		{[]string{"remove", f.root}, "is one of the roots itself"},
		{[]string{"chown", "-R", "nobody", f.root}, "is one of the roots itself"},
		{[]string{"chown", "root", dir}, `owner "root" is neither`},
		{[]string{"chown", "daemon:www-data", dir}, `owner "daemon" is neither`},
		{[]string{"chown", "ae-nosuch_example_com", dir}, `owner "ae-nosuch_example_com" is neither`},
		{[]string{"chown", "nobody:root", dir}, `group "root" is neither`},
		{[]string{"user-add", "../etc"}, "invalid domain"},
		{[]string{"user-add", "root"}, "invalid domain"},
		{[]string{"user-del", "example..com"}, "invalid domain"},
		{[]string{"pool-write", "a.example.com", "8.2", "/etc"}, "is outside the helper's roots"},
		{[]string{"pool-write", "a.example.com", "8.2; rm", f.root + "/wp"}, "invalid version"},
		{[]string{"fpm-reload", "8.2 -x"}, "invalid PHP version"},
		{[]string{"runtime", "a.example.com", "root"}, "must be site, shared or drop"},
		{[]string{"config", "roots"}, "takes 0 arguments"},
		{[]string{"shell", "id"}, `unknown operation "shell"`},
		{[]string{"chown", "nobody"}, "takes 2 arguments"},
	} {
		code, out := f.run(c.args...)
		if code != priv.ExitRefused || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d %q, want 2 and %q", strings.Join(c.args, " "), code, out, c.want)
		}
	}
	// What it tells of its configuration, for server verify.
	if code, out := f.run("config"); code != 0 || !strings.Contains(out, `"roots":["`+f.root+`"]`) || !strings.Contains(out, `"runtime_dir":"`) {
		t.Errorf("config: exit %d %q, want its roots %s", code, out, f.root)
	}
	if uid, _ := owner(t, outside); uid != 0 {
		t.Errorf("%s changed hands", outside)
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("a refused removal removed %s: %v", secret, err)
	}
	if uid, _ := owner(t, dir); uid != 0 {
		t.Errorf("%s changed hands", dir)
	}
}

// chown -R gives a tree to the deploy user and the web server's group,
// changing no link and nothing a link points to; a file of another owner
// or with a second name (a hard link) stops it. remove removes a tree
// with a link in it, never what the link points to.
func TestHelperChownRemove(t *testing.T) {
	f := newFixture(t)
	nobody, www := uidOf(t, "nobody"), uidOf(t, "www-data")
	dir := filepath.Join(f.root, "wp", "uploads")
	os.MkdirAll(filepath.Join(dir, "2026", "01"), 0o755)
	// The deploy user's directories, an upload of the web server's.
	for _, d := range []string{dir, filepath.Join(dir, "2026"), filepath.Join(dir, "2026", "01")} {
		os.Chown(d, nobody, 0)
	}
	up := filepath.Join(dir, "2026", "01", "a.jpg")
	os.WriteFile(up, []byte("jpg"), 0o644)
	os.Chown(up, www, www)
	outside := filepath.Join(t.TempDir(), "target")
	os.WriteFile(outside, []byte("root's"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "link"))

	if code, out := f.run("chown", "-R", "nobody:www-data", dir); code != 0 || !strings.HasPrefix(out, "ok ") {
		t.Fatalf("chown -R: exit %d %s", code, out)
	}
	for _, p := range []string{dir, filepath.Join(dir, "2026"), up} {
		if uid, gid := owner(t, p); uid != nobody || gid != www {
			t.Errorf("%s: %d:%d, want nobody:www-data", p, uid, gid)
		}
	}
	if uid, _ := owner(t, filepath.Join(dir, "link")); uid != 0 {
		t.Errorf("the link changed hands")
	}
	if uid, _ := owner(t, outside); uid != 0 {
		t.Errorf("chown -R followed a link to %s", outside)
	}

	// A file of root's in the tree, and a second name of a file.
	rootFile := filepath.Join(dir, "2026", "01", "root.txt")
	os.WriteFile(rootFile, nil, 0o644)
	if code, out := f.run("chown", "-R", "www-data", dir); code != priv.ExitRefused || !strings.Contains(out, "belongs to uid 0") {
		t.Errorf("chown -R over a file of root's: exit %d %s", code, out)
	}
	if uid, _ := owner(t, rootFile); uid != 0 {
		t.Errorf("root's file changed hands")
	}
	os.Remove(rootFile)
	hard := filepath.Join(dir, "hard")
	if err := os.Link(up, hard); err != nil {
		t.Fatal(err)
	}
	if code, out := f.run("chown", "-R", "www-data", dir); code != priv.ExitRefused || !strings.Contains(out, "has 2 names") {
		t.Errorf("chown -R over a hard link: exit %d %s", code, out)
	}
	os.Remove(hard)

	if code, out := f.run("remove", filepath.Join(f.root, "wp")); code != 0 {
		t.Fatalf("remove: exit %d %s", code, out)
	}
	if _, err := os.Lstat(filepath.Join(f.root, "wp")); !os.IsNotExist(err) {
		t.Errorf("remove left %s: %v", filepath.Join(f.root, "wp"), err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("remove went through the link: %v", err)
	}
	if code, out := f.run("remove", filepath.Join(f.root, "wp")); code != 0 || !strings.Contains(out, "absent") {
		t.Errorf("remove of an absent path: exit %d %s", code, out)
	}
}

// A configuration another user may change, or whose roots are too wide,
// is refused before anything is done.
func TestHelperConfig(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.root, "wp"), 0o755)
	os.Chmod(f.conf, 0o666)
	if code, out := f.run("remove", filepath.Join(f.root, "wp")); code != priv.ExitFailed || !strings.Contains(out, "writable by root alone") {
		t.Errorf("a world-writable configuration: exit %d %s", code, out)
	}
	os.Chmod(f.conf, 0o644)
	os.Chown(f.conf, uidOf(t, "nobody"), 0)
	if code, out := f.run("remove", filepath.Join(f.root, "wp")); code != priv.ExitFailed || !strings.Contains(out, "must belong to root") {
		t.Errorf("a configuration of nobody's: exit %d %s", code, out)
	}
	os.Chown(f.conf, 0, 0)
	for conf, want := range map[string]string{
		"deploy_user: nobody\nroots: [/home]\n":              "two levels below /",
		"deploy_user: root\nroots: [/srv/x]\n":               "must not be root",
		"deploy_user: nobody\n":                              "at least one directory",
		"deploy_user: nobody\nroots: [/srv/x]\nshell: yes\n": "field shell not found",
	} {
		f.write(t, conf)
		if code, out := f.run("remove", "/srv/x/y"); code != priv.ExitFailed || !strings.Contains(out, want) {
			t.Errorf("configuration %q: exit %d %s, want %q", conf, code, out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(f.root, "wp")); err != nil {
		t.Errorf("a refused configuration removed: %v", err)
	}
}

// Through sudo, as a deploy user whose one rule is the helper: sudo runs
// the helper, which refuses a path outside its roots; sudo itself refuses
// anything else (chown, rm, a shell), and a user without the rule gets
// nothing.
func TestHelperThroughSudo(t *testing.T) {
	f := newFixture(t)
	testenv.EnsureDeployUser(t, testenv.HelperUser)
	testenv.EnsureDeployUser(t, testenv.NoSudoUser)
	conf, _ := os.ReadFile(f.conf)
	helper := testenv.InstallHelper(t, strings.Replace(string(conf), "deploy_user: nobody", "deploy_user: "+testenv.HelperUser, 1))
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, nil, 0o644)

	out, code := testenv.AsUser(t, testenv.HelperUser, "sudo", "-n", helper, "version")
	if code != 0 || !strings.HasPrefix(out, "aegir-priv "+priv.Protocol+" ") {
		t.Fatalf("sudo -n %s version: exit %d %s", helper, code, out)
	}
	out, code = testenv.AsUser(t, testenv.HelperUser, "sudo", "-n", helper, "chown", testenv.HelperUser, victim)
	if code != priv.ExitRefused || !strings.Contains(out, "is outside the helper's roots") {
		t.Errorf("the helper on a path outside its roots: exit %d %s", code, out)
	}
	for _, argv := range [][]string{{"chown", testenv.HelperUser, victim}, {"rm", "-f", victim}, {"sh", "-c", "id"}} {
		out, code = testenv.AsUser(t, testenv.HelperUser, append([]string{"sudo", "-n"}, argv...)...)
		if code == 0 || !strings.Contains(out, "sudo:") {
			t.Errorf("sudo -n %s as %s: exit %d %s, want sudo's refusal", strings.Join(argv, " "), testenv.HelperUser, code, out)
		}
	}
	out, code = testenv.AsUser(t, testenv.NoSudoUser, "sudo", "-n", helper, "version")
	if code == 0 || !strings.Contains(out, "sudo:") {
		t.Errorf("the helper as %s, who has no rule: exit %d %s", testenv.NoSudoUser, code, out)
	}
	if uid, _ := owner(t, victim); uid != 0 {
		t.Errorf("%s changed hands", victim)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("%s: %v", victim, err)
	}
}
