package apptest

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// LintScripts runs php -l on every embedded PHP script of a driver as it
// runs (script(name): prelude, common code and script) and on its other
// PHP files (others: a name to its content). It checks that script
// refuses nope.php, prelude.php and each of extra, and that every file
// under php/ in fsys is a script or one of extra.
func LintScripts(t *testing.T, fsys fs.FS, names []string, script func(string) ([]byte, error), others map[string][]byte, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		b, err := script(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(b), "<?php") != 1 {
			t.Errorf("%s: %d PHP open tags", name, strings.Count(string(b), "<?php"))
		}
		others[name] = b
	}
	for name, b := range others {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		PHPLint(t, f)
	}
	for _, name := range append([]string{"nope.php", "prelude.php"}, extra...) {
		if _, err := script(name); err == nil {
			t.Errorf("%q is taken for a script", name)
		}
	}
	files, err := fs.ReadDir(fsys, "php")
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded php/: %v", err)
	}
	for _, f := range files {
		if !slices.Contains(names, f.Name()) && !slices.Contains(extra, f.Name()) {
			t.Errorf("php/%s is in no list of scripts", f.Name())
		}
	}
}
