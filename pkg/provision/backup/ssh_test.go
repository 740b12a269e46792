package backup

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	pexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// A site on a remote server (a real sshd on loopback, as its own user):
// the files are read over SFTP into the archive on this machine, and
// unpacked there again by one tar fed over SSH, the same byte for byte.
func TestWriteAndExtractOverSSH(t *testing.T) {
	testenv.EnsureSSHTestUser(t)
	sshd := testenv.StartSSHD(t)
	src, parts := treeIn(t, sshd.UserTempDir(t))
	if out, err := exec.Command("chown", "-R", "--no-dereference", testenv.SSHTestUser, src).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ex, err := pexec.DialSSH(context.Background(), pexec.SSHConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile, KnownHostsFile: sshd.KnownHostsFile})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	out := t.TempDir()
	info, err := Write(context.Background(), out, "remote.test-1.tar.gz", Source{Files: ex, Parts: parts,
		Dump:     func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, dump); return err },
		Manifest: Manifest{Site: "remote.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), info.Path); err != nil {
		t.Fatal(err)
	}
	dest := sshd.UserTempDir(t)
	target := []Part{{Name: "uploads", Path: filepath.Join(dest, "up"), Dir: true}, {Name: "settings.php", Path: filepath.Join(dest, "s.php")}}
	if _, err := Extract(context.Background(), info.Path, Target{Files: ex, Parts: target}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Join(src, "files"), filepath.Join(dest, "up"))
}
