package cli_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/provision/db"
)

// remoteEnv is a "remote" server: a private sshd on loopback logged in as
// testenv's unprivileged deploy user (sudo without a password), with its
// own nginx (its own prefix and port) including the config dir under the
// server's aegir home, which only the deploy user writes.
type remoteEnv struct {
	sshd       *testenv.SSHD
	remoteHome string // the aegir home on the server (--remote-home)
	web        *testenv.Web
	base       string // a directory the deploy user owns
}

func newRemoteEnv(t *testing.T, fpm *testenv.PHPFPM, home, name string) *remoteEnv {
	t.Helper()
	r := &remoteEnv{sshd: testenv.StartSSHD(t)}
	r.base = r.sshd.UserTempDir(t)
	r.remoteHome = filepath.Join(r.base, "aegir")
	r.web = testenv.StartNginx(t, filepath.Join(r.remoteHome, "config", name))
	// The admin's test and reload commands say sudo: nginx is root's.
	must(t, home, "server", "add", name, "--host", r.sshd.Host, "--ssh-user", r.sshd.User, "--ssh-port", itoa(r.sshd.Port),
		"--ssh-key", r.sshd.KeyFile, "--accept-host-key", "--remote-home", r.remoteHome, "-q",
		"--http", "nginx", "--http-port", itoa(r.web.Port), "--https-port", itoa(r.web.HTTPSPort), "--http-listen-ip", "127.0.0.1",
		"--http-test-cmd", "sudo -n "+r.web.TestCmd, "--http-restart-cmd", "sudo -n "+r.web.ReloadCmd, "--php-fpm", fpm.Socket,
		// The database listens on the server's loopback only: reached
		// through an SSH tunnel (the default for a loopback --db-host).
		"--db", "mariadb", "--db-host", "127.0.0.1")
	return r
}

// get fetches path from a web server as Host host, retrying briefly while
// a reload takes effect.
func getFrom(t *testing.T, w *testenv.Web, host, path string, ok func(code int, body string, hdr http.Header) bool) (int, string) {
	t.Helper()
	h := &hostEnv{web: w}
	code, body, _ := h.get(t, host, path, ok)
	return code, body
}

