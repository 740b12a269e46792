package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
)

// url is the site's address as its users reach it: https once HTTPS is
// required and the site has a certificate (until then it answers on HTTP).
func (s *site) url() string {
	if s.c.Site.HTTPS.Mode == entities.HTTPSRequired && s.c.Site.HTTPS.CertFile != "" {
		return "https://" + s.c.Site.Domain + httpsPortSuffix(s.c.Site.Web.HTTPSPort)
	}
	return "http://" + s.c.Site.Domain + portSuffix(s.c.Site.Web.Port)
}

// httpsURL is the site's address over HTTPS when it answers on both
// schemes (HTTPS on, with a certificate), else "": a WordPress site's
// address then follows the request's scheme, each with its own port.
func (s *site) httpsURL() string {
	if s.c.Site.HTTPS.Mode == entities.HTTPSOn && s.c.Site.HTTPS.CertFile != "" {
		return "https://" + s.c.Site.Domain + httpsPortSuffix(s.c.Site.Web.HTTPSPort)
	}
	return ""
}

func httpsPortSuffix(port int) string {
	if port == 0 || port == 443 {
		return ""
	}
	return fmt.Sprintf(":%d", port)
}

// owner is who owns the site's files and runs its PHP steps: the web
// server's user, or an isolated site's own user (and group: its settings
// are readable by it, not by the web server).
func (s *site) owner() app.Owner {
	if s.isolated() {
		u := entities.SiteUnixUser(s.c.Site.Domain)
		return app.Owner{WebUser: u, WebGroup: u}
	}
	if d := s.deployUser(); d != "" {
		// Its files are the deploy user's with the web server's group;
		// its PHP steps run as that user (no sudo).
		g := s.c.System.WebGroup
		if g == "" {
			g = s.c.System.WebUser
		}
		return app.Owner{WebUser: d, WebGroup: g}
	}
	return app.Owner{WebUser: s.c.System.WebUser, WebGroup: s.c.System.WebGroup}
}

func (s *site) dbSpec() app.DB {
	return app.DB{Type: s.c.Site.DBServer.Type, Name: s.c.Site.DB.Name, User: s.c.Site.DB.User, Password: s.c.Site.DB.Password, Host: s.c.Site.DBServer.Host, Port: s.c.Site.DBServer.Port}
}

// keepDir is where the platform's own configuration that aegir replaces
// is kept, in the web server's aegir home; empty when that is not known.
func keepDir(c *provision.Job) string {
	if c.Site.Web.Home == "" {
		return ""
	}
	return app.KeptDir(c.Site.Web.Home)
}

// appSite is the site as its record says, for its platform's driver.
func (s *site) appSite() app.Site {
	mail := s.c.Site.Client.Email
	admin := s.c.Site.Install.AdminEmail
	if admin == "" {
		admin = mail
	}
	return app.Site{Domain: s.c.Site.Domain, Aliases: s.c.Site.Aliases, URL: s.url(), HTTPSURL: s.httpsURL(), DB: s.dbSpec(), Owner: s.owner(),
		Keep: keepDir(s.c), Drush: s.c.Site.Platform.Drush, PHP: s.phpCLI(), Log: s.env.Logf, Visit: s.visit,
		Install: app.InstallSettings{Title: s.c.Site.Install.Title, AdminUser: s.c.Site.Install.AdminUser, AdminEmail: admin, SiteMail: mail,
			Profile: s.c.Site.Profile, Locale: s.c.Site.Language}}
}

// writeSettings writes the site's settings from its record: Drupal's
// sites/DOMAIN/settings.php and files directories, or WordPress's per-site
// configuration (and the platform's dispatcher). It reports whether a file
// changed. A change is what php-fpm runs when writeSettings returns
// (refreshPHP), not the settings it compiled before.
func (s *site) writeSettings(ctx context.Context) (bool, error) {
	changed, err := s.p.Driver.WriteSettings(ctx, s.files(), s.p, s.appSite())
	if changed {
		s.refreshPHP(ctx)
	}
	return changed, err
}

// refreshPHP makes the site's php-fpm run its settings files as they are
// now (web.Server.RefreshPHP): called once they were rewritten, before
// the site is asked for its health or the task reports success.
func (s *site) refreshPHP(ctx context.Context) {
	if s.pool != nil {
		s.pool.refresh = true // once the pool answers (joinPool)
		return
	}
	s.ws.RefreshPHPAt(ctx, s.phpAddr, "", time.Now(), s.p.Driver.SettingsFiles(s.p, s.appSite())...)
}

// appInstall writes the site's settings and runs the platform's installer.
func appInstall(ctx context.Context, s *site, u *undo) error {
	if _, err := s.writeSettings(ctx); err != nil {
		return err
	}
	u.push("remove the settings and files of "+s.c.Site.Domain, func(ctx context.Context) error {
		return app.RemoveSite(ctx, s.files(), s.p, s.c.Site.Domain)
	})
	return s.p.Driver.Install(ctx, s.files(), s.p, s.appSite())
}

// appVerify re-writes the site's settings from the record.
func appVerify(ctx context.Context, s *site) error {
	changed, err := s.writeSettings(ctx)
	if err == nil && !changed {
		s.env.Logf(provision.LevelInfo, "settings of %s already up to date", s.c.Site.Domain)
	}
	return err
}

// appRemove removes the site's settings and files from the platform.
func appRemove(ctx context.Context, s *site) error {
	if err := app.RemoveSite(ctx, s.files(), s.p, s.c.Site.Domain); err != nil {
		return err
	}
	s.env.Logf(provision.LevelInfo, "removed the settings and files of %s from %s", s.c.Site.Domain, s.p.Root)
	return nil
}

// appLoginLink makes a one-time login link for the site's administrator:
// WordPress's password-reset link; Drupal's one-time login, through the
// platform's drush when it has one configured, else aegir's own PHP step.
func appLoginLink(ctx context.Context, s *site) (string, error) {
	return s.p.Driver.LoginLink(ctx, s.ex, s.p, s.appSite())
}

// sitePackages reads which packages the site has enabled, with their
// schema versions, from the site itself (WordPress: active plugins and
// theme; Drupal: its extensions), matched to the platform's packages.
func sitePackages(ctx context.Context, s *site) ([]entities.Package, error) {
	found, err := app.Discover(ctx, s.ex, s.p, s.env.Logf)
	if err != nil {
		return nil, err
	}
	enabled := s.checked // type/name -> schema version
	if enabled == nil {
		enabled, err = s.p.Driver.EnabledPackages(ctx, s.ex, s.p, s.appSite())
		if err != nil {
			return nil, err
		}
	}
	out := make([]entities.Package, 0, len(found))
	on := 0
	for _, f := range found {
		schema, ok := enabled[f.Type+"/"+f.Name]
		if ok {
			on++
		}
		if schema == "-1" {
			schema = ""
		}
		out = append(out, entities.Package{Name: f.Name, Title: f.Title, Type: f.Type, Project: f.Project, Version: f.Version, Path: f.Path, Enabled: ok, Schema: schema})
	}
	s.env.Logf(provision.LevelInfo, "%s: %d of the platform's %d packages enabled", s.c.Site.Domain, on, len(out))
	return out, nil
}

// phpCLI is the php-cli command of the site's PHP steps: the job's
// php_cli option, else phpX.Y of the version the site chose (Debian's
// name), else the system's php.
func (s *site) phpCLI() []string {
	if cli := strings.Fields(s.c.Opt("php_cli", "")); len(cli) > 0 {
		return cli
	}
	if s.c.Site.PHP != "" {
		return []string{"php" + s.c.Site.PHP}
	}
	return nil
}
