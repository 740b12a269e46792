package app

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// TestOverSSH runs the drivers against a real sshd on loopback, logged in
// as testenv's unprivileged test user (sudo to www-data): detection,
// verify, package discovery in one remote command, and the Drupal
// installer and login link through php-cli over SSH.
func TestOverSSH(t *testing.T) {
	srv := testenv.StartSSHD(t)
	ctx := testCtx(t)
	ex, err := aexec.DialSSH(ctx, aexec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile,
		KnownHostsFile: srv.KnownHostsFile, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	t.Cleanup(func() { ex.Close() })

	tree := map[string]string{}
	for k, v := range drupal10Files {
		tree[k] = v
	}
	for k, v := range standInDrupal10 {
		tree[k] = v
	}
	for k, v := range standInSite10 {
		tree[k] = v
	}
	root := buildDrupal(t, tree, "web")
	writeTree(t, root, map[string]string{"web/rec/.keep": ""})
	// The platform belongs to the SSH user, as a deploy user's would; its
	// rec/ directory is the stand-in installer's, written as www-data.
	if out, err := exec.Command("sh", "-c", `chown -R "$1": "$2" && chmod 0777 "$2/web/rec"`, "sh", srv.User, root).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}

	var log logRecorder
	p, err := Verify(ctx, ex, root, VerifyOptions{Type: Drupal, WebUser: "www-data", Log: log.logf})
	if err != nil {
		t.Fatalf("Verify over SSH: %v\n%s", err, log.String())
	}
	if p.Version != "10.3.1" || p.DocrootRel() != "web" {
		t.Errorf("platform %+v", p)
	}
	remote, err := Discover(ctx, ex, p, log.logf)
	if err != nil {
		t.Fatal(err)
	}
	local, err := Discover(ctx, aexec.NewLocal(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, remote) || len(remote) != 10 {
		t.Errorf("discovery over SSH found %d packages, locally %d:\n%+v\n%+v", len(remote), len(local), remote, local)
	}

	db := DB{Type: "mariadb", Name: "ssh_db", User: "ssh_u", Password: `s'sh\pw`, Host: "127.0.0.1", Port: 3306}
	if _, err := WriteDrupalSettings(ctx, ex, p, DrupalSettings{Domain: "ssh.test", DB: db}, Owner{}); err != nil {
		t.Fatal(err)
	}
	includeSettings(t, p.SiteDir("ssh.test")+"/settings.php")
	pass := `o'ver\ssh` + NewPassword()
	if err := InstallDrupal(ctx, ex, p, DrupalInstall{Domain: "ssh.test", AdminPassword: pass, DB: db, User: "www-data", Log: log.logf}); err != nil {
		t.Fatalf("InstallDrupal over SSH: %v\n%s", err, log.String())
	}
	r := readRecord(t, p)
	if r.User != "www-data" || get(r.Settings, "forms", "install_configure_form", "account", "pass", "pass1") != pass || deref(r.Loader) != "StandInClassLoader" {
		t.Errorf("the installer over SSH got: %+v", r)
	}
	link, err := DrupalLoginLink(ctx, ex, p, "ssh.test", "http://ssh.test", "www-data", nil)
	if err != nil || link != "http://ssh.test/user/reset/1/1700000000/hash10/login" {
		t.Errorf("login link over SSH: %q, %v", link, err)
	}
	if strings.Contains(log.String(), pass) || strings.Contains(log.String(), db.Password) {
		t.Errorf("a password is in the log:\n%s", log.String())
	}
}