func grantHosts(t *testing.T, user string) []string {
	t.Helper()
	rows, err := mariadb(t).Query(`SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var hosts []string
	for rows.Next() {
		var h string
		rows.Scan(&h)
		hosts = append(hosts, h)
	}
	return hosts
}

// Everything on a remote server through SSH, as an unprivileged deploy
// user: server verify writes the include file there; a WordPress platform
// pushed from the master (rsync over SSH) is verified there; a site
// installed on it answers on the remote nginx, its files and vhost under
// the remote aegir home, its database reached through an SSH tunnel;
// cron and stats run on it; a site on this machine with its database on
// the remote server gets grants for this machine's address as the remote
// sees it; a site migrated from this machine to the remote server keeps
// its content, and its certificate, which the remote nginx serves.
func TestRemoteServer(t *testing.T) {
	t.Parallel()
	start := time.Now()
	h := newHTTPSEnv(t, "nginx") // this machine: web1, with nginx, php-fpm and MariaDB; an ACME CA
	fpm := testenv.StartPHPFPM(t)
	r := newRemoteEnv(t, fpm, h.home, "web2")

	sv := serverServices(t, h.home, "web2")
	if sv["http"].Status != "enabled" || sv["db"].Status != "enabled" {
		t.Fatalf("remote server after verify: %+v", sv)
	}
	include := filepath.Join(r.remoteHome, "config", "web2", "nginx.conf")
	if !strings.Contains(sv["http"].Message, include) {
		t.Errorf("the include line does not name the remote include file %s: %q", include, sv["http"].Message)
	}
	if fi, err := os.Stat(include); err != nil || fileOwner(fi) != testenv.SSHTestUser {
		t.Fatalf("include file on the remote: %v (owner %s)", err, fileOwner(fi))
	}
	var srv struct {
		Services []struct {
			Kind     string
			DBTunnel bool `json:"db_tunnel"`
		}
	}
	json.Unmarshal([]byte(must(t, h.home, "server", "show", "web2", "--format", "json")), &srv)
	if !hasTunnel(srv.Services) {
		t.Errorf("a remote loopback database is not tunnelled: %+v", srv.Services)
	}
	known, _ := os.ReadFile(filepath.Join(h.home, "known_hosts"))
	if !strings.Contains(string(known), r.sshd.KnownHostsLine) {
		t.Errorf("--accept-host-key did not record the key: %q", known)
	}

	// The platform's code comes from the master.
	master := testenv.WordPressPlatform(t)
	root := filepath.Join(r.base, "wp")
	_, errs, code := aegir(t, h.home, "platform", "add", "wp2", "--server", "web2", "--root", root, "--push-from", master)
	if code != 0 || !strings.Contains(errs, "(rsync)") {
		t.Fatalf("platform add --push-from: exit %d\n%s", code, errs)
	}
	if p := must(t, h.home, "platform", "show", "wp2", "--format", "json"); !strings.Contains(p, `"type": "wordpress"`) || !strings.Contains(p, `"status": "enabled"`) {
		t.Fatalf("pushed platform: %s", p)
	}
	if fi, err := os.Stat(filepath.Join(root, "wp-login.php")); err != nil || fileOwner(fi) != testenv.SSHTestUser {
		t.Fatalf("pushed code: %v (owner %s, want the SSH user)", err, fileOwner(fi))
	}

	// A site on the remote server, its database there too (through the tunnel).
	domain := testsite.Domain(t, "remote")
	dbName := db.NameFor(domain, nil)
	must(t, h.home, "site", "install", domain, "--platform", "wp2", "-q")
	title := "<title>" + domain + "</title>"
	hasTitle := func(code int, body string, _ http.Header) bool { return code == 200 && strings.Contains(body, title) }
	if code, body := getFrom(t, r.web, domain, "/", hasTitle); !hasTitle(code, body, nil) {
		t.Fatalf("GET %s on the remote nginx: %d %.300s", domain, code, body)
	}
	vhost := filepath.Join(r.remoteHome, "config", "web2", "vhost.d", domain+".conf")
	if fi, err := os.Stat(vhost); err != nil || fileOwner(fi) != testenv.SSHTestUser {
		t.Fatalf("vhost on the remote: %v", err)
	}
	// The deploy user's, with the web server's group: PHP writes there,
	// the deploy user removes what it wrote, without sudo.
	if o, g, m := ownerOf(t, filepath.Join(root, "wp-content", "uploads", domain)); o != testenv.SSHTestUser || g != "www-data" || m.Perm() != 0o775 || m&os.ModeSetgid == 0 {
		t.Fatalf("uploads dir on the remote: %s:%s %v, want %s:www-data 2775", o, g, m, testenv.SSHTestUser)
	}
	if g := grantHosts(t, dbName); len(g) != 1 || g[0] != "127.0.0.1" {
		t.Errorf("grants of the remote site's user: %v, want 127.0.0.1 (its web server's address)", g)
	}
	if gh := siteRecord(t, h.home, domain)["db_grant_host"]; gh != "127.0.0.1" {
		t.Errorf("recorded grant host %v, want 127.0.0.1", gh)
	}

	// Cron and statistics of the remote site.
	_, errs, code = aegir(t, h.home, "site", "cron", domain)
	if code != 0 || !strings.Contains(errs, "ran (HTTP 200)") {
		t.Fatalf("cron of the remote site: exit %d\n%s", code, errs)
	}
	var stats struct {
		Users, Posts, Comments int
		DBBytes                int64 `json:"db_bytes"`
		FilesBytes             int64 `json:"files_bytes"`
	}
	if err := json.Unmarshal([]byte(must(t, h.home, "site", "stats", domain, "--format", "json", "-q")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Users != 1 || stats.Posts != 1 || stats.Comments != 1 {
		t.Fatalf("stats of the remote site: %+v", stats)
	}
	// Its disk usage, measured over SSH on the web server (du) and on the
	// database server.
	if stats.DBBytes < 10*16<<10 || stats.FilesBytes < 1024 {
		t.Fatalf("disk usage of the remote site: database %d bytes, files %d bytes", stats.DBBytes, stats.FilesBytes)
	}
	// One dispatch, two workers, tasks on the site (cron, a backup), its
	// platform and its server: one SSH connection for all of them.
	logins := func() int { return strings.Count(r.sshd.Log(), "Accepted publickey for") }
	before := logins()
	for _, args := range [][]string{{"site", "cron", domain}, {"site", "backup", domain}, {"platform", "verify", "wp2"}, {"server", "verify", "web2"}} {
		must(t, h.home, append(args, "--queue")...)
	}
	must(t, h.home, "hosting", "dispatch", "--workers", "2")
	if n := logins() - before; n != 1 {
		t.Errorf("one dispatch logged in %d times to the remote server, want once", n)
	}
	if out := must(t, h.home, "task", "list", "--status", "error", "--format", "csv", "--fields", "id,type,error"); strings.Count(out, "\n") > 1 {
		t.Fatalf("failed tasks after the dispatch:\n%s", out)
	}
	// The backup of the remote site came back to this machine.
	if bs, _ := filepath.Glob(filepath.Join(h.home, "backups", domain+"*.tar.gz")); len(bs) != 1 {
		t.Errorf("backups of the remote site on the master: %v", bs)
	}
	// The dump's credentials file was in the task's directory in the
	// server's aegir home, which went when the task ended.
	if ents, err := os.ReadDir(filepath.Join(r.remoteHome, "tmp")); err != nil || len(ents) != 0 {
		t.Errorf("the tasks' directories in the remote aegir home: %v %v, want tmp/ there and empty", ents, err)
	}
	// A second verify changes nothing there.
	_, errs, code = aegir(t, h.home, "site", "verify", domain)
	if code != 0 || !strings.Contains(errs, "already up to date") || strings.Contains(errs, "reload") {
		t.Fatalf("second verify of the remote site: exit %d\n%s", code, errs)
	}

	// A site on this machine whose database is on the remote server.
	localRoot := testenv.WordPressPlatform(t)
	must(t, h.home, "platform", "add", "wp1", "--server", "web1", "--root", localRoot, "-q")
	split := testsite.Domain(t, "split")
	_, errs, code = aegir(t, h.home, "site", "install", split, "--platform", "wp1", "--db-server", "web2")
	if code != 0 || !strings.Contains(errs, "sees this machine as 127.0.0.1") {
		t.Fatalf("install with the database on the remote: exit %d\n%s", code, errs)
	}
	if g := grantHosts(t, db.NameFor(split, nil)); len(g) != 1 || g[0] != "127.0.0.1" {
		t.Errorf("grants of %s's user: %v, want 127.0.0.1", split, g)
	}
	if gh := siteRecord(t, h.home, split)["db_grant_host"]; gh != "127.0.0.1" {
		t.Errorf("recorded grant host of %s %v, want 127.0.0.1 (as the remote sees this machine)", split, gh)
	}
	okSplit := func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, "<title>"+split+"</title>")
	}
	if code, body := getFrom(t, h.web, split, "/", okSplit); !okSplit(code, body, nil) {
		t.Fatalf("%s: %d %.300s", split, code, body)
	}
	must(t, h.home, "site", "delete", split, "--no-backup", "-q")

	// Migrate a site from this machine to the remote server: its content
	// and its certificate come along.
	move := testsite.Unique("move")
	testsite.DropDBsOf(t, move) // and the one the migrate makes
	must(t, h.home, "site", "install", move, "--platform", "wp1", "--https", "on", "-q")
	localCert := certOf(t, h.home, move)
	if localCert == nil || localCert.CertPath == "" {
		t.Fatalf("no certificate for %s: %+v", move, localCert)
	}
	serial := h.servedSerial(t, move, "")
	rec := siteRecord(t, h.home, move)
	if _, err := mariadb(t).Exec("UPDATE `" + rec["db_name"].(string) + "`.wp_options SET option_value = 'Moved Content 42' WHERE option_name = 'blogname'"); err != nil {
		t.Fatal(err)
	}
	_, errs, code = aegir(t, h.home, "site", "migrate", move, "--platform", "wp2", "--db-server", "web2")
	if code != 0 {
		t.Fatalf("migrate to the remote server: exit %d\n%s", code, errs)
	}
	rec = siteRecord(t, h.home, move)
	if rec["platform"] != "wp2" || rec["db_server"] != "web2" || rec["status"] != "installed" {
		t.Fatalf("site after migrate: %v", rec)
	}
	moved := func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, "<title>Moved Content 42</title>")
	}
	if code, body := getFrom(t, r.web, move, "/", moved); !moved(code, body, nil) {
		t.Fatalf("migrated site on the remote nginx: %d %.300s", code, body)
	}
	if _, err := os.Stat(filepath.Join(h.home, "config", "web1", "vhost.d", move+".conf")); !os.IsNotExist(err) {
		t.Errorf("the old vhost stayed on this machine: %v", err)
	}
	remoteCert := certOf(t, h.home, move)
	remoteSSL := filepath.Join(r.remoteHome, "config", "web2", "ssl", move)
	if remoteCert == nil || filepath.Dir(remoteCert.KeyPath) != remoteSSL || !remoteCert.NotAfter.Equal(*localCert.NotAfter) {
		t.Fatalf("certificate record after the migrate: %+v, want the same certificate in %s", remoteCert, remoteSSL)
	}
	if fi, err := os.Stat(remoteCert.KeyPath); err != nil || fi.Mode().Perm() != 0o600 || fileOwner(fi) != testenv.SSHTestUser {
		t.Fatalf("key on the remote: %v (%v, owner %s), want 0600 and the deploy user's", err, fi, fileOwner(fi))
	}
	if s := servedSerialAt(t, r.web.HTTPSPort, move, ""); s != serial {
		t.Fatalf("the remote nginx serves %q for %s, want the certificate it had here (%s)", s, move, serial)
	}
	if _, err := os.Stat(filepath.Dir(localCert.CertPath)); !os.IsNotExist(err) {
		t.Errorf("the certificate stayed on this machine: %v", err)
	}

	// Delete on the remote: vhost, files, database and user gone.
	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
	if _, err := os.Stat(vhost); !os.IsNotExist(err) {
		t.Errorf("vhost left on the remote: %v", err)
	}
	if dbExists(t, dbName) || dbUserExists(t, dbName) {
		t.Error("database or user of the remote site left")
	}
	must(t, h.home, "site", "delete", move, "--no-backup", "-q")
	t.Logf("remote server flow: %s", time.Since(start).Round(time.Millisecond))
}

// fileOwner is the name of a file's owner.
func fileOwner(fi fs.FileInfo) string {
	if fi == nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	u, err := user.LookupId(strconv.Itoa(int(st.Uid)))
	if err != nil {
		return strconv.Itoa(int(st.Uid))
	}
	return u.Username
}

func hasTunnel(svs []struct {
	Kind     string
	DBTunnel bool `json:"db_tunnel"`
}) bool {
	for _, s := range svs {
		if s.Kind == "db" && s.DBTunnel {
			return true
		}
	}
	return false
}

// A server whose host key changed is refused: server verify fails with
// the old and new keys and what to do, and known_hosts stays as it was.
func TestRemoteHostKeyChanged(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	a := testenv.StartSSHD(t)
	must(t, home, "server", "add", "db9", "--host", a.Host, "--ssh-user", a.User, "--ssh-port", itoa(a.Port), "--ssh-key", a.KeyFile, "--accept-host-key", "-q",
		"--db", "mariadb", "--db-host", "127.0.0.1")
	known, _ := os.ReadFile(filepath.Join(home, "known_hosts"))

	// The same address, another host key (a reinstalled server, or a man
	// in the middle).
	a.Stop()
	b := testenv.StartSSHDWith(t, testenv.SSHDOptions{Port: a.Port, KeyFile: a.KeyFile})
	_, errs, code := aegir(t, home, "server", "verify", "db9")
	if code != cli.ExitFailed {
		t.Fatalf("verify after the host key changed: exit %d, want 1\n%s", code, errs)
	}
	for _, want := range []string{"CHANGED", "hint: ", "aegir server edit db9 --forget-host-key --accept-host-key"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, errs)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(home, "known_hosts")); string(after) != string(known) || strings.Contains(string(after), b.KnownHostsLine) {
		t.Errorf("known_hosts changed: %q", after)
	}
	if sv := serverServices(t, home, "db9"); sv["db"].Status != "error" || !strings.Contains(sv["db"].Message, "CHANGED") {
		t.Errorf("db service after the refusal: %+v", sv["db"])
	}
}
