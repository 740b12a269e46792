package app

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// checkResetKey asks WordPress whether key is a valid password reset key
// of login on the site at siteURL.
func checkResetKey(t *testing.T, p Platform, siteURL, key, login string) bool {
	t.Helper()
	script, err := withPrelude([]byte(`<?php
$in = aegir_input();
aegir_request($in['url'], '/wp-login.php');
require getcwd() . '/wp-load.php';
$u = check_password_reset_key($in['key'], $in['login']);
aegir_result(array('ok' => !is_wp_error($u)));
`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ OK bool }
	err = runPHP(testCtx(t), aexec.NewLocal(), "check-key.php", script, map[string]any{"url": siteURL, "key": key, "login": login},
		phpRun{Dir: p.Root, User: "www-data"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	return out.OK
}

func TestWordPressInstall(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	p, err := Verify(ctx, ex, wpPlatform(t), VerifyOptions{Type: WordPress, WebUser: "www-data", Keep: KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	db := newTestDB(t)
	domain := "wp-" + strings.ToLower(randomString(8, alnum)) + ".test"
	siteURL := "http://" + domain + ":8080"
	site := WordPressSite{Domain: domain, Aliases: []string{"www." + domain}, URL: siteURL, DB: db.DB}
	t.Cleanup(func() { RemoveSite(ctx, ex, p, domain) })
	if _, err := WriteWordPressSite(ctx, ex, p, site, Owner{WebUser: "www-data", WebGroup: "www-data"}); err != nil {
		t.Fatal(err)
	}
	if usr, _, mode := fileGroup(t, WordPressUploadsDir(p, domain)); usr != "www-data" || !mode.IsDir() {
		t.Errorf("uploads directory: %s %s", usr, mode)
	}

	var log logRecorder
	title := `Aegir's "test" site \o/`
	pass := `adm'in\pass"` + NewPassword()
	res, err := InstallWordPress(ctx, ex, p, WordPressInstall{Domain: domain, URL: siteURL, Title: title, AdminEmail: "admin@example.com",
		AdminPassword: pass, User: "www-data", Log: log.logf})
	if err != nil {
		t.Fatalf("InstallWordPress: %v\n%s", err, log.String())
	}
	if res.URL != siteURL || res.UserID != 1 || res.Site != domain {
		t.Errorf("installed: %+v", res)
	}
	// The site's rows are in its database.
	// WordPress keeps the title HTML-escaped, as its install form does.
	for name, want := range map[string]string{"siteurl": siteURL, "home": siteURL, "blogname": `Aegir&#039;s &quot;test&quot; site \o/`, "admin_email": "admin@example.com"} {
		var got string
		if err := db.admin.QueryRow("SELECT option_value FROM `"+db.Name+"`.wp_options WHERE option_name = ?", name).Scan(&got); err != nil || got != want {
			t.Errorf("wp_options %s = %q, %v; want %q", name, got, err, want)
		}
	}
	var login, hash string
	if err := db.admin.QueryRow("SELECT user_login, user_pass FROM `"+db.Name+"`.wp_users WHERE ID = 1").Scan(&login, &hash); err != nil || login != "admin" {
		t.Errorf("wp_users: %q, %v", login, err)
	}
	if !strings.HasPrefix(hash, "$P$") && !strings.HasPrefix(hash, "$wp") {
		t.Errorf("admin password stored as %q", hash)
	}
	if strings.Contains(log.String(), pass) || strings.Contains(log.String(), db.Password) {
		t.Errorf("a password is in the log:\n%s", log.String())
	}

	// A one-time link that WordPress accepts, once made.
	link, err := WordPressLoginLink(ctx, ex, p, domain, siteURL, "", "www-data", log.logf)
	if err != nil {
		t.Fatalf("WordPressLoginLink: %v\n%s", err, log.String())
	}
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, siteURL+"/wp-login.php?") || u.Query().Get("action") != "rp" || u.Query().Get("login") != "admin" {
		t.Fatalf("login link %q (%v)", link, err)
	}
	if !checkResetKey(t, p, siteURL, u.Query().Get("key"), "admin") {
		t.Error("WordPress refuses the key of the login link")
	}
	if checkResetKey(t, p, siteURL, u.Query().Get("key")+"x", "admin") {
		t.Error("WordPress accepts a wrong key")
	}
	if _, err := WordPressLoginLink(ctx, ex, p, domain, siteURL, "nobody", "www-data", nil); err == nil || !strings.Contains(err.Error(), "no such user: nobody") {
		t.Errorf("login link for a missing user: %v", err)
	}

	// Through the alias, the same site.
	st, err := ReadWordPressStatus(ctx, ex, p, domain, "http://www."+domain, "www-data", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blogname != `Aegir&#039;s &quot;test&quot; site \o/` || st.Version != p.Version || st.DBVersion == "" || len(st.ActivePlugins) != 0 || st.Template == "" {
		t.Errorf("status: %+v", st)
	}

	t.Logf("task log:\n%s", log.String())

	// WordPress uploads into the site's own directory.
	if st, err := ReadWordPressStatus(ctx, ex, p, domain, siteURL, "www-data", nil); err != nil || st.UploadDir != WordPressUploadsDir(p, domain) {
		t.Errorf("uploads go to %q (%v), want %s", st.UploadDir, err, WordPressUploadsDir(p, domain))
	}

	// A second install into the same database is refused.
	_, err = InstallWordPress(ctx, ex, p, WordPressInstall{Domain: domain, URL: siteURL, User: "www-data"})
	var pe *provision.Error
	if !errors.As(err, &pe) || pe.Code != provision.ErrInstall || !strings.Contains(pe.Msg, "already installed") || pe.Hint == "" {
		t.Errorf("second install: %v", err)
	}

	checkWordPressUpgrade(t, p, db, SiteStep{Domain: domain, URL: siteURL, User: "www-data", DBType: "mariadb", Log: log.logf}, &log)
}

// checkWordPressUpgrade checks UpdateWordPress on an installed site: a
// database of an older WordPress is brought up to the platform's, an up
// to date one is left alone, a newer one is refused.
func checkWordPressUpgrade(t *testing.T, p Platform, db *testDB, o SiteStep, log *logRecorder) {
	t.Helper()
	ctx := testCtx(t)
	dbVersion := func() (v int) {
		t.Helper()
		if err := db.admin.QueryRow("SELECT option_value FROM `" + db.Name + "`.wp_options WHERE option_name = 'db_version'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	setVersion := func(v int) {
		t.Helper()
		if _, err := db.admin.Exec("UPDATE `"+db.Name+"`.wp_options SET option_value = ? WHERE option_name = 'db_version'", v); err != nil {
			t.Fatal(err)
		}
	}
	want := dbVersion()
	setVersion(44000)
	up, err := UpdateWordPress(ctx, aexec.NewLocal(), p, o)
	if err != nil {
		t.Fatalf("UpdateWordPress: %v\n%s", err, log.String())
	}
	if up.From != 44000 || up.To != want || up.Version != p.Version || dbVersion() != want {
		t.Errorf("upgrade: %+v, db_version now %d, want %d", up, dbVersion(), want)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("info: WordPress database upgraded from db_version 44000 to %d", want)) {
		t.Errorf("log:\n%s", log.String())
	}
	if err := UpdateSite(ctx, aexec.NewLocal(), p, o); err != nil || !strings.Contains(log.String(), "the WordPress database is up to date") {
		t.Errorf("second upgrade: %v\n%s", err, log.String())
	}
	setVersion(want + 1000)
	_, err = UpdateWordPress(ctx, aexec.NewLocal(), p, o)
	var pe *provision.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, fmt.Sprintf("(db_version %d) is newer than WordPress %s", want+1000, p.Version)) || !strings.Contains(pe.Hint, "newer WordPress") {
		t.Errorf("upgrade of a newer database: %v", err)
	}
	if _, err := UpdateDrupal(ctx, aexec.NewLocal(), p, o); err == nil {
		t.Error("Drupal updates on a WordPress platform")
	}
}

func TestWordPressInstallFailures(t *testing.T) {
	ctx := testCtx(t)
	ex := aexec.NewLocal()
	p, err := Verify(ctx, ex, wpPlatform(t), VerifyOptions{Keep: KeptDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("database-refuses", func(t *testing.T) {
		db := newTestDB(t)
		domain := "wp-refused.test"
		wrong := db.DB
		wrong.Password = "not-the-password"
		t.Cleanup(func() { RemoveSite(ctx, ex, p, domain) })
		if _, err := WriteWordPressSite(ctx, ex, p, WordPressSite{Domain: domain, DB: wrong}, Owner{}); err != nil {
			t.Fatal(err)
		}
		_, err := InstallWordPress(ctx, ex, p, WordPressInstall{Domain: domain})
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrInstall || !strings.Contains(pe.Msg, "database connection") || !strings.Contains(pe.Hint, "database") {
			t.Fatalf("install against a refusing database: %#v", err)
		}
		var n int
		if err := db.admin.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", db.Name).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d tables in the database, %v", n, err)
		}
	})
	t.Run("no-site-config", func(t *testing.T) {
		_, err := InstallWordPress(ctx, ex, p, WordPressInstall{Domain: "nowhere.test"})
		if err == nil || !strings.Contains(err.Error(), "no site is configured for host 'nowhere.test'") {
			t.Fatalf("install of a site without config: %v", err)
		}
	})
	t.Run("bad-input", func(t *testing.T) {
		for _, o := range []WordPressInstall{
			{Domain: "../x"}, {Domain: "a.test", AdminUser: "a;b"}, {Domain: "a.test", AdminEmail: "nope"},
			{Domain: "a.test", Language: "../../x"}, {Domain: "a.test", URL: "javascript:alert(1)"},
		} {
			_, err := InstallWordPress(ctx, ex, p, o)
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext {
				t.Errorf("%+v: %v", o, err)
			}
		}
	})
}
