package drupal

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// TestOverSSH runs the drivers against a real sshd on loopback, logged in
// as testenv's unprivileged test user (sudo to www-data): detection,
// verify, package discovery in one remote command, and the Drupal
// installer and login link through php-cli over SSH.
func TestOverSSH(t *testing.T) {
	srv := testenv.StartSSHD(t)
	ctx := apptest.Ctx(t)
	ex, err := aexec.DialSSH(ctx, aexec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile,
		KnownHostsFile: srv.KnownHostsFile, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	t.Cleanup(func() { ex.Close() })

	tree := map[string]string{}
	for k, v := range apptest.Drupal10Files {
		tree[k] = v
	}
	for k, v := range standInDrupal10 {
		tree[k] = v
	}
	for k, v := range standInSite10 {
		tree[k] = v
	}
	root := apptest.BuildDrupal(t, tree, "web")
	apptest.WriteTree(t, root, map[string]string{"web/rec/.keep": ""})
	// The platform belongs to the SSH user, as a deploy user's would; its
	// rec/ directory is the stand-in installer's, written as www-data.
	if out, err := exec.Command("sh", "-c", `chown -R "$1": "$2" && chmod 0777 "$2/web/rec"`, "sh", srv.User, root).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}

	var log apptest.Log
	p, err := app.Verify(ctx, ex, root, app.VerifyOptions{Type: entities.PlatformDrupal, WebUser: "www-data", Log: log.Logf})
	if err != nil {
		t.Fatalf("Verify over SSH: %v\n%s", err, log.String())
	}
	if p.Version != "10.3.1" || p.DocrootRel() != "web" {
		t.Errorf("platform %+v", p)
	}
	remote, err := app.Discover(ctx, ex, p, log.Logf)
	if err != nil {
		t.Fatal(err)
	}
	local, err := app.Discover(ctx, aexec.NewLocal(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, remote) || len(remote) != 10 {
		t.Errorf("discovery over SSH found %d packages, locally %d:\n%+v\n%+v", len(remote), len(local), remote, local)
	}

	db := app.DB{Type: "mariadb", Name: "ssh_db", User: "ssh_u", Password: `s'sh\pw`, Host: "127.0.0.1", Port: 3306}
	if _, err := WriteSettings(ctx, ex, p, Settings{Domain: "ssh.test", DB: db}, app.Owner{}); err != nil {
		t.Fatal(err)
	}
	includeSettings(t, p.SiteDir("ssh.test")+"/settings.php")
	pass := `o'ver\ssh` + app.NewPassword()
	if err := Install(ctx, ex, p, InstallOptions{Domain: "ssh.test", AdminPassword: pass, DB: db, User: "www-data", Log: log.Logf}); err != nil {
		t.Fatalf("Install over SSH: %v\n%s", err, log.String())
	}
	r := readRecord(t, p)
	if r.User != "www-data" || get(r.Settings, "forms", "install_configure_form", "account", "pass", "pass1") != pass || deref(r.Loader) != "StandInClassLoader" {
		t.Errorf("the installer over SSH got: %+v", r)
	}
	link, err := LoginLink(ctx, ex, p, "ssh.test", "http://ssh.test", "www-data", nil)
	if err != nil || link != "http://ssh.test/user/reset/1/1700000000/hash10/login" {
		t.Errorf("login link over SSH: %q, %v", link, err)
	}
	if strings.Contains(log.String(), pass) || strings.Contains(log.String(), db.Password) {
		t.Errorf("a password is in the log:\n%s", log.String())
	}
}
