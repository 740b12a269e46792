package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestDetectWordPress(t *testing.T) {
	root := wpPlatform(t)
	p, err := Detect(testCtx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	// The version WordPress itself says it is.
	want := phpEval(t, root, `include "wp-includes/version.php"; echo $wp_version;`)
	if p.Type != WordPress || p.Version != want || p.Docroot != root || p.Root != root || p.Drush != "" {
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
		{"drupal7", drupal7Files, "", "7.105", 7},
		{"drupal10", drupal10Files, "", "10.3.1", 10},
		{"drupal10-composer-web", drupal10Files, "web", "10.3.1", 10},
		{"drupal10-composer-docroot", drupal10Files, "docroot", "10.3.1", 10},
		{"drupal7-web", drupal7Files, "web", "7.105", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := buildDrupal(t, c.files, c.docroot)
			p, err := Detect(testCtx(t), aexec.NewLocal(), root)
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != Drupal || p.Version != c.version || p.Major != c.major || p.Docroot != filepath.Join(root, c.docroot) || p.DocrootRel() != c.docroot {
				t.Errorf("Detect = %+v, want drupal %s docroot %q", p, c.version, c.docroot)
			}
			if p.SitesDir() != filepath.Join(root, c.docroot, "sites") || p.SiteDir("a.test") != filepath.Join(root, c.docroot, "sites/a.test") {
				t.Errorf("sites dir %s", p.SitesDir())
			}
		})
	}
}

func TestDetectDrush(t *testing.T) {
	root := buildDrupal(t, drupal10Files, "web")
	writeTree(t, root, map[string]string{"vendor/bin/drush": "#!/bin/sh\n"})
	p, err := Detect(testCtx(t), aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	if p.Drush != filepath.Join(root, "vendor/bin/drush") {
		t.Errorf("drush = %q", p.Drush)
	}
	if p.Version != "10.3.1" || p.Type != Drupal {
		t.Errorf("platform = %+v", p)
	}
}

func TestDetectFailures(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
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
		_, err := Detect(ctx, ex, c.root)
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

func TestVerifyWordPress(t *testing.T) {
	ctx := testCtx(t)
	root := wpPlatform(t)
	var log logRecorder
	keep := KeptDir(t.TempDir())
	p, err := Verify(ctx, aexec.NewLocal(), root, VerifyOptions{Type: WordPress, WebUser: "www-data", Keep: keep, Log: log.logf})
	if err != nil {
		t.Fatalf("Verify: %v\n%s", err, log.String())
	}
	if p.Type != WordPress || p.Version == "" {
		t.Errorf("platform %+v", p)
	}
	// The dispatcher replaced Debian's wp-config.php, which is kept
	// outside the docroot, readable by aegir's user only.
	cfg, _ := os.ReadFile(filepath.Join(root, "wp-config.php"))
	if !strings.Contains(string(cfg), dispatcherMark) {
		t.Errorf("wp-config.php is not the dispatcher:\n%s", cfg)
	}
	kept := keptFile(keep, root, "wp-config.php")
	orig, err := os.ReadFile(kept)
	if err != nil || !strings.Contains(string(orig), "/etc/wordpress/config-") {
		t.Errorf("Debian's wp-config.php was not kept: %v", err)
	}
	if fi, err := os.Stat(kept); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept copy: %v %v, want mode 0600", err, fi)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "wp-config*")); len(left) != 2 {
		t.Errorf("files wp-config* in the docroot: %v, want wp-config.php and wp-config-sample.php", left)
	}
	for _, f := range []string{"index.php", ".htaccess"} {
		if _, err := os.Stat(filepath.Join(root, WordPressSitesDir, f)); err != nil {
			t.Errorf("sites dir: %v", err)
		}
	}
	if !strings.Contains(log.String(), "php-cli 8.") {
		t.Errorf("log does not name php-cli's version:\n%s", log.String())
	}
	// A second verify changes nothing.
	changed, err := EnsureWordPressPlatform(ctx, aexec.NewLocal(), p, keep, nil)
	if err != nil || changed {
		t.Errorf("second EnsureWordPressPlatform: changed %v, %v", changed, err)
	}
	// Through the code path of remote servers too.
	if _, err := Verify(ctx, remoteish{aexec.NewLocal()}, root, VerifyOptions{WebUser: "www-data", Keep: keep}); err != nil {
		t.Errorf("Verify (remote path): %v", err)
	}
}

func TestVerifyFailures(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()

	t.Run("unreadable", func(t *testing.T) {
		root := buildDrupal(t, drupal10Files, "web")
		if err := os.Chmod(filepath.Join(root, "web"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(ctx, ex, root, VerifyOptions{WebUser: "www-data"})
		var pe *provision.Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "www-data cannot read") || !strings.Contains(pe.Hint, "chmod o+rX") {
			t.Fatalf("Verify of an unreadable docroot = %v", err)
		}
		// Readable again: verify passes.
		if err := os.Chmod(filepath.Join(root, "web"), 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := Verify(ctx, ex, root, VerifyOptions{Type: Drupal, WebUser: "www-data"})
		if err != nil || p.Version != "10.3.1" {
			t.Fatalf("Verify = %+v, %v", p, err)
		}
	})
	t.Run("vanished", func(t *testing.T) {
		root := buildDrupal(t, drupal7Files, "")
		if _, err := Verify(ctx, ex, root, VerifyOptions{WebUser: "www-data"}); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(ctx, ex, root, VerifyOptions{WebUser: "www-data"})
		var pe *provision.Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "does not exist") || !strings.Contains(pe.Hint, "aegir platform delete") {
			t.Fatalf("Verify of a vanished root = %v", err)
		}
	})
	t.Run("wrong-type", func(t *testing.T) {
		root := buildDrupal(t, drupal7Files, "")
		_, err := Verify(ctx, ex, root, VerifyOptions{Type: WordPress})
		if err == nil || !strings.Contains(err.Error(), "holds drupal, but the platform was added as wordpress") {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("no-sites-dir", func(t *testing.T) {
		root := buildDrupal(t, drupal10Files, "")
		if err := os.RemoveAll(filepath.Join(root, "sites")); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(ctx, ex, root, VerifyOptions{})
		if err == nil || !strings.Contains(err.Error(), "sites directory") || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("no-such-web-user", func(t *testing.T) {
		root := buildDrupal(t, drupal10Files, "")
		var log logRecorder
		_, err := Verify(ctx, ex, root, VerifyOptions{WebUser: "no-such-user-aegir", Log: log.logf})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "warning: could not check as no-such-user-aegir") {
			t.Errorf("no warning:\n%s", log.String())
		}
	})
}
