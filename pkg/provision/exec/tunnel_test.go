package exec_test

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// A tunnel through the SSH connection reaches a service that listens on
// the server's loopback (here a line echo server the test runs), keeps
// deadlines working, and says what is wrong when nothing listens there.
func TestSSHDial(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	ex := mustDial(t, srv, nil)
	d, ok := ex.(exec.Dialer)
	if !ok {
		t.Fatal("the SSH executor is no exec.Dialer")
	}
	ctx := context.Background()

	addr := testenv.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			c.Write([]byte("echo " + sc.Text() + "\n"))
		}
	})
	conn, err := d.Dial(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for _, w := range []string{"one", "two"} {
		if _, err := conn.Write([]byte(w + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "echo "+w+"\n" {
			t.Fatalf("through the tunnel: %q, %v", line, err)
		}
	}
	// A read with nothing to read ends at its deadline.
	if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	var ne net.Error
	if _, err := r.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}

	// A unix socket on the server.
	dir := srv.UserTempDir(t)
	sock := dir + "/s.sock"
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ul.Accept()
		if err == nil {
			c.Write([]byte("hello from unix\n"))
			c.Close()
		}
	}()
	uc, err := d.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatalf("Dial unix: %v", err)
	}
	line, _ := bufio.NewReader(uc).ReadString('\n')
	uc.Close()
	if line != "hello from unix\n" {
		t.Fatalf("through the unix tunnel: %q", line)
	}

	// Nothing listens: an error that names the address and what to check.
	closed := strconv.Itoa(testenv.FreePort(t))
	_, err = d.Dial(ctx, "tcp", "127.0.0.1:"+closed)
	wantErr(t, err, exec.ErrUnreachable, "127.0.0.1:"+closed, "AllowTcpForwarding")

	if a, ok := ex.(interface{ Alive(context.Context) bool }); !ok || !a.Alive(ctx) {
		t.Fatal("a live connection is not Alive")
	}
	ex.Close()
	if ex.(interface{ Alive(context.Context) bool }).Alive(ctx) {
		t.Fatal("a closed connection is Alive")
	}
	if _, err := ex.Run(ctx, exec.Command{Name: "true"}); !errors.Is(err, exec.ErrNotStarted) || !errors.Is(err, exec.ErrUnreachable) {
		t.Fatalf("Run on a closed connection: %v, want ErrNotStarted and ErrUnreachable", err)
	}
	if !strings.Contains(ex.(*exec.SSH).Config().KnownHostsFile, "known_hosts") {
		t.Errorf("Config() lacks the known_hosts file: %+v", ex.(*exec.SSH).Config())
	}
}

// A deploy user never falls back to sudo: giving a directory to another
// user fails (the privileged helper does that, package priv), and so does
// removing another user's files where they are not group-writable, with
// what to do.
func TestSSHDeployUserNoSudo(t *testing.T) {
	t.Parallel()
	srv := testenv.StartSSHD(t)
	ex := mustDial(t, srv, nil)
	ctx := context.Background()
	dir := srv.UserTempDir(t) + "/uploads"
	if err := ex.MkdirAll(ctx, dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := ex.Chmod(ctx, dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", `umask 022; mkdir -p "$1/2024/05" && echo x > "$1/2024/05/photo.jpg"`, "sh", dir}, User: "nobody"}); err != nil {
		t.Fatal(err)
	}
	if err := ex.Chown(ctx, dir, "nobody", "nogroup"); err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("Chown to another user as a deploy user: %v, want refused", err)
	}
	if fi, err := os.Stat(dir); err != nil || fileUID(fi) == nobodyUID(t) {
		t.Fatalf("Chown gave %s away: %v", dir, err)
	}
	if err := ex.RemoveAll(ctx, dir); err == nil || !strings.Contains(err.Error(), "must be group-writable") {
		t.Fatalf("RemoveAll of another user's files: %v, want refused", err)
	}
	if _, err := os.Stat(dir + "/2024/05/photo.jpg"); err != nil {
		t.Fatalf("RemoveAll removed what it said it could not: %v", err)
	}
}

func fileUID(fi fs.FileInfo) string {
	return strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
}

func nobodyUID(t *testing.T) string {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	return u.Uid
}
