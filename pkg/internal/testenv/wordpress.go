package testenv

import (
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
	if out, err := exec.Command("cp", "-a", "--dereference", "/usr/share/wordpress", root).CombinedOutput(); err != nil {
		t.Fatalf("testenv: copying Debian's WordPress: %v: %s; run: sudo scripts/deps.sh", err, out)
	}
	if out, err := exec.Command("chown", "-R", "root:root", root).CombinedOutput(); err != nil {
		t.Fatalf("testenv: %v: %s", err, out)
	}
	return root
}
