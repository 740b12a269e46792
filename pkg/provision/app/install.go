package app

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// InstallTimeout bounds an application's installer.
const InstallTimeout = 10 * time.Minute

// stepTimeout bounds the smaller PHP steps (login link, status).
const stepTimeout = 2 * time.Minute

// WordPressInstall says how to install a WordPress site whose
// configuration WriteWordPressSite has written.
type WordPressInstall struct {
	Domain     string
	URL        string // the site's address as in its configuration; empty: http://DOMAIN
	Title      string // empty: the domain
	AdminUser  string // empty: admin
	AdminEmail string // empty: admin@DOMAIN
	// AdminPassword is the administrator's password; empty: a random one.
	// It travels on standard input and is never printed or logged; the
	// administrator gets in with a login link (WordPressLoginLink).
	AdminPassword string
	Public        bool     // let search engines index the site
	Language      string   // e.g. de_DE; empty: English
	User          string   // run as this user (the web server user); empty: aegir's user
	PHP           []string // the php-cli command and its first arguments; empty: php
	Log           Logf
}

// WordPressInstalled is what InstallWordPress reports.
type WordPressInstalled struct {
	URL    string `json:"url"`
	UserID int    `json:"user_id"`
	Site   string `json:"site"`
}

var (
	wpUserRe   = regexp.MustCompile(`^[A-Za-z0-9 _.\-@]{1,60}$`)
	wpLocaleRe = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?(_[a-z]+)?$`)
)

func (o *WordPressInstall) defaults() (err error) {
	if err := checkDomains(o.Domain, nil); err != nil {
		return err
	}
	if o.URL, err = siteURL(o.Domain, o.URL); err != nil {
		return err
	}
	o.Title = orDefault(o.Title, o.Domain)
	o.AdminUser = orDefault(o.AdminUser, "admin")
	o.AdminEmail = orDefault(o.AdminEmail, "admin@"+o.Domain)
	if o.AdminPassword == "" {
		o.AdminPassword = NewPassword()
	}
	if err := checkAccount(o.Title, o.AdminUser, o.AdminEmail); err != nil {
		return err
	}
	if o.Language != "" && !wpLocaleRe.MatchString(o.Language) {
		return fmt.Errorf("language %q is not a WordPress locale like de_DE", o.Language)
	}
	return nil
}

// checkAccount checks a site's title and its admin account's name and
// email (site_title, site_admin_user and site_admin_email of the
// context). The command line holds a given email to the stricter
// entities.ValidateAccountEmail; the default, the client's, is only
// a plain address.
func checkAccount(title, user, email string) error {
	if err := entities.ValidateTitle("site_title", title); err != nil {
		return err
	}
	if err := entities.ValidateAccountName("site_admin_user", user); err != nil {
		return err
	}
	return entities.ValidateEmail("site_admin_email", email)
}

// InstallWordPress runs WordPress's own installer (wp_install()) for one
// site through php-cli in the platform root, loading WordPress through
// the platform's dispatcher as a request for the site's host would. The
// site's database must exist and be empty. The new site sends no mail.
func InstallWordPress(ctx context.Context, ex exec.Executor, p Platform, o WordPressInstall) (WordPressInstalled, error) {
	var out WordPressInstalled
	if p.Type != WordPress {
		return out, fmt.Errorf("install: platform %s is %s, not WordPress", p.Root, p.Type)
	}
	if err := o.defaults(); err != nil {
		return out, provision.Errorf(provision.ErrInvalidContext, "check the site's record (aegir site show DOMAIN)", "install %s: %v", o.Domain, err)
	}
	script, err := PHPScript(ScriptWordPressInstall)
	if err != nil {
		return out, err
	}
	o.Log.log(provision.LevelInfo, "installing WordPress %s for %s (admin user %s)", p.Version, o.Domain, o.AdminUser)
	err = runPHP(ctx, ex, ScriptWordPressInstall, script, map[string]any{
		"url": o.URL, "title": o.Title, "admin_user": o.AdminUser, "admin_email": o.AdminEmail,
		"admin_password": o.AdminPassword, "public": o.Public, "language": o.Language,
	}, phpRun{Dir: p.Root, User: o.User, Timeout: InstallTimeout, Log: o.Log, Secrets: []string{o.AdminPassword}, PHP: o.PHP}, &out)
	if err != nil {
		return out, asTaskError(err, provision.ErrInstall, "WordPress install of "+o.Domain)
	}
	return out, nil
}

// WordPressStatus is a WordPress site's state as its database says.
type WordPressStatus struct {
	Version       string   `json:"version"`    // core version of the code
	DBVersion     string   `json:"db_version"` // schema version in the database
	ActivePlugins []string `json:"active_plugins"`
	Template      string   `json:"template"`
	Stylesheet    string   `json:"stylesheet"`
	Blogname      string   `json:"blogname"`
	UploadDir     string   `json:"upload_dir"` // where the site's uploads go
}

// ReadWordPressStatus loads WordPress for a site (url: its address; empty:
// http://DOMAIN) and reads its active plugins, theme and versions.
func ReadWordPressStatus(ctx context.Context, ex exec.Executor, p Platform, domain, url, runAs string, log Logf) (WordPressStatus, error) {
	var out WordPressStatus
	o := SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	if err := siteStep(ctx, ex, p, WordPress, ScriptWordPressStatus, o, stepTimeout, nil, &out); err != nil {
		return out, asTaskError(err, provision.ErrCommand, "status of "+domain)
	}
	return out, nil
}

// DrupalInstall says how to install a Drupal site whose settings.php
// WriteDrupalSettings has written.
type DrupalInstall struct {
	Domain    string
	URL       string // the site's address; empty: http://DOMAIN
	Profile   string // empty: standard
	Locale    string // empty: en
	SiteName  string // empty: the domain
	SiteMail  string // empty: admin@DOMAIN
	AdminName string // empty: admin
	AdminMail string // empty: the site mail
	// AdminPassword is the password of user 1; empty: a random one. It
	// travels on standard input and is never printed or logged.
	AdminPassword string
	// UpdateStatus turns on the update status module and its mail.
	UpdateStatus bool
	DB           DB
	User         string // run as this user (the web server user), so that the files it makes are its own
	// Drush, when set, is the platform's drush to install with instead of
	// aegir's own installer (see InstallDrupal).
	Drush string
	PHP   []string // the php-cli command and its first arguments; empty: php
	Log   Logf
}

func (o *DrupalInstall) defaults() (err error) {
	if err := checkDomains(o.Domain, nil); err != nil {
		return err
	}
	if o.URL, err = siteURL(o.Domain, o.URL); err != nil {
		return err
	}
	o.Profile = orDefault(o.Profile, "standard")
	o.Locale = orDefault(o.Locale, "en")
	o.SiteName = orDefault(o.SiteName, o.Domain)
	o.SiteMail = orDefault(o.SiteMail, "admin@"+o.Domain)
	o.AdminName = orDefault(o.AdminName, "admin")
	o.AdminMail = orDefault(o.AdminMail, o.SiteMail)
	if o.AdminPassword == "" {
		o.AdminPassword = NewPassword()
	}
	if err := entities.ValidateProfile("profile", o.Profile); err != nil {
		return err
	}
	if err := entities.ValidateLanguage("locale", o.Locale); err != nil {
		return err
	}
	if err := entities.ValidateEmail("site mail", o.SiteMail); err != nil {
		return err
	}
	if err := checkAccount(o.SiteName, o.AdminName, o.AdminMail); err != nil {
		return err
	}
	return o.DB.check()
}

// InstallDrupal installs a Drupal 7 or 8+ site on the platform; its
// settings.php must be in place (WriteDrupalSettings) and its database
// empty.
//
// By default it runs Drupal's own installer through aegir's embedded PHP
// script (the way drush does it), with every setting, the admin password
// included, on standard input. With o.Drush it runs that drush instead:
// `site:install PROFILE --sites-subdir=DOMAIN` (`site-install`, drush 8
// syntax, for Drupal 7) with the site and account names on the command
// line but no password and no database URL: drush reads the database from
// settings.php and makes up a random admin password, whose value in its
// output is kept out of the log. Either way the administrator gets in
// with a one-time login link.
func InstallDrupal(ctx context.Context, ex exec.Executor, p Platform, o DrupalInstall) error {
	if p.Type != Drupal {
		return fmt.Errorf("install: platform %s is %s, not Drupal", p.Root, p.Type)
	}
	if err := o.defaults(); err != nil {
		return provision.Errorf(provision.ErrInvalidContext, "check the site's record (aegir site show DOMAIN)", "install %s: %v", o.Domain, err)
	}
	if o.Drush != "" {
		return drushInstall(ctx, ex, p, o)
	}
	driver, _ := o.DB.driver()
	script, err := PHPScript(ScriptDrupalInstall)
	if err != nil {
		return err
	}
	o.Log.log(provision.LevelInfo, "installing Drupal %s for %s with profile %s (aegir's installer)", p.Version, o.Domain, o.Profile)
	var out struct{ Seconds float64 }
	err = runPHP(ctx, ex, ScriptDrupalInstall, script, map[string]any{
		"major": p.Major, "url": o.URL, "profile": o.Profile, "locale": o.Locale,
		"site_name": o.SiteName, "site_mail": o.SiteMail,
		"account_name": o.AdminName, "account_mail": o.AdminMail, "account_pass": o.AdminPassword,
		"update_status": o.UpdateStatus,
		"db": map[string]any{"driver": driver, "database": o.DB.Name, "username": o.DB.User, "password": o.DB.Password,
			"host": o.DB.Host, "port": o.DB.Port},
	}, phpRun{Dir: p.Docroot, User: o.User, Timeout: InstallTimeout, Log: o.Log, Secrets: []string{o.AdminPassword, o.DB.Password}, PHP: o.PHP}, &out)
	if err != nil {
		return asTaskError(err, provision.ErrInstall, "Drupal install of "+o.Domain)
	}
	o.Log.log(provision.LevelInfo, "Drupal installed %s in %.1f s", o.Domain, out.Seconds)
	return nil
}

// DrushInstallCommand is the drush command line InstallDrupal runs with
// o.Drush (see there): no password and no database URL on it.
func DrushInstallCommand(p Platform, o DrupalInstall) exec.Command {
	verb := "site:install"
	if p.Major == 7 {
		verb = "site-install"
	}
	return exec.Command{
		Name: o.Drush,
		Args: []string{
			"--root=" + p.Docroot, "--uri=" + o.URL, "--yes",
			verb, o.Profile,
			"--sites-subdir=" + o.Domain,
			"--locale=" + o.Locale,
			"--site-name=" + o.SiteName,
			"--site-mail=" + o.SiteMail,
			"--account-name=" + o.AdminName,
			"--account-mail=" + o.AdminMail,
		},
		Dir: p.Docroot, User: o.User, Timeout: InstallTimeout,
	}
}

func drushInstall(ctx context.Context, ex exec.Executor, p Platform, o DrupalInstall) error {
	if err := entities.ValidateAbsPath("drush", o.Drush); err != nil {
		return provision.Errorf(provision.ErrInvalidContext, "set the platform's drush to an absolute path", "%v", err)
	}
	c := DrushInstallCommand(p, o)
	o.Log.log(provision.LevelInfo, "installing Drupal %s for %s with profile %s (the platform's drush)", p.Version, o.Domain, o.Profile)
	if err := runDrush(ctx, ex, c, o.Log, provision.ErrInstall, "drush site:install of "+o.Domain); err != nil {
		return err
	}
	o.Log.log(provision.LevelInfo, "drush made up the admin password; it is not kept: use a one-time login link (aegir site login-reset %s)", o.Domain)
	return nil
}

// runDrush runs a drush command and logs its output, with the passwords
// in it blanked out. Its failure is an error with code, saying what
// failed.
func runDrush(ctx context.Context, ex exec.Executor, c exec.Command, log Logf, code, what string) error {
	log.log(provision.LevelCommand, "%s", c.String())
	res, err := ex.Run(ctx, c)
	if out := withoutPasswords(strings.TrimSpace(string(res.Stderr) + "\n" + string(res.Stdout))); out != "" {
		log.log(provision.LevelOutput, "%s", lastLines(out, 40))
	}
	if err != nil {
		return &provision.Error{Code: code, Msg: what + " failed", Err: fmt.Errorf("%s", withoutPasswords(err.Error())), Hint: phpHint(err.Error())}
	}
	return nil
}

// passwordValue matches the value after "password:" (or "pass=") in a
// program's output.
var passwordValue = regexp.MustCompile(`(?i)(pass(?:word)?\s*[:=]\s*)\S+`)

// withoutPasswords blanks out the values of "password: X" in s (drush
// prints the admin password it made up).
func withoutPasswords(s string) string {
	return passwordValue.ReplaceAllString(s, "${1}********")
}

// siteStep checks the site's address and runs an embedded script for it.
func siteStep(ctx context.Context, ex exec.Executor, p Platform, typ, script string, o SiteStep, timeout time.Duration, input map[string]any, out any) error {
	if p.Type != typ {
		return fmt.Errorf("platform %s is %s, not %s", p.Root, p.Type, typ)
	}
	url, err := o.check()
	if err != nil {
		return err
	}
	code, err := PHPScript(script)
	if err != nil {
		return err
	}
	in := map[string]any{"url": url, "major": p.Major}
	if o.DBType != "" {
		in["db_driver"], _ = DB{Type: o.DBType}.driver()
	}
	for k, v := range input {
		in[k] = v
	}
	return runPHP(ctx, ex, script, code, in, phpRun{Dir: p.Docroot, User: o.User, Timeout: timeout, Log: o.Log, PHP: o.PHP}, out)
}

// DrupalLoginLink makes a one-time login link for user 1 of a Drupal 7 or
// 8+ site, booting the site with aegir's embedded script (no drush
// needed), as drush user:login does. url is the site's address (empty:
// http://DOMAIN); the link is built on it. Print it once; do not log it.
func DrupalLoginLink(ctx context.Context, ex exec.Executor, p Platform, domain, url, runAs string, log Logf) (string, error) {
	var out struct{ URL string }
	o := SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	if err := siteStep(ctx, ex, p, Drupal, ScriptDrupalSite, o, stepTimeout, map[string]any{"op": "login", "uid": 1}, &out); err != nil {
		return "", asTaskError(err, provision.ErrCommand, "login link for "+domain)
	}
	return out.URL, nil
}

// DrupalExtension is a module, theme or profile as a site's database
// knows it.
type DrupalExtension struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // module, theme or profile
	Enabled bool   `json:"enabled"`
	Schema  string `json:"schema"` // installed schema version; "" or "-1": none
}

// DrupalStatus is a Drupal site's state as its database says.
type DrupalStatus struct {
	Version    string            `json:"version"`
	Profile    string            `json:"profile"`
	Extensions []DrupalExtension `json:"extensions"`
}

// ReadDrupalStatus boots a Drupal site and reads its core version, install
// profile and extensions with their enabled state and schema version
// (Drupal 7: the system table; 8+: core.extension and the system.schema
// key-value store).
func ReadDrupalStatus(ctx context.Context, ex exec.Executor, p Platform, domain, url, runAs string, log Logf) (DrupalStatus, error) {
	var out DrupalStatus
	o := SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	if err := siteStep(ctx, ex, p, Drupal, ScriptDrupalSite, o, stepTimeout, map[string]any{"op": "status"}, &out); err != nil {
		return out, asTaskError(err, provision.ErrCommand, "status of "+domain)
	}
	return out, nil
}
