package wordpress

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// Debian's layout: the platform's wp-content is a link to a directory
// elsewhere (Debian keeps it in /var/lib/wordpress/wp-content). The login
// plugin lands where the link points, which is where WordPress loads it
// from, and a site's login link works; a removed plugin comes back with
// the next link. A mu-plugins directory that is a link is refused, and
// nothing is written where it points.
func TestWordPressLoginPluginLayout(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	dir := testenv.PublicDir(t)
	root, content := filepath.Join(dir, "wordpress"), filepath.Join(dir, "var-lib-wordpress", "wp-content")
	if out, err := exec.Command("cp", "-a", "/usr/share/wordpress", root).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Dir(content), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "wp-content"), content); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(content, filepath.Join(root, "wp-content")); err != nil {
		t.Fatal(err)
	}
	p, err := app.Verify(ctx, ex, root, app.VerifyOptions{Type: entities.PlatformWordPress, WebUser: "www-data", Keep: app.KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(content, "mu-plugins", "aegir-login.php")
	if usr, _, mode := apptest.FileGroup(t, plugin); usr != "root" || mode.Perm() != 0o644 {
		t.Fatalf("login plugin: owner %s mode %s, want root 0644", usr, mode)
	}
	if b, _ := os.ReadFile(plugin); !bytes.Equal(b, loginPlugin) {
		t.Fatal("the login plugin is not aegir's")
	}

	db := apptest.NewDB(t)
	domain := "wp-layout.test"
	t.Cleanup(func() { app.RemoveSite(ctx, ex, p, domain) })
	if _, err := WriteSiteConfig(ctx, ex, p, SiteConfig{Domain: domain, DB: db.DB}, app.Owner{WebUser: "www-data", WebGroup: "www-data"}); err != nil {
		t.Fatal(err)
	}
	var log apptest.Log
	if _, err := Install(ctx, ex, p, InstallOptions{Domain: domain, AdminUser: "boss", User: "www-data", Log: log.Logf}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if err := os.Remove(plugin); err != nil {
		t.Fatal(err)
	}
	link, err := LoginLink(ctx, ex, p, domain, "", "", "www-data", log.Logf)
	if err != nil {
		t.Fatalf("LoginLink: %v\n%s", err, log.String())
	}
	token, ok := strings.CutPrefix(link, "http://"+domain+"/wp-login.php?action=aegir-login#token=")
	if !ok {
		t.Fatalf("login link %q", link)
	}
	checkStoredToken(t, db, token, 1)
	if _, err := os.Stat(plugin); err != nil || !strings.Contains(log.String(), "wrote aegir's login plugin") {
		t.Fatalf("the login link did not put the plugin back: %v\n%s", err, log.String())
	}
	// A second link for the same user: both are good until used.
	if _, err := LoginLink(ctx, ex, p, domain, "", "boss", "www-data", nil); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Admin.QueryRow("SELECT COUNT(*) FROM `" + db.Name + "`.wp_usermeta WHERE meta_key = 'aegir_login_token'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d tokens stored, want 2 (%v)", n, err)
	}
	// Expired ones go when the next is made.
	if _, err := db.Admin.Exec("UPDATE `" + db.Name + "`.wp_usermeta SET meta_value = CONCAT('1000000000', SUBSTRING(meta_value, LOCATE(':', meta_value))) WHERE meta_key = 'aegir_login_token'"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoginLink(ctx, ex, p, domain, "", "", "www-data", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Admin.QueryRow("SELECT COUNT(*) FROM `" + db.Name + "`.wp_usermeta WHERE meta_key = 'aegir_login_token'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d tokens stored after two expired, want 1 (%v)", n, err)
	}

	// mu-plugins as a link: refused, the place it points to untouched.
	elsewhere := filepath.Join(dir, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	mu := filepath.Join(content, "mu-plugins")
	if err := os.RemoveAll(mu); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, mu); err != nil {
		t.Fatal(err)
	}
	_, err = EnsureLoginPlugin(ctx, ex, p, nil)
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.Code != provision.ErrPlatform || !strings.Contains(pe.Msg, "is not a directory") || !strings.Contains(pe.Hint, "plain directory") {
		t.Fatalf("mu-plugins as a link: %v", err)
	}
	if left, _ := os.ReadDir(elsewhere); len(left) != 0 {
		t.Fatalf("written through the link: %v", left)
	}
}
