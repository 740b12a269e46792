// Package apptest holds what the tests of the application drivers share:
// trees of files, a log recorder, Drupal trees, a copy of Debian's
// WordPress and databases on the shared MariaDB.
package apptest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/app"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// Remoteish is the local executor posing as a remote one, so that the
// code paths for remote servers (one find command for discovery) run
// here against the same files.
type Remoteish struct{ aexec.Executor }

func (Remoteish) IsLocal() bool { return false }

func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WriteTree writes files (path relative to root: content) under root.
func WriteTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FastTempDir makes a world-readable temporary directory, removed when
// the test ends, on /dev/shm (tmpfs) when there is one: creating files
// there is a hundred times faster than on this machine's disk.
func FastTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(shmOrTmp(), "aegir-app-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shmOrTmp() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && fi.Mode().Perm()&0o002 != 0 {
		return "/dev/shm"
	}
	return os.TempDir()
}

// Log collects a task's log lines.
type Log struct {
	mu    sync.Mutex
	lines []string
}

func (l *Log) Logf(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+": "+fmt.Sprintf(format, args...))
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Drupal7Files is a Drupal 7 tree as a test builds it: core version file,
// core modules, themes and profiles, contrib and custom extensions in
// sites/all and in a site's directory, and things discovery must skip.
var Drupal7Files = map[string]string{
	"index.php":                                   "<?php\n",
	"includes/bootstrap.inc":                      "<?php\n/**\n * The current system version.\n */\ndefine('VERSION', '7.105');\n",
	"modules/node/node.info":                      "name = Node\ndescription = Allows content to be submitted.\npackage = Core\nversion = VERSION\ncore = 7.x\nfiles[] = node.test\n",
	"modules/node/node.module":                    "<?php\n",
	"modules/simpletest/tests/common_test.info":   "name = Common Test\nhidden = TRUE\ncore = 7.x\n",
	"modules/simpletest/tests/common_test.module": "<?php\n",
	"themes/bartik/bartik.info":                   "name = Bartik\nengine = phptemplate\nversion = VERSION\ncore = 7.x\nstylesheets[all][] = css/layout.css\n",
	"profiles/standard/standard.info":             "name = Standard\ndescription = Install with commonly used features.\nversion = VERSION\ncore = 7.x\ndependencies[] = node\n",
	"profiles/standard/standard.profile":          "<?php\n",
	"profiles/myprofile/myprofile.info":           "name = \"My \\\"quoted\\\" profile\"\ncore = 7.x\n",
	"sites/all/modules/contrib/views/views.info": "name = Views\ncore = 7.x\npackage = Views\n\n" +
		"; Information added by Drupal.org packaging script on 2023-01-01\nversion = \"7.x-3.29\"\ncore = \"7.x\"\nproject = \"views\"\ndatestamp = \"1672531200\"\n",
	"sites/all/modules/contrib/views/views.module":       "<?php\n",
	"sites/all/modules/custom/mymod/mymod.info":          "name = My module\ncore = 7.x\n",
	"sites/all/modules/custom/mymod/mymod.module":        "<?php\n",
	"sites/all/themes/mytheme/mytheme.info":              "name = My theme\ncore = 7.x\nbase theme = bartik\n",
	"sites/example.com/modules/sitemod/sitemod.info":     "name = Site module\ncore = 7.x\nversion = 7.x-1.0\n",
	"sites/example.com/modules/sitemod/sitemod.module":   "<?php\n",
	"sites/example.com/files/evil/evil.info":             "name = Uploaded\ncore = 7.x\n",
	"sites/example.com/files/evil/evil.module":           "<?php\n",
	"sites/all/modules/.git/hidden/hidden.info":          "name = Hidden\ncore = 7.x\n",
	"sites/all/modules/contrib/views/tests/vt/vt.info":   "name = Views test\ncore = 7.x\n",
	"sites/all/modules/contrib/views/tests/vt/vt.module": "<?php\n",
	"sites/default/default.settings.php":                 "<?php\n",
}

