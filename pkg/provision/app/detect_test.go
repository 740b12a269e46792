package app_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestDetectWordPress(t *testing.T) {
	root := apptest.WPPlatform(t)
	p, err := app.Detect(apptest.Ctx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	// The version WordPress itself says it is.
	want := apptest.PHPEval(t, root, `include "wp-includes/version.php"; echo $wp_version;`)
	if p.Type != entities.PlatformWordPress || p.Version != want || p.Docroot != root || p.Root != root || p.Drush != "" {
		t.Errorf("Detect = %+v, want wordpress %s at %s", p, want, root)
	}
	if !strings.HasPrefix(want, p.Version[:strings.IndexByte(p.Version, '.')]) || p.Major < 4 {
		t.Errorf("major %d of version %s", p.Major, p.Version)
	}
}

func TestDetectDrupal(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		docroot string
		version string
		major   int
	}{
		{"drupal7", apptest.Drupal7Files, "", "7.105", 7},
		{"drupal10", apptest.Drupal10Files, "", "10.3.1", 10},
		{"drupal10-composer-web", apptest.Drupal10Files, "web", "10.3.1", 10},
		{"drupal10-composer-docroot", apptest.Drupal10Files, "docroot", "10.3.1", 10},
		{"drupal7-web", apptest.Drupal7Files, "web", "7.105", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := apptest.BuildDrupal(t, c.files, c.docroot)
			p, err := app.Detect(apptest.Ctx(t), aexec.NewLocal(), root)
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != entities.PlatformDrupal || p.Version != c.version || p.Major != c.major || p.Docroot != filepath.Join(root, c.docroot) || p.DocrootRel() != c.docroot {
				t.Errorf("Detect = %+v, want drupal %s docroot %q", p, c.version, c.docroot)
			}
			if p.SitesDir() != filepath.Join(root, c.docroot, "sites") || p.SiteDir("a.test") != filepath.Join(root, c.docroot, "sites/a.test") {
				t.Errorf("sites dir %s", p.SitesDir())
			}
		})
	}
}

func TestDetectDrush(t *testing.T) {
	root := apptest.BuildDrupal(t, apptest.Drupal10Files, "web")
	apptest.WriteTree(t, root, map[string]string{"vendor/bin/drush": "#!/bin/sh\n"})
	p, err := app.Detect(apptest.Ctx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	if p.Drush != filepath.Join(root, "vendor/bin/drush") {
		t.Errorf("drush = %q", p.Drush)
	}
	if p.Version != "10.3.1" || p.Type != entities.PlatformDrupal {
		t.Errorf("platform = %+v", p)
	}
}

func TestDetectFailures(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	dir := t.TempDir()
	apptest.WriteTree(t, dir, map[string]string{
		"empty/README":                    "nothing here\n",
		"broken/core/lib/Drupal.php":      "<?php\nclass Drupal {}\n",
		"file":                            "x",
		"weird/wp-includes/version.php":   "<?php\n$wp_version = 'trunk';\n",
		"relative/wp-includes/version.ph": "",
	})
	cases := []struct {
		root, msg, hint string
	}{
		{filepath.Join(dir, "gone"), "does not exist on localhost", "restore the platform's code"},
		{filepath.Join(dir, "empty"), "holds neither Drupal", "index.php"},
		{filepath.Join(dir, "broken"), "does not say which drupal version", "reinstall"},
		{filepath.Join(dir, "file"), "is not a directory", ""},
		{filepath.Join(dir, "weird"), `version "trunk"`, ""},
		{"relative/path", "absolute path", "absolute"},
		{dir + "/../x", `".."`, ""},
	}
	for _, c := range cases {
		_, err := app.Detect(ctx, ex, c.root)
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrPlatform {
			t.Errorf("Detect(%s) = %v, want a platform error", c.root, err)
			continue
		}
		if !strings.Contains(pe.Msg, c.msg) || !strings.Contains(pe.Hint, c.hint) || pe.Hint == "" {
			t.Errorf("Detect(%s): msg %q hint %q; want %q / %q", c.root, pe.Msg, pe.Hint, c.msg, c.hint)
		}
	}
}

func TestVerifyFailures(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()

	t.Run("unreadable", func(t *testing.T) {
		root := apptest.BuildDrupal(t, apptest.Drupal10Files, "web")
		if err := os.Chmod(filepath.Join(root, "web"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := app.Verify(ctx, ex, root, app.VerifyOptions{WebUser: "www-data"})
		var pe *provision.Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "www-data cannot read") || !strings.Contains(pe.Hint, "chmod o+rX") {
			t.Fatalf("Verify of an unreadable docroot = %v", err)
		}
		// Readable again: verify passes.
		if err := os.Chmod(filepath.Join(root, "web"), 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := app.Verify(ctx, ex, root, app.VerifyOptions{Type: entities.PlatformDrupal, WebUser: "www-data"})
		if err != nil || p.Version != "10.3.1" {
			t.Fatalf("Verify = %+v, %v", p, err)
		}
	})
	t.Run("vanished", func(t *testing.T) {
		root := apptest.BuildDrupal(t, apptest.Drupal7Files, "")
		if _, err := app.Verify(ctx, ex, root, app.VerifyOptions{WebUser: "www-data"}); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		_, err := app.Verify(ctx, ex, root, app.VerifyOptions{WebUser: "www-data"})
		var pe *provision.Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "does not exist") || len(pe.Fix) != 1 || pe.Fix[0].Verb != "platform.delete" {
			t.Fatalf("Verify of a vanished root = %v", err)
		}
	})
	t.Run("wrong-type", func(t *testing.T) {
		root := apptest.BuildDrupal(t, apptest.Drupal7Files, "")
		_, err := app.Verify(ctx, ex, root, app.VerifyOptions{Type: entities.PlatformWordPress})
		if err == nil || !strings.Contains(err.Error(), "holds drupal, but the platform was added as wordpress") {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("no-sites-dir", func(t *testing.T) {
		root := apptest.BuildDrupal(t, apptest.Drupal10Files, "")
		if err := os.RemoveAll(filepath.Join(root, "sites")); err != nil {
			t.Fatal(err)
		}
		_, err := app.Verify(ctx, ex, root, app.VerifyOptions{})
		if err == nil || !strings.Contains(err.Error(), "sites directory") || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("no-such-web-user", func(t *testing.T) {
		root := apptest.BuildDrupal(t, apptest.Drupal10Files, "")
		var log apptest.Log
		_, err := app.Verify(ctx, ex, root, app.VerifyOptions{WebUser: "no-such-user-aegir", Log: log.Logf})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "warning: could not check as no-such-user-aegir") {
			t.Errorf("no warning:\n%s", log.String())
		}
	})
}
