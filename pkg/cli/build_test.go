package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// writeTree writes files (path relative to dir: content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gitIn runs git in dir as the tests' committer and returns its output.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.Command("git", append([]string{"-c", "user.name=aegir test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main"}, args...)...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// gitRepo makes a bare repository of commits made in turn, each tree's
// files (on top of the previous ones) committed and tagged with its tag
// when not empty, and returns its path.
func gitRepo(t *testing.T, commits ...commitTree) string {
	t.Helper()
	testenv.Need(t, "git")
	dir := testenv.PublicDir(t)
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	gitIn(t, work, "init", "-q")
	for i, c := range commits {
		writeTree(t, work, c.files)
		gitIn(t, work, "add", "-A")
		gitIn(t, work, "commit", "-q", "-m", "commit "+itoa(i))
		if c.tag != "" {
			gitIn(t, work, "tag", c.tag)
		}
	}
	bare := filepath.Join(dir, "repo.git")
	gitIn(t, dir, "clone", "-q", "--bare", work, bare)
	return bare
}

// commitTree is one commit of gitRepo: the files it adds or changes and
// its tag (none when empty).
type commitTree struct {
	tag   string
	files map[string]string
}

// d7Tree is a Drupal 7 tree at version v (includes/bootstrap.inc).
func d7Tree(v string) map[string]string {
	return map[string]string{
		"includes/bootstrap.inc":             "<?php\ndefine('VERSION', '" + v + "');\n",
		"index.php":                          "<?php echo 'drupal 7 ok';\n",
		"modules/node/node.info":             "name = Node\ncore = 7.x\nversion = VERSION\n",
		"sites/default/default.settings.php": "<?php\n",
	}
}

// A platform built from a local git repository at a tag: cloned into its
// root, the commit of the tag and the core version of the tree recorded,
// the clone in the verify task's log; without --ref the default branch.
// A ref that does not exist, or a root that is there already, fails the
// build and leaves no platform directory (and the root that was there as
// it was); bad flags exit 2 with nothing recorded.
func TestPlatformFromGit(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t, "nginx")
	repo := gitRepo(t, commitTree{"7.100", d7Tree("7.100")}, commitTree{"7.101", d7Tree("7.101")}, commitTree{"", d7Tree("7.102-dev")})
	tagCommit := gitIn(t, repo, "rev-parse", "7.101^{commit}")
	parent := testenv.PublicDir(t)
	root := filepath.Join(parent, "d7-7.101")

	out, errs, code := aegir(t, h.home, "platform", "add", "d7", "--server", "web1", "--root", root, "--git", repo, "--ref", "7.101", "--format", "json")
	if code != 0 {
		t.Fatalf("platform add --git: exit %d\n%s\n%s", code, out, errs)
	}
	p := platformOf(t, h.home, "d7")
	if p.Status != "enabled" || p.Type != "drupal" || p.CoreVersion != "7.101" || p.Commit != tagCommit || p.GitURL != repo || p.GitRef != "7.101" {
		t.Fatalf("the platform built at 7.101: %+v, want commit %s", p, tagCommit)
	}
	if b, err := os.ReadFile(filepath.Join(root, "includes/bootstrap.inc")); err != nil || !strings.Contains(string(b), "7.101") {
		t.Fatalf("the checkout: %q %v", b, err)
	}
	if log := verifyLog(t, h.home, "d7"); !strings.Contains(log, "checked out "+repo+" at 7.101: commit "+tagCommit) || !strings.Contains(log, "clone") {
		t.Fatalf("the verify task's log has no build:\n%s", log)
	}

	// The default branch.
	mainRoot := filepath.Join(parent, "d7-main")
	must(t, h.home, "platform", "add", "d7main", "--server", "web1", "--root", mainRoot, "--git", "file://"+repo, "-q")
	if p := platformOf(t, h.home, "d7main"); p.CoreVersion != "7.102-dev" || p.Commit != gitIn(t, repo, "rev-parse", "main") {
		t.Fatalf("the platform built from the default branch: %+v", p)
	}

	// A ref that is not there: the task fails, nothing is at the root
	// nor beside it; the record waits, queued, as after a failed verify.
	badRoot := filepath.Join(parent, "d7-bad")
	_, errs, code = aegir(t, h.home, "platform", "add", "bad", "--server", "web1", "--root", badRoot, "--git", repo, "--ref", "7.999")
	if code != cli.ExitFailed || !strings.Contains(errs, "git clone of "+repo+" at 7.999") || !strings.Contains(errs, "retry") {
		t.Fatalf("a build at a missing ref: exit %d\n%s", code, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(parent, "*d7-bad*")); len(left) > 0 {
		t.Fatalf("the failed build left %v", left)
	}
	if p := platformOf(t, h.home, "bad"); p.Status != "queued" {
		t.Fatalf("after the failed build: %+v", p)
	}
	must(t, h.home, "platform", "delete", "bad", "-q")

	// A root that exists is not built over, nor removed.
	_, errs, code = aegir(t, h.home, "platform", "add", "again", "--server", "web1", "--root", root, "--git", repo)
	if code != cli.ExitUsage && code != cli.ExitFailed || !strings.Contains(errs, root) {
		t.Fatalf("a build onto an existing root: exit %d\n%s", code, errs)
	}
	if b, err := os.ReadFile(filepath.Join(root, "includes/bootstrap.inc")); err != nil || !strings.Contains(string(b), "7.101") {
		t.Fatalf("the existing root after a refused build: %q %v", b, err)
	}

	// Bad flags: exit 2, nothing recorded.
	for _, args := range [][]string{
		{"--ref", "7.101"},
		{"--composer"},
		{"--git", "--upload-pack=touch /tmp/x"},
		{"--git", "ext::sh -c id"},
		{"--git", repo, "--ref", "-b"},
		{"--git", repo, "--composer-project", "acme/site"},
		{"--composer-project", "Acme Site"},
	} {
		full := append([]string{"platform", "add", "flags", "--server", "web1", "--root", filepath.Join(parent, "flags")}, args...)
		if _, errs, code := aegir(t, h.home, full...); code != cli.ExitUsage || !strings.Contains(errs, "invalid --") {
			t.Fatalf("aegir %s: exit %d, want 2\n%s", strings.Join(full, " "), code, errs)
		}
		if _, _, code := aegir(t, h.home, "platform", "show", "flags"); code != cli.ExitNotFound {
			t.Fatalf("aegir %s recorded the platform", strings.Join(full, " "))
		}
	}
}

