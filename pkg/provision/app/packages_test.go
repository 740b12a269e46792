package app

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// discoverBoth runs Discover on the platform the local way and the remote
// way (one find command), checks that both find the same, and returns the
// packages by path.
func discoverBoth(t *testing.T, root string) (Platform, map[string]Package) {
	t.Helper()
	ctx := testCtx(t)
	p, err := Detect(ctx, aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	local, err := Discover(ctx, aexec.NewLocal(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log logRecorder
	remote, err := Discover(ctx, remoteish{aexec.NewLocal()}, p, log.logf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, remote) {
		t.Errorf("local and remote discovery differ:\nlocal:  %+v\nremote: %+v", local, remote)
	}
	if log.String() != "" {
		t.Errorf("remote discovery logged: %s", log.String())
	}
	byPath := map[string]Package{}
	for _, pk := range local {
		if _, dup := byPath[pk.Path]; dup {
			t.Errorf("two packages at %q", pk.Path)
		}
		byPath[pk.Path] = pk
	}
	return p, byPath
}

func checkPackages(t *testing.T, got map[string]Package, want []Package) {
	t.Helper()
	for _, w := range want {
		g, ok := got[w.Path]
		if !ok {
			t.Errorf("no package at %s (want %s)", w.Path, w.Name)
			continue
		}
		if g != w {
			t.Errorf("package at %s:\n got %+v\nwant %+v", w.Path, g, w)
		}
	}
	if len(got) != len(want) {
		var paths []string
		for p := range got {
			paths = append(paths, p)
		}
		t.Errorf("found %d packages, want %d: %v", len(got), len(want), paths)
	}
}

func TestDiscoverDrupal7(t *testing.T) {
	for _, docroot := range []string{"", "web"} {
		t.Run("docroot="+docroot, func(t *testing.T) {
			root := buildDrupal(t, drupal7Files, docroot)
			_, got := discoverBoth(t, root)
			d := func(p string) string { return path.Join(docroot, p) }
			checkPackages(t, got, []Package{
				{Name: "drupal", Title: "Drupal core", Type: TypeCore, Version: "7.105", Project: "drupal", Path: docroot, File: d("includes/bootstrap.inc")},
				{Name: "node", Title: "Node", Type: TypeModule, Version: "7.105", Project: "drupal", Path: d("modules/node"), File: d("modules/node/node.info"), Core: "7.x"},
				{Name: "bartik", Title: "Bartik", Type: TypeTheme, Version: "7.105", Project: "drupal", Path: d("themes/bartik"), File: d("themes/bartik/bartik.info"), Core: "7.x"},
				{Name: "standard", Title: "Standard", Type: TypeProfile, Version: "7.105", Project: "drupal", Path: d("profiles/standard"), File: d("profiles/standard/standard.info"), Core: "7.x"},
				{Name: "myprofile", Title: `My "quoted" profile`, Type: TypeProfile, Path: d("profiles/myprofile"), File: d("profiles/myprofile/myprofile.info"), Core: "7.x"},
				{Name: "views", Title: "Views", Type: TypeModule, Version: "7.x-3.29", Project: "views", Path: d("sites/all/modules/contrib/views"), File: d("sites/all/modules/contrib/views/views.info"), Core: "7.x"},
				{Name: "mymod", Title: "My module", Type: TypeModule, Path: d("sites/all/modules/custom/mymod"), File: d("sites/all/modules/custom/mymod/mymod.info"), Core: "7.x"},
				{Name: "mytheme", Title: "My theme", Type: TypeTheme, Path: d("sites/all/themes/mytheme"), File: d("sites/all/themes/mytheme/mytheme.info"), Core: "7.x"},
				{Name: "sitemod", Title: "Site module", Type: TypeModule, Version: "7.x-1.0", Path: d("sites/example.com/modules/sitemod"), File: d("sites/example.com/modules/sitemod/sitemod.info"), Core: "7.x"},
			})
		})
	}
}

func TestDiscoverDrupal10(t *testing.T) {
	for _, docroot := range []string{"", "web"} {
		t.Run("docroot="+docroot, func(t *testing.T) {
			root := buildDrupal(t, drupal10Files, docroot)
			_, got := discoverBoth(t, root)
			d := func(p string) string { return path.Join(docroot, p) }
			checkPackages(t, got, []Package{
				{Name: "drupal", Title: "Drupal core", Type: TypeCore, Version: "10.3.1", Project: "drupal", Path: docroot, File: d("core/lib/Drupal.php")},
				{Name: "node", Title: "Node", Type: TypeModule, Version: "10.3.1", Project: "drupal", Path: d("core/modules/node"), File: d("core/modules/node/node.info.yml")},
				{Name: "olivero", Title: "Olivero", Type: TypeTheme, Version: "10.3.1", Project: "drupal", Path: d("core/themes/olivero"), File: d("core/themes/olivero/olivero.info.yml")},
				{Name: "standard", Title: "Standard", Type: TypeProfile, Version: "10.3.1", Project: "drupal", Path: d("core/profiles/standard"), File: d("core/profiles/standard/standard.info.yml")},
				// token's packaged file repeats "version:": read key by key, last wins.
				{Name: "token", Title: "Token", Type: TypeModule, Version: "8.x-1.13", Project: "token", Path: d("modules/contrib/token"), File: d("modules/contrib/token/token.info.yml"), Core: "^9.2 || ^10"},
				{Name: "pathauto", Title: "Pathauto", Type: TypeModule, Version: "8.x-1.12", Project: "pathauto", Path: d("modules/contrib/pathauto"), File: d("modules/contrib/pathauto/pathauto.info.yml"), Core: "^9.4 || ^10"},
				{Name: "mymod", Title: "My module", Type: TypeModule, Path: d("modules/custom/mymod"), File: d("modules/custom/mymod/mymod.info.yml"), Core: "^10"},
				{Name: "mytheme", Title: "My theme", Type: TypeTheme, Path: d("themes/custom/mytheme"), File: d("themes/custom/mytheme/mytheme.info.yml"), Core: "^10"},
				{Name: "myprof", Title: "My profile", Type: TypeProfile, Version: "1.0.0", Project: "myprof", Path: d("profiles/contrib/myprof"), File: d("profiles/contrib/myprof/myprof.info.yml"), Core: "^10"},
				{Name: "sitemod", Title: "Site module", Type: TypeModule, Path: d("sites/example.com/modules/sitemod"), File: d("sites/example.com/modules/sitemod/sitemod.info.yml"), Core: "^10"},
			})
		})
	}
}

func TestDiscoverFollowsSymlinks(t *testing.T) {
	root := buildDrupal(t, drupal10Files, "web")
	writeTree(t, root, map[string]string{"packages/shared/shared.info.yml": "name: Shared\ntype: module\n"})
	if err := os.Symlink("../../../packages/shared", filepath.Join(root, "web/modules/custom/shared")); err != nil {
		t.Fatal(err)
	}
	// A loop must not hang either way.
	if err := os.Symlink("..", filepath.Join(root, "web/modules/custom/loop")); err != nil {
		t.Fatal(err)
	}
	p, err := Detect(testCtx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []aexec.Executor{aexec.NewLocal(), remoteish{aexec.NewLocal()}} {
		pkgs, err := Discover(testCtx(t), ex, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, pk := range pkgs {
			found = found || pk.Path == "web/modules/custom/shared" && pk.Name == "shared"
		}
		if !found {
			t.Errorf("local=%v: the symlinked module was not found: %+v", ex.IsLocal(), pkgs)
		}
	}
}

func TestDiscoverWordPress(t *testing.T) {
	root := wpPlatform(t)
	extra := map[string]string{
		"wp-content/plugins/hello-aegir.php":    "<?php\n/**\n * Plugin Name: Hello Aegir\n * Version: 1.2.3\n * Requires at least: 5.0\n */\n",
		"wp-content/plugins/multi/multi.php":    "<?php\n/*\nPlugin Name:   Multi File   */\n",
		"wp-content/plugins/multi/inc/x.php":    "<?php\n// Plugin Name: not a plugin (too deep)\n",
		"wp-content/plugins/multi/readme.php":   "<?php\n// nothing\n",
		"wp-content/plugins/.hidden/h.php":      "<?php\n/* Plugin Name: Hidden */\n",
		"wp-content/plugins/late/late.php":      "<?php\n" + strings.Repeat("// padding padding padding padding\n", 300) + "/* Plugin Name: Too late */\n",
		"wp-content/themes/aegirtest/style.css": "/*\r\nTheme Name: Aegir Test\r\nVersion: 0.9\r\nRequires at least: 6.0\r\n*/\r\nbody{}\n",
		"wp-content/themes/notheme/style.css":   "body { color: red }\n",
	}
	writeTree(t, root, extra)
	t.Cleanup(func() {
		for _, d := range []string{"plugins/hello-aegir.php", "plugins/multi", "plugins/.hidden", "plugins/late", "themes/aegirtest", "themes/notheme"} {
			os.RemoveAll(filepath.Join(root, "wp-content", d))
		}
	})
	p, got := discoverBoth(t, root)
	want := []Package{
		{Name: "wordpress", Title: "WordPress", Type: TypeCore, Version: p.Version, Project: "wordpress", Path: "", File: "wp-includes/version.php"},
		{Name: "hello-aegir", Title: "Hello Aegir", Type: TypePlugin, Version: "1.2.3", Project: "hello-aegir", Path: "wp-content/plugins/hello-aegir.php", File: "wp-content/plugins/hello-aegir.php", Core: "5.0"},
		{Name: "multi", Title: "Multi File", Type: TypePlugin, Project: "multi", Path: "wp-content/plugins/multi", File: "wp-content/plugins/multi/multi.php"},
		{Name: "aegirtest", Title: "Aegir Test", Type: TypeTheme, Version: "0.9", Project: "aegirtest", Path: "wp-content/themes/aegirtest", File: "wp-content/themes/aegirtest/style.css", Core: "6.0"},
	}
	// What Debian's package ships: akismet, with the version its header
	// gives, and any twentytwenty* themes that are installed.
	akismet, err := os.ReadFile(filepath.Join(root, "wp-content/plugins/akismet/akismet.php"))
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, Package{Name: "akismet", Title: wpHeader(akismet, "Plugin Name"), Type: TypePlugin, Version: wpHeader(akismet, "Version"),
		Project: "akismet", Path: "wp-content/plugins/akismet", File: "wp-content/plugins/akismet/akismet.php", Core: wpHeader(akismet, "Requires at least")})
	if !strings.HasPrefix(want[len(want)-1].Title, "Akismet") || want[len(want)-1].Version == "" {
		t.Fatalf("akismet's header: %+v", want[len(want)-1])
	}
	themes, _ := filepath.Glob(filepath.Join(root, "wp-content/themes/twenty*/style.css"))
	for _, css := range themes {
		rel, _ := filepath.Rel(root, css)
		if got[filepath.Dir(rel)].Type != TypeTheme || got[filepath.Dir(rel)].Version == "" {
			t.Errorf("theme %s: %+v", rel, got[filepath.Dir(rel)])
		}
		want = append(want, got[filepath.Dir(rel)])
	}
	checkPackages(t, got, want)
}

func TestWPHeader(t *testing.T) {
	cases := []struct{ data, field, want string }{
		{"<?php\n/**\n * Plugin Name: Akismet Anti-Spam\n */", "Plugin Name", "Akismet Anti-Spam"},
		{"<?php /* Plugin Name: One Line */ ?>", "Plugin Name", "One Line"},
		{"<?php\n# plugin name: lower case", "Plugin Name", "lower case"},
		{"<?php\n@Version: 2.0 ?>\n", "Version", "2.0"},
		{"<?php\n// Plugin Name:\n// Plugin Name: Second\n", "Plugin Name", "Second"},
		{"<?php\n$x = 'Plugin Name: no';", "Plugin Name", ""},
	}
	for _, c := range cases {
		if got := wpHeader([]byte(c.data), c.field); got != c.want {
			t.Errorf("wpHeader(%q, %q) = %q, want %q", c.data, c.field, got, c.want)
		}
	}
}

// build2000 writes a Drupal 10 platform with 2,000 contrib modules (each
// with an .info.yml as drupal.org packages them and a .module file) and
// returns it, detected.
func build2000(t testing.TB) Platform {
	t.Helper()
	files := map[string]string{}
	for k, v := range drupal10Files {
		files["web/"+k] = v
	}
	for i := 0; i < 2000; i++ {
		name := fmt.Sprintf("mod%04d", i)
		dir := fmt.Sprintf("web/modules/contrib/%s/", name)
		files[dir+name+".info.yml"] = fmt.Sprintf("name: 'Module %d'\ntype: module\ndescription: 'A module for the benchmark, with a longer description line.'\n"+
			"package: Benchmark\ncore_version_requirement: ^9.3 || ^10\ndependencies:\n  - drupal:node\n  - drupal:user\nconfigure: %s.settings\n\n"+
			"# Information added by Drupal.org packaging script on 2024-01-01\nversion: '8.x-1.%d'\nproject: '%s'\ndatestamp: 1704067200\n", i, name, i, name)
		files[dir+name+".module"] = "<?php\n\n/**\n * @file\n */\n"
	}
	root := filepath.Join(fastTempDir(t), "platform")
	writeTree(t, root, files)
	p, err := Detect(testCtx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDiscover2000 checks that all 2,000 packages are found, both ways
// (through the local executor and as on a remote server). How fast is
// BenchmarkDiscover2000's to measure, not a timed test's.
func TestDiscover2000(t *testing.T) {
	p := build2000(t)
	for _, ex := range []aexec.Executor{aexec.NewLocal(), remoteish{aexec.NewLocal()}} {
		pkgs, err := Discover(testCtx(t), ex, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		// 2,000 contrib modules, core and its module, theme and profile,
		// and the other modules of the test tree.
		if len(pkgs) != 2000+4+6 {
			t.Fatalf("local=%v: %d packages", ex.IsLocal(), len(pkgs))
		}
	}
}

func BenchmarkDiscover2000(b *testing.B) {
	p := build2000(b)
	ctx := testCtx(b)
	for _, ex := range []aexec.Executor{aexec.NewLocal(), remoteish{aexec.NewLocal()}} {
		name := "local"
		if !ex.IsLocal() {
			name = "remote-way"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pkgs, err := Discover(ctx, ex, p, nil)
				if err != nil || len(pkgs) < 2000 {
					b.Fatalf("%d packages, %v", len(pkgs), err)
				}
			}
		})
	}
}
