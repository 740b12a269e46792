package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// WordPressPlatform copies Debian's WordPress (/usr/share/wordpress, with
// its themes) into a directory the web server's workers can read and
// returns the platform root. Debian's tree links into /var/lib/wordpress
// and /etc/wordpress; the copy follows the links, so the platform is
// self-contained as a real one is.
func WordPressPlatform(t testing.TB) string {
	t.Helper()
	Need(t, "php")
	root := filepath.Join(PublicDir(t), "wordpress")
	if err := CopyWordPress(root); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

// CopyWordPress makes root (which must not exist) a copy of Debian's
// WordPress owned by root, as WordPressPlatform does.
func CopyWordPress(root string) error {
	if out, err := exec.Command("cp", "-a", "--dereference", "/usr/share/wordpress", root).CombinedOutput(); err != nil {
		return fmt.Errorf("copying Debian's WordPress: %v: %s; run: sudo scripts/deps.sh", err, out)
	}
	if out, err := exec.Command("chown", "-R", "root:root", root).CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}