// Drupal10Files is a Drupal 10 docroot.
var Drupal10Files = map[string]string{
	"index.php":           "<?php\n",
	"autoload.php":        "<?php\nreturn require __DIR__ . '/vendor/autoload.php';\n",
	"core/lib/Drupal.php": "<?php\n\nclass Drupal {\n\n  /**\n   * The current system version.\n   */\n  const VERSION = '10.3.1';\n}\n",
	"core/modules/node/node.info.yml": "name: Node\ntype: module\ndescription: 'Allows content to be submitted.'\npackage: Core\nversion: VERSION\n" +
		"configure: entity.node_type.collection\ndependencies:\n  - drupal:text\n",
	"core/modules/system/tests/modules/system_test/system_test.info.yml": "name: 'System test'\ntype: module\npackage: Testing\nversion: VERSION\n",
	"core/themes/olivero/olivero.info.yml":                               "name: Olivero\ntype: theme\nbase theme: false\nversion: VERSION\nlibraries:\n  - olivero/global-styling\n",
	"core/themes/engines/twig/twig.info.yml":                             "name: Twig\ntype: theme_engine\nversion: VERSION\n",
	"core/profiles/standard/standard.info.yml":                           "name: Standard\ntype: profile\nversion: VERSION\ninstall:\n  - node\n",
	"modules/contrib/token/token.info.yml": "name: Token\ntype: module\ncore_version_requirement: ^9.2 || ^10\nversion: VERSION\n\n" +
		"# Information added by Drupal.org packaging script on 2024-01-01\nversion: '8.x-1.13'\nproject: 'token'\ndatestamp: 1704067200\n",
	"modules/contrib/pathauto/pathauto.info.yml": "name: 'Pathauto'\ntype: module\ndescription: 'Provides a mechanism for modules to automatically generate aliases.'\n" +
		"core_version_requirement: ^9.4 || ^10\ndependencies:\n  - ctools:ctools\n\n# Information added by Drupal.org packaging script on 2024-01-01\nversion: '8.x-1.12'\nproject: 'pathauto'\n",
	"modules/contrib/token/node_modules/foo/foo.info.yml": "name: Foo\ntype: module\n",
	"modules/custom/mymod/mymod.info.yml":                 "name: My module\ntype: module\ncore_version_requirement: ^10\n",
	"modules/custom/d7style/d7style.info":                 "name = Old style\ncore = 7.x\n",
	"themes/custom/mytheme/mytheme.info.yml":              "name: My theme\ntype: theme\nbase theme: olivero\ncore_version_requirement: ^10\n",
	"profiles/contrib/myprof/myprof.info.yml":             "name: My profile\ntype: profile\ncore_version_requirement: ^10\nversion: 1.0.0\nproject: myprof\n",
	"sites/example.com/modules/sitemod/sitemod.info.yml":  "name: Site module\ntype: module\ncore_version_requirement: ^10\n",
	"sites/default/files/php/evil.info.yml":               "name: Uploaded\ntype: module\n",
	"sites/default/default.settings.php":                  "<?php\n",
}

// BuildDrupal writes a Drupal tree into a world-readable temporary
// directory, under the subdirectory docroot ("" for a plain tree), and
// returns the platform root.
func BuildDrupal(t testing.TB, files map[string]string, docroot string) string {
	t.Helper()
	root := filepath.Join(FastTempDir(t), "platform")
	tree := map[string]string{}
	for k, v := range files {
		tree[filepath.Join(docroot, k)] = v
	}
	if docroot != "" {
		tree["composer.json"] = "{\"name\": \"test/project\"}\n"
		tree["vendor/autoload.php"] = "<?php\n"
	}
	WriteTree(t, root, tree)
	return root
}

// wpShared is one copy of Debian's WordPress for the whole test binary:
// copying it takes seconds. Tests that use it use their own domains.
var wpShared struct {
	once sync.Once
	dir  string
	err  error
}

// Main runs the tests of a package and removes the copy of WordPress
// (WPPlatform) after them: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if wpShared.dir != "" {
		os.RemoveAll(wpShared.dir)
	}
	os.Exit(code)
}