// verifyLog is the log of the newest verify task of platform name.
func verifyLog(t *testing.T, home, name string) string {
	t.Helper()
	var tasks []struct {
		ID     int64
		Type   string
		Target string
	}
	if err := json.Unmarshal([]byte(must(t, home, "task", "list", "--type", "platform.verify", "--format", "json")), &tasks); err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if task.Target == name {
			return must(t, home, "task", "log", itoa(int(task.ID)), "-v")
		}
	}
	t.Fatalf("no verify task of platform %s", name)
	return ""
}

// composerEnv points composer at a home of the test's whose only
// repository is the path repository pkgs (packages copied, not linked),
// with the default repository off and no network.
func composerEnv(t *testing.T, pkgs string) {
	t.Helper()
	testenv.Need(t, "composer")
	home := t.TempDir()
	cfg := `{"repositories": [{"type": "path", "url": "` + pkgs + `/*", "options": {"symlink": false}}, {"packagist": false}]}`
	if err := os.WriteFile(filepath.Join(home, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COMPOSER_HOME", home)
	t.Setenv("COMPOSER_CACHE_DIR", filepath.Join(home, "cache"))
	t.Setenv("COMPOSER_DISABLE_NETWORK", "1")
	t.Setenv("COMPOSER_ALLOW_SUPERUSER", "1")
}

// Platforms built with composer from a path repository the test makes
// (no network): a git checkout of a Drupal project then composer install
// (its vendor/ made, the core version from composer.lock), and a
// WordPress project by composer create-project; a package that is not
// there fails the build and leaves no directory.
func TestPlatformFromComposer(t *testing.T) {
	h := newHostEnv(t, "nginx")
	pkgs := testenv.PublicDir(t)
	writeTree(t, filepath.Join(pkgs, "core"), map[string]string{
		"composer.json": `{"name": "drupal/core", "version": "10.2.3", "type": "library"}`,
		"README.txt":    "Drupal core, as the test's path repository has it\n",
	})
	writeTree(t, filepath.Join(pkgs, "wpcore"), map[string]string{
		"composer.json": `{"name": "johnpbloch/wordpress-core", "version": "6.4.2", "type": "library"}`,
	})
	writeTree(t, filepath.Join(pkgs, "wpsite"), map[string]string{
		"composer.json":           `{"name": "acme/wp-site", "version": "2.0.0", "type": "project", "require": {"johnpbloch/wordpress-core": "6.4.2"}}`,
		"index.php":               "<?php echo 'wp ok';\n",
		"wp-includes/version.php": "<?php\n$wp_version = '6.4.2';\n",
		"wp-content/index.php":    "<?php\n",
	})
	composerEnv(t, pkgs)
	d10 := map[string]string{
		"composer.json":                          `{"name": "acme/d10", "type": "project", "require": {"drupal/core": "10.2.3"}}`,
		"web/core/lib/Drupal.php":                "<?php\nnamespace Drupal;\nclass Drupal {\n  const VERSION = '10.2.3';\n}\n",
		"web/index.php":                          "<?php echo 'drupal ok';\n",
		"web/sites/default/default.settings.php": "<?php\n",
	}
	repo := gitRepo(t, commitTree{"1.0.0", d10})
	parent := testenv.PublicDir(t)

	root := filepath.Join(parent, "d10")
	must(t, h.home, "platform", "add", "d10", "--server", "web1", "--root", root, "--git", repo, "--ref", "1.0.0", "--composer", "-q")
	p := platformOf(t, h.home, "d10")
	if p.Status != "enabled" || p.Type != "drupal" || p.CoreVersion != "10.2.3" || p.Composer != "install" || p.Commit == "" {
		t.Fatalf("the platform built with composer install: %+v", p)
	}
	if !exists(filepath.Join(root, "vendor/drupal/core/README.txt")) || !exists(filepath.Join(root, "composer.lock")) {
		t.Fatal("composer install made no vendor/drupal/core or composer.lock")
	}
	if log := verifyLog(t, h.home, "d10"); !strings.Contains(log, "composer.lock: drupal/core 10.2.3") || !strings.Contains(log, "install") {
		t.Fatalf("the verify task's log:\n%s", log)
	}

	wpRoot := filepath.Join(parent, "wp")
	must(t, h.home, "platform", "add", "wp", "--server", "web1", "--root", wpRoot, "--composer-project", "acme/wp-site:2.0.0", "-q")
	p = platformOf(t, h.home, "wp")
	if p.Status != "enabled" || p.Type != "wordpress" || p.CoreVersion != "6.4.2" || p.Composer != "project:acme/wp-site:2.0.0" || p.Commit != "" {
		t.Fatalf("the platform built with composer create-project: %+v", p)
	}
	if !exists(filepath.Join(wpRoot, "vendor/johnpbloch/wordpress-core/composer.json")) || !exists(filepath.Join(wpRoot, "wp-includes/version.php")) {
		t.Fatal("composer create-project made no tree")
	}

	noRoot := filepath.Join(parent, "nope")
	_, errs, code := aegir(t, h.home, "platform", "add", "nope", "--server", "web1", "--root", noRoot, "--composer-project", "acme/missing")
	if code != cli.ExitFailed || !strings.Contains(errs, "composer create-project of acme/missing") {
		t.Fatalf("create-project of a missing package: exit %d\n%s", code, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(parent, "*nope*")); len(left) > 0 {
		t.Fatalf("the failed build left %v", left)
	}
}

// A platform built on a remote server over SSH, as its unprivileged
// deploy user: git runs there (the repository is a path the server
// reaches), the checkout is the deploy user's, the commit is recorded; a
// missing ref leaves nothing there.
func TestPlatformFromGitOverSSH(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	r := newRemoteEnv(t, testenv.StartPHPFPM(t), home, "far")
	repo := gitRepo(t, commitTree{"7.101", d7Tree("7.101")})
	commit := gitIn(t, repo, "rev-parse", "7.101^{commit}")
	// The server's git takes a repository of its own user only.
	if out, err := exec.Command("chown", "-R", r.sshd.User, repo).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	root := filepath.Join(r.base, "platforms", "d7")
	must(t, home, "platform", "add", "d7", "--server", "far", "--root", root, "--git", repo, "--ref", "7.101", "-q")
	if p := platformOf(t, home, "d7"); p.Status != "enabled" || p.CoreVersion != "7.101" || p.Commit != commit {
		t.Fatalf("the platform built over SSH: %+v", p)
	}
	if u, _, _ := ownerOf(t, filepath.Join(root, "includes/bootstrap.inc")); u != r.sshd.User {
		t.Fatalf("the checkout belongs to %s, not the deploy user %s", u, r.sshd.User)
	}
	bad := filepath.Join(r.base, "platforms", "bad")
	if _, errs, code := aegir(t, home, "platform", "add", "bad", "--server", "far", "--root", bad, "--git", repo, "--ref", "nope"); code != cli.ExitFailed || !strings.Contains(errs, "failed: fatal: ") {
		t.Fatalf("a build over SSH at a missing ref: exit %d\n%s", code, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(r.base, "platforms", "*bad*")); len(left) > 0 {
		t.Fatalf("the failed build left %v on the server", left)
	}
}
