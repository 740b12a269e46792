package simexec

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func dial(t *testing.T, f *Fleet, host string) aexec.Executor {
	t.Helper()
	ex, err := f.Dial(context.Background(), aexec.SSHConfig{Host: host, Port: 22, User: "aegir"})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// The fleet records each connection and each operation per server, and
// a server keeps the files written to it over the fleet's own.
func TestRecordsConnectionsCommandsFiles(t *testing.T) {
	ctx := context.Background()
	f := &Fleet{Files: WordPressPlatform("/var/www/wp"), KeepCommands: true}
	a, b := dial(t, f, "web1"), dial(t, f, "web2")
	dial(t, f, "web1")
	if got := f.Connections(); got["aegir@web1:22"] != 2 || got["aegir@web2:22"] != 1 || len(got) != 2 {
		t.Fatalf("connections %v", got)
	}
	if res, err := a.Run(ctx, aexec.Command{Name: "printenv", Args: []string{"HOME"}}); err != nil || string(res.Stdout) != "/home/aegir\n" {
		t.Fatalf("printenv HOME: %q, %v", res.Stdout, err)
	}
	if err := a.WriteFile(ctx, "/etc/nginx/sites/x.conf", []byte("server {}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := a.ReadFile(ctx, "/etc/nginx/sites/x.conf"); err != nil || string(got) != "server {}" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if _, err := b.ReadFile(ctx, "/etc/nginx/sites/x.conf"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("another server has the file: %v", err)
	}
	if fi, err := b.Stat(ctx, "/var/www/wp/wp-includes"); err != nil || !fi.IsDir() {
		t.Fatalf("the platform's directory: %v, %v", fi, err)
	}
	if err := a.RemoveAll(ctx, "/var/www/wp"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stat(ctx, "/var/www/wp/index.php"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removed, yet %v", err)
	}
	if _, err := b.Stat(ctx, "/var/www/wp/index.php"); err != nil {
		t.Fatalf("removed on the other server: %v", err)
	}
	var ops []string
	for _, r := range f.Commands() {
		ops = append(ops, r.Host+" "+r.Op)
	}
	want := "aegir@web1:22 printenv HOME|aegir@web1:22 write /etc/nginx/sites/x.conf|aegir@web1:22 read /etc/nginx/sites/x.conf|aegir@web1:22 remove -r /var/www/wp|aegir@web1:22 stat /var/www/wp/index.php|" +
		"aegir@web2:22 read /etc/nginx/sites/x.conf|aegir@web2:22 stat /var/www/wp/wp-includes|aegir@web2:22 stat /var/www/wp/index.php"
	if got := strings.Join(ops, "|"); got != want {
		t.Fatalf("recorded\n%s\nwant\n%s", got, want)
	}
	if c := f.Counts(); c["aegir@web1:22"] != 5 || c["aegir@web2:22"] != 3 {
		t.Fatalf("counts %v", c)
	}
}

// Through a tunnel, the web server answers HTTP and the database server
// MariaDB's protocol, which the real client (go-sql-driver) speaks.
func TestTunnelsAnswer(t *testing.T) {
	ctx := context.Background()
	f := &Fleet{}
	ex := dial(t, f, "web1").(aexec.Dialer)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return ex.Dial(ctx, network, "127.0.0.1:80")
	}}}
	res, err := c.Get("http://site1.fleet.test/wp-cron.php")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "<title>site1.fleet.test</title>") {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr, mc.InterpolateParams = "root", "tcp", "127.0.0.1:3306", true
	mc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) { return ex.Dial(ctx, network, addr) }
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var v string
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil || !strings.Contains(v, "MariaDB") {
		t.Fatalf("version %q, %v", v, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM wp_users WHERE id > ?", 0).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count %d, %v", n, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE x"); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Dial(ctx, "tcp", "127.0.0.1:5432"); err == nil {
		t.Fatal("a tunnel to a port no simulated service listens on was opened")
	}
}

// The aegir binary does not contain the simulated fleet: only tests and
// benchmarks can select it, no configuration.
func TestNotInTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/aegir-project/aegir/cmd/aegir").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/aegir-project/aegir/pkg/provision/exec\n") {
		t.Fatalf("go list -deps lists no exec package: %s", out)
	}
	if strings.Contains(string(out), "pkg/internal/simexec") {
		t.Fatal("cmd/aegir depends on pkg/internal/simexec")
	}
}
