package testenv

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// SameTree fails the test unless every entry under src is under dst too,
// with the same type, permission bits (not for symlinks), content and
// link target, and returns how many entries it compared. Entries only
// dst has are not looked at.
func SameTree(t testing.TB, src, dst string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		a, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: missing in %s: %v", rel, dst, err)
			return nil
		}
		n++
		if a.Mode().Type() != b.Mode().Type() || (a.Mode().Type() != fs.ModeSymlink && a.Mode().Perm() != b.Mode().Perm()) {
			t.Errorf("%s: %v in %s, %v in %s", rel, b.Mode(), dst, a.Mode(), src)
		}
		switch {
		case a.Mode().Type() == fs.ModeSymlink:
			x, _ := os.Readlink(p)
			y, _ := os.Readlink(q)
			if x != y {
				t.Errorf("%s: links to %q in %s, to %q in %s", rel, y, dst, x, src)
			}
		case a.Mode().IsRegular():
			x, _ := os.ReadFile(p)
			y, _ := os.ReadFile(q)
			if !bytes.Equal(x, y) {
				t.Errorf("%s: differs between %s and %s", rel, src, dst)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: comparing %s with %s: %v", src, dst, err)
	}
	return n
}
