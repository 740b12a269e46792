package push_test

import (
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/push"
)

func TestSSHCommand(t *testing.T) {
	got, err := push.SSHCommand(exec.SSHConfig{Host: "web2", Port: 2222, User: "aegir", KeyFile: "/root/.aegir/keys/id", KnownHostsFile: "/root/.aegir/known_hosts"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ssh", "-p", "2222", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/root/.aegir/known_hosts",
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=15", "-l", "aegir", "-i", "/root/.aegir/keys/id", "-o", "IdentitiesOnly=yes"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SSHCommand\n got %q\nwant %q", got, want)
	}
	args, err := push.RsyncArgs(exec.SSHConfig{Host: "::1", User: "aegir", KnownHostsFile: "/h/my hosts"}, "/build/wp/", "/srv/wp")
	if err != nil {
		t.Fatal(err)
	}
	if args[len(args)-1] != "[::1]:/srv/wp/" || args[len(args)-2] != "/build/wp/" || !strings.Contains(args[3], "'UserKnownHostsFile=/h/my hosts'") {
		t.Errorf("RsyncArgs: %q", args)
	}
	if _, err := push.SSHCommand(exec.SSHConfig{Host: "h", KnownHostsFile: `/it's`}); err == nil {
		t.Error("a quote in a path was accepted")
	}
}

// tree writes a small code base: nested directories, modes, a symlink
// and a file large enough to take several SFTP writes.
func tree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "build")
	big := make([]byte, 3<<20)
	rand.Read(big)
	for rel, f := range map[string]struct {
		body string
		mode fs.FileMode
	}{
		"index.php":               {"<?php echo 'pushed';\n", 0o644},
		"wp-includes/version.php": {"<?php $wp_version = '6.1.1';\n", 0o644},
		"bin/tool":                {"#!/bin/sh\necho tool\n", 0o755},
		"private/secret.txt":      {"only the owner\n", 0o600},
		"deep/a/b/c/d.txt":        {"deep\n", 0o644},
		"big.bin":                 {string(big), 0o644},
	} {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	os.Chmod(filepath.Join(src, "private"), 0o750)
	if err := os.Symlink("wp-includes/version.php", filepath.Join(src, "version-link.php")); err != nil {
		t.Fatal(err)
	}
	return src
}

// sameTree fails unless dst holds all of src.
func sameTree(t *testing.T, src, dst string) {
	t.Helper()
	if n := testenv.SameTree(t, src, dst); n < 10 {
		t.Fatalf("compared %d entries, want the whole tree", n)
	}
}

// Both ways copy the tree to a real sshd's deploy user: modes and links
// kept, files only the server has left alone, a file there replaced, the
// copy owned by the SSH user. rsync's ssh refuses a host it does not know.
func TestTreeOverSSH(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	cfg := exec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile, ConnectTimeout: 5 * time.Second}
	ctx := context.Background()
	ex, err := exec.DialSSH(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	src := tree(t)
	base := srv.UserTempDir(t)

	for _, method := range []string{push.Rsync, push.SFTP} {
		t.Run(method, func(t *testing.T) {
			dst := filepath.Join(base, method, "wp")
			// What the server already has: a site's settings (kept) and an
			// old copy of a platform file (replaced).
			for rel, body := range map[string]string{"sites/a.test/settings.php": "<?php // site\n", "index.php": "old"} {
				if _, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", `mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"`, "sh", filepath.Join(dst, rel), body}}); err != nil {
					t.Fatal(err)
				}
			}
			var log strings.Builder
			st, err := push.Tree(ctx, ex, src, dst, push.Options{SSH: cfg, Method: method, Logf: func(level, f string, a ...any) {
				log.WriteString(level + ": " + strings.TrimSpace(strings.ReplaceAll(f, "%", "")) + "\n")
			}})
			if err != nil {
				t.Fatalf("push: %v\n%s", err, log.String())
			}
			if st.Method != method || st.Files != 6 {
				t.Errorf("stats %+v, want 6 files by %s", st, method)
			}
			sameTree(t, src, dst)
			if b, _ := os.ReadFile(filepath.Join(dst, "sites/a.test/settings.php")); string(b) != "<?php // site\n" {
				t.Errorf("the server's own file was touched: %q", b)
			}
			out, _ := ex.Run(ctx, exec.Command{Name: "stat", Args: []string{"-c", "%U", filepath.Join(dst, "index.php"), filepath.Join(dst, "deep/a")}})
			if got := strings.Fields(string(out.Stdout)); len(got) != 2 || got[0] != srv.User || got[1] != srv.User {
				t.Errorf("owners on the server %q, want %s", out.Stdout, srv.User)
			}
			// Twice: the same result.
			if _, err := push.Tree(ctx, ex, src, dst, push.Options{SSH: cfg, Method: method}); err != nil {
				t.Fatalf("second push: %v", err)
			}
			sameTree(t, src, dst)
		})
	}

	// Auto picks rsync here (both ends have it).
	st, err := push.Tree(ctx, ex, src, filepath.Join(base, "auto"), push.Options{SSH: cfg})
	if err != nil || st.Method != push.Rsync {
		t.Fatalf("auto: %+v, %v", st, err)
	}

	// rsync's ssh with a known_hosts file that lacks the server: refused,
	// nothing copied.
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	bad := cfg
	bad.KnownHostsFile = empty
	_, err = push.Tree(ctx, ex, src, filepath.Join(base, "refused"), push.Options{SSH: bad, Method: push.Rsync})
	if err == nil || !strings.Contains(err.Error(), "Host key verification failed") {
		t.Fatalf("rsync to an unknown host: %v, want host key verification failed", err)
	}
	if _, err := os.Stat(filepath.Join(base, "refused", "index.php")); !os.IsNotExist(err) {
		t.Fatalf("files copied to an unknown host: %v", err)
	}

	// Bad destinations.
	for _, dst := range []string{"relative/wp", "/srv/my wp", "/srv/../etc"} {
		if _, err := push.Tree(ctx, ex, src, dst, push.Options{SSH: cfg}); err == nil {
			t.Errorf("destination %q accepted", dst)
		}
	}
}
