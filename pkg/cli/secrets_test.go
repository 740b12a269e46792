package cli_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// A WordPress tree with its own wp-config.php (and its DB_PASSWORD), and
// a Drupal tree, on nginx and on apache: platform add keeps the tree's
// wp-config.php outside every docroot (in the aegir home, 0600), and no
// copy of a settings file that is or gets into a docroot (the
// wp-config.php.aegir-orig an older aegir left, editors' backups and
// swap files, *.orig, *.bak) is served: each answers 403 or 404 without
// the password. A platform verify moves an .aegir-orig left in a docroot
// out, with a warning.
func TestSettingsCopiesAreNotServed(t *testing.T) {
	for _, kind := range []string{"nginx", "apache"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			const secret = "legacy-db-password-5e1f"
			legacy := "<?php\ndefine('DB_NAME', 'legacy');\ndefine('DB_PASSWORD', '" + secret + "');\n"
			h := newHostEnv(t, kind)
			wp := testenv.WordPressPlatform(t)
			if err := os.WriteFile(filepath.Join(wp, "wp-config.php"), []byte(legacy), 0o644); err != nil {
				t.Fatal(err)
			}
			must(t, h.home, "platform", "add", "wp", "--server", "web1", "--root", wp, "-q")
			if left, _ := filepath.Glob(filepath.Join(wp, "wp-config.php.*")); len(left) != 0 {
				t.Fatalf("platform add left copies of wp-config.php in the docroot: %v", left)
			}
			kept, _ := filepath.Glob(filepath.Join(h.home, "kept", "*", "wp-config.php"))
			if len(kept) != 1 {
				t.Fatalf("the tree's own wp-config.php is not kept under the aegir home: %v", kept)
			}
			if b, err := os.ReadFile(kept[0]); err != nil || string(b) != legacy {
				t.Fatalf("kept wp-config.php: %v %q", err, b)
			}
			if fi, _ := os.Stat(kept[0]); fi.Mode().Perm() != 0o600 {
				t.Fatalf("kept wp-config.php has mode %v, want 0600", fi.Mode().Perm())
			}
			wpDomain := testsite.Domain(t, "sec")
			must(t, h.home, "site", "install", wpDomain, "--platform", "wp", "-q")

			argsLog, failFlag := filepath.Join(testenv.PublicDir(t), "drush-args"), filepath.Join(testenv.PublicDir(t), "fail-status")
			dr := drupalPlatform(t, argsLog, failFlag)
			must(t, h.home, "platform", "add", "dr", "--server", "web1", "--root", dr, "--drush", filepath.Join(dr, "vendor/bin/drush"), "-q")
			drDomain := testsite.Domain(t, "sec")
			must(t, h.home, "site", "install", drDomain, "--platform", "dr", "--profile", "minimal", "-q")

			// What an older aegir, an editor or an administrator left in the
			// docroots, each holding the password.
			copies := map[string][]string{
				wpDomain: {"wp-config.php.aegir-orig", "wp-config.php.bak", "wp-config.php~", "wp-config.php.orig",
					"wp-config.php.swp", "wp-config.bak", "wp-config.txt", "WP-CONFIG.PHP.BAK", "index.php.orig"},
				drDomain: {"sites/" + drDomain + "/settings.php.aegir-orig", "sites/" + drDomain + "/settings.php.orig",
					"sites/" + drDomain + "/settings.php~", "sites/" + drDomain + "/settings.php.bak", "sites/" + drDomain + "/settings.local.php.swo",
					"sites/default/settings.php.save", "sites/default/settings.php.old", "settings.php.bak"},
			}
			roots := map[string]string{wpDomain: wp, drDomain: dr}
			for domain, files := range copies {
				for _, f := range files {
					p := filepath.Join(roots[domain], f)
					if err := os.WriteFile(p, []byte(legacy+"// "+f+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The web server serves the site (and a plain file of it).
			served := func(code int, _ string, _ http.Header) bool { return code == 200 }
			if code, _, _ := h.get(t, wpDomain, "/readme.html", served); code != 200 {
				t.Fatalf("GET %s/readme.html: %d, want 200", wpDomain, code)
			}
			refused := func(code int, body string, _ http.Header) bool {
				return (code == 403 || code == 404) && !strings.Contains(body, secret)
			}
			for domain, files := range copies {
				for _, f := range files {
					if code, body, _ := h.get(t, domain, "/"+f, refused); !refused(code, body, nil) {
						t.Errorf("%s: GET %s/%s: %d, want 403 or 404 without the password; body: %.200s", kind, domain, f, code, body)
					}
				}
			}

			// Verify moves the .aegir-orig copies out of the docroots.
			for _, pl := range []string{"wp", "dr"} {
				_, errs, code := aegir(t, h.home, "platform", "verify", pl)
				if code != 0 || !strings.Contains(errs, "out of the docroot") {
					t.Fatalf("platform verify %s: exit %d, want a warning that a copy was moved out:\n%s", pl, code, errs)
				}
			}
			for _, p := range []string{filepath.Join(wp, "wp-config.php.aegir-orig"), filepath.Join(dr, "sites", drDomain, "settings.php.aegir-orig")} {
				if exists(p) {
					t.Errorf("verify left %s in the docroot", p)
				}
			}
			moved, _ := filepath.Glob(filepath.Join(h.home, "kept", "*", "*"))
			if len(moved) != 3 {
				t.Errorf("kept files after verify: %v, want the tree's wp-config.php, the moved copy of it and the Drupal site's settings copy", moved)
			}
			for _, p := range moved {
				if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
				}
			}
			// A second verify has nothing to move.
			if errs := must(t, h.home, "platform", "verify", "wp"); strings.Contains(errs, "out of the docroot") {
				t.Errorf("second verify moved something again:\n%s", errs)
			}
		})
	}
}
