package drupal

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestDiscoverDrupal7(t *testing.T) {
	for _, docroot := range []string{"", "web"} {
		t.Run("docroot="+docroot, func(t *testing.T) {
			root := apptest.BuildDrupal(t, apptest.Drupal7Files, docroot)
			_, got := apptest.DiscoverBoth(t, root)
			d := func(p string) string { return path.Join(docroot, p) }
			apptest.CheckPackages(t, got, []app.Package{
				{Name: "drupal", Title: "Drupal core", Type: app.TypeCore, Version: "7.105", Project: "drupal", Path: docroot, File: d("includes/bootstrap.inc")},
				{Name: "node", Title: "Node", Type: app.TypeModule, Version: "7.105", Project: "drupal", Path: d("modules/node"), File: d("modules/node/node.info"), Core: "7.x"},
				{Name: "bartik", Title: "Bartik", Type: app.TypeTheme, Version: "7.105", Project: "drupal", Path: d("themes/bartik"), File: d("themes/bartik/bartik.info"), Core: "7.x"},
				{Name: "standard", Title: "Standard", Type: app.TypeProfile, Version: "7.105", Project: "drupal", Path: d("profiles/standard"), File: d("profiles/standard/standard.info"), Core: "7.x"},
				{Name: "myprofile", Title: `My "quoted" profile`, Type: app.TypeProfile, Path: d("profiles/myprofile"), File: d("profiles/myprofile/myprofile.info"), Core: "7.x"},
				{Name: "views", Title: "Views", Type: app.TypeModule, Version: "7.x-3.29", Project: "views", Path: d("sites/all/modules/contrib/views"), File: d("sites/all/modules/contrib/views/views.info"), Core: "7.x"},
				{Name: "mymod", Title: "My module", Type: app.TypeModule, Path: d("sites/all/modules/custom/mymod"), File: d("sites/all/modules/custom/mymod/mymod.info"), Core: "7.x"},
				{Name: "mytheme", Title: "My theme", Type: app.TypeTheme, Path: d("sites/all/themes/mytheme"), File: d("sites/all/themes/mytheme/mytheme.info"), Core: "7.x"},
				{Name: "sitemod", Title: "Site module", Type: app.TypeModule, Version: "7.x-1.0", Path: d("sites/example.com/modules/sitemod"), File: d("sites/example.com/modules/sitemod/sitemod.info"), Core: "7.x"},
			})
		})
	}
}

func TestDiscoverDrupal10(t *testing.T) {
	for _, docroot := range []string{"", "web"} {
		t.Run("docroot="+docroot, func(t *testing.T) {
			root := apptest.BuildDrupal(t, apptest.Drupal10Files, docroot)
			_, got := apptest.DiscoverBoth(t, root)
			d := func(p string) string { return path.Join(docroot, p) }
			apptest.CheckPackages(t, got, []app.Package{
				{Name: "drupal", Title: "Drupal core", Type: app.TypeCore, Version: "10.3.1", Project: "drupal", Path: docroot, File: d("core/lib/Drupal.php")},
				{Name: "node", Title: "Node", Type: app.TypeModule, Version: "10.3.1", Project: "drupal", Path: d("core/modules/node"), File: d("core/modules/node/node.info.yml")},
				{Name: "olivero", Title: "Olivero", Type: app.TypeTheme, Version: "10.3.1", Project: "drupal", Path: d("core/themes/olivero"), File: d("core/themes/olivero/olivero.info.yml")},
				{Name: "standard", Title: "Standard", Type: app.TypeProfile, Version: "10.3.1", Project: "drupal", Path: d("core/profiles/standard"), File: d("core/profiles/standard/standard.info.yml")},
				// token's packaged file repeats "version:": read key by key, last wins.
				{Name: "token", Title: "Token", Type: app.TypeModule, Version: "8.x-1.13", Project: "token", Path: d("modules/contrib/token"), File: d("modules/contrib/token/token.info.yml"), Core: "^9.2 || ^10"},
				{Name: "pathauto", Title: "Pathauto", Type: app.TypeModule, Version: "8.x-1.12", Project: "pathauto", Path: d("modules/contrib/pathauto"), File: d("modules/contrib/pathauto/pathauto.info.yml"), Core: "^9.4 || ^10"},
				{Name: "mymod", Title: "My module", Type: app.TypeModule, Path: d("modules/custom/mymod"), File: d("modules/custom/mymod/mymod.info.yml"), Core: "^10"},
				{Name: "mytheme", Title: "My theme", Type: app.TypeTheme, Path: d("themes/custom/mytheme"), File: d("themes/custom/mytheme/mytheme.info.yml"), Core: "^10"},
				{Name: "myprof", Title: "My profile", Type: app.TypeProfile, Version: "1.0.0", Project: "myprof", Path: d("profiles/contrib/myprof"), File: d("profiles/contrib/myprof/myprof.info.yml"), Core: "^10"},
				{Name: "sitemod", Title: "Site module", Type: app.TypeModule, Path: d("sites/example.com/modules/sitemod"), File: d("sites/example.com/modules/sitemod/sitemod.info.yml"), Core: "^10"},
			})
		})
	}
}

func TestDiscoverFollowsSymlinks(t *testing.T) {
	root := apptest.BuildDrupal(t, apptest.Drupal10Files, "web")
	apptest.WriteTree(t, root, map[string]string{"packages/shared/shared.info.yml": "name: Shared\ntype: module\n"})
	if err := os.Symlink("../../../packages/shared", filepath.Join(root, "web/modules/custom/shared")); err != nil {
		t.Fatal(err)
	}
	// A loop must not hang either way.
	if err := os.Symlink("..", filepath.Join(root, "web/modules/custom/loop")); err != nil {
		t.Fatal(err)
	}
	p, err := app.Detect(apptest.Ctx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []aexec.Executor{aexec.NewLocal(), apptest.Remoteish{Executor: aexec.NewLocal()}} {
		pkgs, err := app.Discover(apptest.Ctx(t), ex, p, nil)
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

// build2000 writes a Drupal 10 platform with 2,000 contrib modules (each
// with an .info.yml as drupal.org packages them and a .module file) and
// returns it, detected.
func build2000(t testing.TB) app.Platform {
	t.Helper()
	files := map[string]string{}
	for k, v := range apptest.Drupal10Files {
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
	root := filepath.Join(apptest.FastTempDir(t), "platform")
	apptest.WriteTree(t, root, files)
	p, err := app.Detect(apptest.Ctx(t), aexec.NewLocal(), root)
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
	for _, ex := range []aexec.Executor{aexec.NewLocal(), apptest.Remoteish{Executor: aexec.NewLocal()}} {
		pkgs, err := app.Discover(apptest.Ctx(t), ex, p, nil)
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
	ctx := apptest.Ctx(b)
	for _, ex := range []aexec.Executor{aexec.NewLocal(), apptest.Remoteish{Executor: aexec.NewLocal()}} {
		name := "local"
		if !ex.IsLocal() {
			name = "remote-way"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pkgs, err := app.Discover(ctx, ex, p, nil)
				if err != nil || len(pkgs) < 2000 {
					b.Fatalf("%d packages, %v", len(pkgs), err)
				}
			}
		})
	}
}
