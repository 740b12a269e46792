package drupal

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// InstallOptions says how to install a Drupal site whose settings.php
// WriteSettings has written.
type InstallOptions struct {
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
	DB           app.DB
	User         string // run as this user (the web server user), so that the files it makes are its own
	// Drush, when set, is the platform's drush to install with instead of
	// aegir's own installer (see Install).
	Drush string
	PHP   []string // the php-cli command and its first arguments; empty: php
	Log   app.Logf
}

func (o *InstallOptions) defaults() (err error) {
	if err := app.CheckDomains(o.Domain, nil); err != nil {
		return err
	}
	if o.URL, err = app.SiteURL(o.Domain, o.URL); err != nil {
		return err
	}
	o.Profile = app.OrDefault(o.Profile, "standard")
	o.Locale = app.OrDefault(o.Locale, "en")
	o.SiteName = app.OrDefault(o.SiteName, o.Domain)
	o.SiteMail = app.OrDefault(o.SiteMail, "admin@"+o.Domain)
	o.AdminName = app.OrDefault(o.AdminName, "admin")
	o.AdminMail = app.OrDefault(o.AdminMail, o.SiteMail)
	if o.AdminPassword == "" {
		o.AdminPassword = app.NewPassword()
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
	if err := app.CheckAccount(o.SiteName, o.AdminName, o.AdminMail); err != nil {
		return err
	}
	return o.DB.Check()
}

// Install installs a Drupal 7 or 8+ site on the platform; its
// settings.php must be in place (WriteSettings) and its database
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
func Install(ctx context.Context, ex exec.Executor, p app.Platform, o InstallOptions) error {
	if p.Type != entities.PlatformDrupal {
		return fmt.Errorf("install: platform %s is %s, not Drupal", p.Root, p.Type)
	}
	if err := o.defaults(); err != nil {
		return provision.Errorf(provision.ErrInvalidContext, "check the site's record", "install %s: %v", o.Domain, err).With(entities.Do("site.show", o.Domain))
	}
	if o.Drush != "" {
		return drushInstall(ctx, ex, p, o)
	}
	driver, _ := o.DB.PDODriver()
	script, err := PHPScript(ScriptInstall)
	if err != nil {
		return err
	}
	o.Log.Printf(provision.LevelInfo, "installing Drupal %s for %s with profile %s (aegir's installer)", p.Version, o.Domain, o.Profile)
	var out struct{ Seconds float64 }
	err = app.RunPHP(ctx, ex, ScriptInstall, script, map[string]any{
		"major": p.Major, "url": o.URL, "profile": o.Profile, "locale": o.Locale,
		"site_name": o.SiteName, "site_mail": o.SiteMail,
		"account_name": o.AdminName, "account_mail": o.AdminMail, "account_pass": o.AdminPassword,
		"update_status": o.UpdateStatus,
		"db": map[string]any{"driver": driver, "database": o.DB.Name, "username": o.DB.User, "password": o.DB.Password,
			"host": o.DB.Host, "port": o.DB.Port},
	}, app.PHPRun{Dir: p.Docroot, User: o.User, Timeout: app.InstallTimeout, Log: o.Log, Secrets: []string{o.AdminPassword, o.DB.Password}, PHP: o.PHP}, &out)
	if err != nil {
		return app.AsTaskError(err, provision.ErrInstall, "Drupal install of "+o.Domain)
	}
	o.Log.Printf(provision.LevelInfo, "Drupal installed %s in %.1f s", o.Domain, out.Seconds)
	return nil
}

// DrushInstallCommand is the drush command line Install runs with
// o.Drush (see there): no password and no database URL on it.
func DrushInstallCommand(p app.Platform, o InstallOptions) exec.Command {
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
		Dir: p.Docroot, User: o.User, Timeout: app.InstallTimeout,
	}
}

func drushInstall(ctx context.Context, ex exec.Executor, p app.Platform, o InstallOptions) error {
	if err := entities.ValidateAbsPath("drush", o.Drush); err != nil {
		return provision.Errorf(provision.ErrInvalidContext, "set the platform's drush to an absolute path", "%v", err)
	}
	c := DrushInstallCommand(p, o)
	o.Log.Printf(provision.LevelInfo, "installing Drupal %s for %s with profile %s (the platform's drush)", p.Version, o.Domain, o.Profile)
	if err := runDrush(ctx, ex, c, o.Log, provision.ErrInstall, "drush site:install of "+o.Domain); err != nil {
		return err
	}
	o.Log.Printf(provision.LevelInfo, "drush made up the admin password; it is not kept: use a one-time login link")
	return nil
}

// runDrush runs a drush command and logs its output, with the passwords
// in it blanked out. Its failure is an error with code, saying what
// failed.
func runDrush(ctx context.Context, ex exec.Executor, c exec.Command, log app.Logf, code, what string) error {
	log.Printf(provision.LevelCommand, "%s", c.String())
	res, err := ex.Run(ctx, c)
	if out := withoutPasswords(strings.TrimSpace(string(res.Stderr) + "\n" + string(res.Stdout))); out != "" {
		log.Printf(provision.LevelOutput, "%s", app.LastLines(out, 40))
	}
	if err != nil {
		hint, fix := app.PHPHint(err.Error())
		return &provision.Error{Code: code, Msg: what + " failed", Err: fmt.Errorf("%s", withoutPasswords(err.Error())), Hint: hint, Fix: fix}
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

// LoginLink makes a one-time login link for user 1 of a Drupal 7 or
// 8+ site, booting the site with aegir's embedded script (no drush
// needed), as drush user:login does. url is the site's address (empty:
// http://DOMAIN); the link is built on it. Print it once; do not log it.
func LoginLink(ctx context.Context, ex exec.Executor, p app.Platform, domain, url, runAs string, log app.Logf) (string, error) {
	var out struct{ URL string }
	o := app.SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	if err := scripts.RunStep(ctx, ex, p, ScriptSite, o, app.StepTimeout, map[string]any{"op": "login", "uid": 1}, &out); err != nil {
		return "", app.AsTaskError(err, provision.ErrCommand, "login link for "+domain)
	}
	return out.URL, nil
}

// Extension is a module, theme or profile as a site's database
// knows it.
type Extension struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // module, theme or profile
	Enabled bool   `json:"enabled"`
	Schema  string `json:"schema"` // installed schema version; "" or "-1": none
}

// Status is a Drupal site's state as its database says.
type Status struct {
	Version    string      `json:"version"`
	Profile    string      `json:"profile"`
	Extensions []Extension `json:"extensions"`
}

// ReadStatus boots a Drupal site and reads its core version, install
// profile and extensions with their enabled state and schema version
// (Drupal 7: the system table; 8+: core.extension and the system.schema
// key-value store).
func ReadStatus(ctx context.Context, ex exec.Executor, p app.Platform, domain, url, runAs string, log app.Logf) (Status, error) {
	var out Status
	o := app.SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	if err := scripts.RunStep(ctx, ex, p, ScriptSite, o, app.StepTimeout, map[string]any{"op": "status"}, &out); err != nil {
		return out, app.AsTaskError(err, provision.ErrCommand, "status of "+domain)
	}
	return out, nil
}
