package wordpress

import (
	"context"
	"fmt"
	"regexp"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// InstallOptions says how to install a WordPress site whose
// configuration WriteSiteConfig has written.
type InstallOptions struct {
	Domain     string
	URL        string // the site's address as in its configuration; empty: http://DOMAIN
	Title      string // empty: the domain
	AdminUser  string // empty: admin
	AdminEmail string // empty: admin@DOMAIN
	// AdminPassword is the administrator's password; empty: a random one.
	// It travels on standard input and is never printed or logged; the
	// administrator gets in with a login link (LoginLink).
	AdminPassword string
	Public        bool     // let search engines index the site
	Language      string   // e.g. de_DE; empty: English
	User          string   // run as this user (the web server user); empty: aegir's user
	PHP           []string // the php-cli command and its first arguments; empty: php
	Log           app.Logf
}

// Installed is what Install reports.
type Installed struct {
	URL    string `json:"url"`
	UserID int    `json:"user_id"`
	Site   string `json:"site"`
}

var wpLocaleRe = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?(_[a-z]+)?$`)

func (o *InstallOptions) defaults() (err error) {
	if err := app.CheckDomains(o.Domain, nil); err != nil {
		return err
	}
	if o.URL, err = app.SiteURL(o.Domain, o.URL); err != nil {
		return err
	}
	o.Title = app.OrDefault(o.Title, o.Domain)
	o.AdminUser = app.OrDefault(o.AdminUser, "admin")
	o.AdminEmail = app.OrDefault(o.AdminEmail, "admin@"+o.Domain)
	if o.AdminPassword == "" {
		o.AdminPassword = app.NewPassword()
	}
	if err := app.CheckAccount(o.Title, o.AdminUser, o.AdminEmail); err != nil {
		return err
	}
	if o.Language != "" && !wpLocaleRe.MatchString(o.Language) {
		return fmt.Errorf("language %q is not a WordPress locale like de_DE", o.Language)
	}
	return nil
}

// Install runs WordPress's own installer (wp_install()) for one
// site through php-cli in the platform root, loading WordPress through
// the platform's dispatcher as a request for the site's host would. The
// site's database must exist and be empty. The new site sends no mail.
func Install(ctx context.Context, ex exec.Executor, p app.Platform, o InstallOptions) (Installed, error) {
	var out Installed
	if p.Type != entities.PlatformWordPress {
		return out, fmt.Errorf("install: platform %s is %s, not WordPress", p.Root, p.Type)
	}
	if err := o.defaults(); err != nil {
		return out, provision.Errorf(provision.ErrInvalidContext, "check the site's record", "install %s: %v", o.Domain, err).With(entities.Do("site.show", o.Domain))
	}
	script, err := PHPScript(ScriptInstall)
	if err != nil {
		return out, err
	}
	o.Log.Printf(provision.LevelInfo, "installing WordPress %s for %s (admin user %s)", p.Version, o.Domain, o.AdminUser)
	err = app.RunPHP(ctx, ex, ScriptInstall, script, map[string]any{
		"url": o.URL, "title": o.Title, "admin_user": o.AdminUser, "admin_email": o.AdminEmail,
		"admin_password": o.AdminPassword, "public": o.Public, "language": o.Language,
	}, app.PHPRun{Dir: p.Root, User: o.User, Timeout: app.InstallTimeout, Log: o.Log, Secrets: []string{o.AdminPassword}, PHP: o.PHP}, &out)
	if err != nil {
		return out, app.AsTaskError(err, provision.ErrInstall, "WordPress install of "+o.Domain)
	}
	return out, nil
}

// Status is a WordPress site's state as its database says.
type Status struct {
	Version       string   `json:"version"`    // core version of the code
	DBVersion     string   `json:"db_version"` // schema version in the database
	ActivePlugins []string `json:"active_plugins"`
	Template      string   `json:"template"`
	Stylesheet    string   `json:"stylesheet"`
	Blogname      string   `json:"blogname"`
	UploadDir     string   `json:"upload_dir"` // where the site's uploads go
}

// ReadStatus loads WordPress for a site (url: its address; empty:
// http://DOMAIN) and reads its active plugins, theme and versions.
func ReadStatus(ctx context.Context, ex exec.Executor, p app.Platform, domain, url, runAs string, log app.Logf) (Status, error) {
	var out Status
	o := app.SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	if err := scripts.RunStep(ctx, ex, p, ScriptStatus, o, app.StepTimeout, nil, &out); err != nil {
		return out, app.AsTaskError(err, provision.ErrCommand, "status of "+domain)
	}
	return out, nil
}