// WPPlatform returns a copy of Debian's WordPress (/usr/share/wordpress),
// made with cp -a into a world-readable temporary directory the first
// time and shared by the tests. Its symbolic links point into /usr/share
// and /etc and still resolve from the copy.
func WPPlatform(t testing.TB) string {
	t.Helper()
	testenv.Need(t, "php", "cp")
	if _, err := os.Stat("/usr/share/wordpress/wp-includes/version.php"); err != nil {
		t.Fatalf("Debian's wordpress package is not installed (%v); run: sudo scripts/deps.sh", err)
	}
	wpShared.once.Do(func() {
		dir, err := os.MkdirTemp(shmOrTmp(), "aegir-app-test-")
		if err == nil {
			wpShared.dir = dir
			err = copyWordPress(dir)
		}
		wpShared.err = err
	})
	if wpShared.err != nil {
		t.Fatal(wpShared.err)
	}
	return filepath.Join(wpShared.dir, "wordpress")
}

// WPPlatformOwn is WPPlatform's copy made for one test alone, removed
// after it: for a test that must see Debian's tree as it is (its own
// wp-config.php), whichever tests ran before.
func WPPlatformOwn(t testing.TB) string {
	t.Helper()
	WPPlatform(t) // the same checks
	dir, err := os.MkdirTemp(shmOrTmp(), "aegir-app-test-")
	if err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
		err = copyWordPress(dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "wordpress")
}

// copyWordPress copies Debian's WordPress into dir/wordpress, dir made
// world-readable (the web server user reads it).
func copyWordPress(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", "/usr/share/wordpress", filepath.Join(dir, "wordpress")).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a /usr/share/wordpress: %v: %s", err, out)
	}
	return nil
}

// PHPEval runs PHP code with php-cli in dir and returns its output.
func PHPEval(t testing.TB, dir, code string, env ...string) string {
	t.Helper()
	cmd := exec.Command("php", "-r", code)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("php -r %q: %v: %s", code, err, out)
	}
	return string(out)
}

// PHPLint runs php -l on a file.
func PHPLint(t testing.TB, file string) {
	t.Helper()
	if out, err := exec.Command("php", "-l", file).CombinedOutput(); err != nil {
		t.Fatalf("php -l %s: %v: %s", file, err, out)
	}
}

// DB is a MariaDB database and user made for one test, dropped when
// it ends.
type DB struct {
	app.DB
	Admin *sql.DB // root on the shared MariaDB
}

// NewDB creates a database with a random name and a user with a
// password full of quotes and backslashes on the local MariaDB
// (127.0.0.1:3306, root without a password).
func NewDB(t testing.TB) *DB {
	t.Helper()
	admin, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.Ping(); err != nil {
		t.Fatalf("MariaDB on 127.0.0.1:3306 (root, no password): %v; run: sudo scripts/deps.sh", err)
	}
	suffix := strings.ToLower(rand.Text()[:10])
	d := &DB{Admin: admin, DB: app.DB{
		Type: "mariadb", Name: "aegir_test_" + suffix, User: "aegir_t_" + suffix,
		Password: `p'w\"` + app.NewPassword() + `\`, Host: "127.0.0.1", Port: 3306,
	}}
	// Identifiers are ours (letters, digits, _); the password goes as a
	// parameter-free literal with quotes and backslashes escaped for SQL.
	sqlPass := strings.ReplaceAll(strings.ReplaceAll(d.Password, `\`, `\\`), `'`, `\'`)
	stmts := []string{
		"CREATE DATABASE `" + d.Name + "`",
		"CREATE USER '" + d.User + "'@'localhost' IDENTIFIED BY '" + sqlPass + "'",
		"CREATE USER '" + d.User + "'@'127.0.0.1' IDENTIFIED BY '" + sqlPass + "'",
		"GRANT ALL ON `" + d.Name + "`.* TO '" + d.User + "'@'localhost'",
		"GRANT ALL ON `" + d.Name + "`.* TO '" + d.User + "'@'127.0.0.1'",
	}
	t.Cleanup(func() {
		for _, s := range []string{
			"DROP DATABASE IF EXISTS `" + d.Name + "`",
			"DROP USER IF EXISTS '" + d.User + "'@'localhost'",
			"DROP USER IF EXISTS '" + d.User + "'@'127.0.0.1'",
		} {
			if _, err := admin.Exec(s); err != nil {
				t.Errorf("cleanup: %s: %v", s, err)
			}
		}
	})
	for _, s := range stmts {
		if _, err := admin.Exec(s); err != nil {
			t.Fatalf("%s: %v", strings.Replace(s, sqlPass, "***", 1), err)
		}
	}
	return d
}
