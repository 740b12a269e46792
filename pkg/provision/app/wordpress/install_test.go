package wordpress

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/drupal"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	adb "github.com/aegir-project/aegir/pkg/provision/db"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

func TestWordPressInstall(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	p, err := app.Verify(ctx, ex, apptest.WPPlatform(t), app.VerifyOptions{Type: entities.PlatformWordPress, WebUser: "www-data", Keep: app.KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	db := apptest.NewDB(t)
	domain := "wp-" + strings.ToLower(app.NewPassword()[:8]) + ".test"
	siteURL := "http://" + domain + ":8080"
	site := SiteConfig{Domain: domain, Aliases: []string{"www." + domain}, URL: siteURL, DB: db.DB}
	t.Cleanup(func() { app.RemoveSite(ctx, ex, p, domain) })
	if _, err := WriteSiteConfig(ctx, ex, p, site, app.Owner{WebUser: "www-data", WebGroup: "www-data"}); err != nil {
		t.Fatal(err)
	}
	if usr, _, mode := apptest.FileGroup(t, UploadsDir(p, domain)); usr != "www-data" || !mode.IsDir() {
		t.Errorf("uploads directory: %s %s", usr, mode)
	}

	var log apptest.Log
	title := `Aegir's "test" site \o/`
	pass := `adm'in\pass"` + app.NewPassword()
	res, err := Install(ctx, ex, p, InstallOptions{Domain: domain, URL: siteURL, Title: title, AdminEmail: "admin@example.com",
		AdminPassword: pass, User: "www-data", Log: log.Logf})
	if err != nil {
		t.Fatalf("Install: %v\n%s", err, log.String())
	}
	if res.URL != siteURL || res.UserID != 1 || res.Site != domain {
		t.Errorf("installed: %+v", res)
	}
	// The site's rows are in its database.
	// WordPress keeps the title HTML-escaped, as its install form does.
	for name, want := range map[string]string{"siteurl": siteURL, "home": siteURL, "blogname": `Aegir&#039;s &quot;test&quot; site \o/`, "admin_email": "admin@example.com"} {
		var got string
		if err := db.Admin.QueryRow("SELECT option_value FROM `"+db.Name+"`.wp_options WHERE option_name = ?", name).Scan(&got); err != nil || got != want {
			t.Errorf("wp_options %s = %q, %v; want %q", name, got, err, want)
		}
	}
	var login, hash string
	if err := db.Admin.QueryRow("SELECT user_login, user_pass FROM `"+db.Name+"`.wp_users WHERE ID = 1").Scan(&login, &hash); err != nil || login != "admin" {
		t.Errorf("wp_users: %q, %v", login, err)
	}
	if !strings.HasPrefix(hash, "$P$") && !strings.HasPrefix(hash, "$wp") {
		t.Errorf("admin password stored as %q", hash)
	}
	if strings.Contains(log.String(), pass) || strings.Contains(log.String(), db.Password) {
		t.Errorf("a password is in the log:\n%s", log.String())
	}

	// A one-time login link: its token is nowhere but in the link; the
	// site keeps its SHA-256 with an expiry 24 hours ahead.
	link, err := LoginLink(ctx, ex, p, domain, siteURL, "", "www-data", log.Logf)
	if err != nil {
		t.Fatalf("LoginLink: %v\n%s", err, log.String())
	}
	token, ok := strings.CutPrefix(link, siteURL+"/wp-login.php?action=aegir-login#token=")
	if !ok || len(token) != 43 {
		t.Fatalf("login link %q", link)
	}
	checkStoredToken(t, db, token, 1)
	if strings.Contains(log.String(), token) {
		t.Errorf("the login token is in the log:\n%s", log.String())
	}
	if _, err := LoginLink(ctx, ex, p, domain, siteURL, "nobody", "www-data", nil); err == nil || !strings.Contains(err.Error(), "no such user: nobody") {
		t.Errorf("login link for a missing user: %v", err)
	}

	// Through the alias, the same site.
	st, err := ReadStatus(ctx, ex, p, domain, "http://www."+domain, "www-data", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blogname != `Aegir&#039;s &quot;test&quot; site \o/` || st.Version != p.Version || st.DBVersion == "" || len(st.ActivePlugins) != 0 || st.Template == "" {
		t.Errorf("status: %+v", st)
	}

	t.Logf("task log:\n%s", log.String())

	// WordPress uploads into the site's own directory.
	if st, err := ReadStatus(ctx, ex, p, domain, siteURL, "www-data", nil); err != nil || st.UploadDir != UploadsDir(p, domain) {
		t.Errorf("uploads go to %q (%v), want %s", st.UploadDir, err, UploadsDir(p, domain))
	}

	// A second install into the same database is refused.
	_, err = Install(ctx, ex, p, InstallOptions{Domain: domain, URL: siteURL, User: "www-data"})
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.Code != provision.ErrInstall || !strings.Contains(pe.Msg, "already installed") || pe.Hint == "" {
		t.Errorf("second install: %v", err)
	}

	checkWordPressUpgrade(t, p, db, app.SiteStep{Domain: domain, URL: siteURL, User: "www-data", DBType: "mariadb", Log: log.Logf}, &log)
}

// checkStoredToken checks that the site's database holds the SHA-256 of
// token as the login token of user uid, good for 24 hours from now, and
// the token itself nowhere.
func checkStoredToken(t *testing.T, db *apptest.DB, token string, uid int) {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	var value string
	err := db.Admin.QueryRow("SELECT meta_value FROM `"+db.Name+"`.wp_usermeta WHERE meta_key = 'aegir_login_token' AND user_id = ? AND meta_value LIKE ?",
		uid, "%:"+hex.EncodeToString(sum[:])).Scan(&value)
	if err != nil {
		t.Fatalf("the token's hash is not stored for user %d: %v", uid, err)
	}
	exp, _ := strconv.ParseInt(strings.SplitN(value, ":", 2)[0], 10, 64)
	if d := time.Until(time.Unix(exp, 0)); d < LoginLinkTTL-time.Minute || d > LoginLinkTTL+time.Minute {
		t.Errorf("the token expires in %s, want 24h", d)
	}
	for _, q := range []string{"SELECT COUNT(*) FROM `" + db.Name + "`.wp_usermeta WHERE INSTR(meta_value, ?) > 0",
		"SELECT COUNT(*) FROM `" + db.Name + "`.wp_options WHERE INSTR(option_value, ?) > 0"} {
		var n int
		if err := db.Admin.QueryRow(q, token).Scan(&n); err != nil || n != 0 {
			t.Errorf("the token itself is in the database: %s: %d rows, %v", q, n, err)
		}
	}
}

// checkWordPressUpgrade checks UpdateDB on an installed site: a
// database of an older WordPress is brought up to the platform's, an up
// to date one is left alone, a newer one is refused.
func checkWordPressUpgrade(t *testing.T, p app.Platform, db *apptest.DB, o app.SiteStep, log *apptest.Log) {
	t.Helper()
	ctx := apptest.Ctx(t)
	dbVersion := func() (v int) {
		t.Helper()
		if err := db.Admin.QueryRow("SELECT option_value FROM `" + db.Name + "`.wp_options WHERE option_name = 'db_version'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	setVersion := func(v int) {
		t.Helper()
		if _, err := db.Admin.Exec("UPDATE `"+db.Name+"`.wp_options SET option_value = ? WHERE option_name = 'db_version'", v); err != nil {
			t.Fatal(err)
		}
	}
	want := dbVersion()
	// DBUpToDate tells an up to date database from the site's options
	// and the platform's version.php, without loading WordPress; an older
	// one, or a platform whose version.php it cannot read, is not.
	svc, err := adb.New(adb.Config{Type: adb.MariaDB, Host: "127.0.0.1", Port: 3306, AdminUser: "root"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	site := app.Site{Domain: o.Domain, DB: db.DB}
	d := wordPressDriver{}
	if ok, versions := d.DBUpToDate(ctx, aexec.NewLocal(), svc, p, site); !ok || versions != fmt.Sprintf("db_version %d, WordPress %s", want, p.Version) {
		t.Errorf("DBUpToDate of an up to date database: %v %q", ok, versions)
	}
	noCode := p
	noCode.Root = t.TempDir()
	if ok, _ := d.DBUpToDate(ctx, aexec.NewLocal(), svc, noCode, site); ok {
		t.Error("DBUpToDate without the platform's version.php says up to date")
	}
	setVersion(44000)
	if ok, _ := d.DBUpToDate(ctx, aexec.NewLocal(), svc, p, site); ok {
		t.Error("DBUpToDate of an older database says up to date")
	}
	up, err := UpdateDB(ctx, aexec.NewLocal(), p, o)
	if err != nil {
		t.Fatalf("UpdateDB: %v\n%s", err, log.String())
	}
	if up.From != 44000 || up.To != want || up.Version != p.Version || dbVersion() != want {
		t.Errorf("upgrade: %+v, db_version now %d, want %d", up, dbVersion(), want)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("info: WordPress database upgraded from db_version 44000 to %d", want)) {
		t.Errorf("log:\n%s", log.String())
	}
	if err := app.UpdateSite(ctx, aexec.NewLocal(), p, o); err != nil || !strings.Contains(log.String(), "the WordPress database is up to date") {
		t.Errorf("second upgrade: %v\n%s", err, log.String())
	}
	setVersion(want + 1000)
	_, err = UpdateDB(ctx, aexec.NewLocal(), p, o)
	var pe *provision.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, fmt.Sprintf("(db_version %d) is newer than WordPress %s", want+1000, p.Version)) || !strings.Contains(pe.Hint, "newer WordPress") {
		t.Errorf("upgrade of a newer database: %v", err)
	}
	if _, err := drupal.UpdateDB(ctx, aexec.NewLocal(), p, o); err == nil {
		t.Error("Drupal updates on a WordPress platform")
	}
}

func TestWordPressInstallFailures(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	p, err := app.Verify(ctx, ex, apptest.WPPlatform(t), app.VerifyOptions{Keep: app.KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("database-refuses", func(t *testing.T) {
		db := apptest.NewDB(t)
		domain := "wp-refused.test"
		wrong := db.DB
		wrong.Password = "not-the-password"
		t.Cleanup(func() { app.RemoveSite(ctx, ex, p, domain) })
		if _, err := WriteSiteConfig(ctx, ex, p, SiteConfig{Domain: domain, DB: wrong}, app.Owner{}); err != nil {
			t.Fatal(err)
		}
		_, err := Install(ctx, ex, p, InstallOptions{Domain: domain})
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrInstall || !strings.Contains(pe.Msg, "database connection") || !strings.Contains(pe.Hint, "database") {
			t.Fatalf("install against a refusing database: %#v", err)
		}
		var n int
		if err := db.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", db.Name).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d tables in the database, %v", n, err)
		}
	})
	t.Run("no-site-config", func(t *testing.T) {
		_, err := Install(ctx, ex, p, InstallOptions{Domain: "nowhere.test"})
		if err == nil || !strings.Contains(err.Error(), "no site is configured for host 'nowhere.test'") {
			t.Fatalf("install of a site without config: %v", err)
		}
	})
	t.Run("bad-input", func(t *testing.T) {
		for _, o := range []InstallOptions{
			{Domain: "../x"}, {Domain: "a.test", AdminUser: "a;b"}, {Domain: "a.test", AdminEmail: "nope"},
			{Domain: "a.test", Language: "../../x"}, {Domain: "a.test", URL: "javascript:alert(1)"},
		} {
			_, err := Install(ctx, ex, p, o)
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext {
				t.Errorf("%+v: %v", o, err)
			}
		}
	})
}

// TestEmbeddedScriptsLint runs php -l on every PHP script as it runs
// (prelude, wp-common.php and script), on the dispatcher and on the login
// plugin.
func TestEmbeddedScriptsLint(t *testing.T) {
	apptest.LintScripts(t, phpFS, Scripts, PHPScript, map[string][]byte{"wp-config.php": RenderDispatcher(), "aegir-login.php": loginPlugin},
		"wp-common.php", "wp-config.php", "wp-login-plugin.php")
}
