package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// url is the site's address as its users reach it: https once HTTPS is
// required and the site has a certificate (until then it answers on HTTP).
func (s *site) url() string {
	if s.c.Site.HTTPS.Mode == "required" && s.c.Site.HTTPS.CertFile != "" {
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

func (s *site) owner() app.Owner {
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

// writeSettings writes the site's settings from its record: Drupal's
// sites/DOMAIN/settings.php and files directories, or WordPress's per-site
// configuration (and the platform's dispatcher). It reports whether a file
// changed.
func (s *site) writeSettings(ctx context.Context) (bool, error) {
	switch s.p.Type {
	case app.WordPress:
		if _, err := app.EnsureWordPressPlatform(ctx, s.ex, s.p, keepDir(s.c), s.env.Logf); err != nil {
			return false, err
		}
		return app.WriteWordPressSite(ctx, s.ex, s.p, app.WordPressSite{Domain: s.c.Site.Domain, Aliases: s.c.Site.Aliases, URL: s.url(), HTTPSURL: s.httpsURL(), DB: s.dbSpec()}, s.owner())
	case app.Drupal:
		changed, err := app.WriteDrupalSettings(ctx, s.ex, s.p, app.DrupalSettings{Domain: s.c.Site.Domain, Aliases: s.c.Site.Aliases, DB: s.dbSpec()}, s.owner())
		if err != nil {
			return changed, err
		}
		skipped, err := app.PrepareDrupalSite(ctx, s.ex, s.p, s.c.Site.Domain, s.owner())
		for _, d := range skipped {
			s.env.Logf(provision.LevelWarning, "%s on %s is a symbolic link: aegir leaves it, and what lies under it, as it is (no chown or chmod through a link); make sure %s may write where it points", d, s.ex.Host(), s.c.System.WebUser)
		}
		return changed, err
	}
	return false, provision.Errorf(provision.ErrPlatform, "verify the platform: aegir platform verify "+s.c.Site.Platform.Name, "platform %s has unknown type %q", s.c.Site.Platform.Name, s.p.Type)
}

// appInstall writes the site's settings and runs the platform's installer.
func appInstall(ctx context.Context, s *site, u *undo) error {
	if _, err := s.writeSettings(ctx); err != nil {
		return err
	}
	u.push("remove the settings and files of "+s.c.Site.Domain, func(ctx context.Context) error {
		return app.RemoveSite(ctx, s.ex, s.p, s.c.Site.Domain)
	})
	mail := s.c.Site.Client.Email
	admin := s.c.Site.Install.AdminEmail
	if admin == "" {
		admin = mail
	}
	switch s.p.Type {
	case app.WordPress:
		_, err := app.InstallWordPress(ctx, s.ex, s.p, app.WordPressInstall{Domain: s.c.Site.Domain, URL: s.url(),
			Title: s.c.Site.Install.Title, AdminUser: s.c.Site.Install.AdminUser, AdminEmail: admin, User: s.c.System.WebUser, Log: s.env.Logf})
		return err
	default:
		return app.InstallDrupal(ctx, s.ex, s.p, app.DrupalInstall{Domain: s.c.Site.Domain, URL: s.url(), Profile: s.c.Site.Profile, Locale: s.c.Site.Language,
			SiteName: s.c.Site.Install.Title, SiteMail: mail, AdminName: s.c.Site.Install.AdminUser, AdminMail: admin,
			DB: s.dbSpec(), User: s.c.System.WebUser, Drush: s.c.Site.Platform.Drush, Log: s.env.Logf})
	}
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
	if err := app.RemoveSite(ctx, s.ex, s.p, s.c.Site.Domain); err != nil {
		return err
	}
	s.env.Logf(provision.LevelInfo, "removed the settings and files of %s from %s", s.c.Site.Domain, s.p.Root)
	return nil
}

// appLoginLink makes a one-time login link for the site's administrator:
// WordPress's password-reset link; Drupal's one-time login, through the
// platform's drush when it has one configured, else aegir's own PHP step.
func appLoginLink(ctx context.Context, s *site) (string, error) {
	if s.p.Type == app.WordPress {
		return app.WordPressLoginLink(ctx, s.ex, s.p, s.c.Site.Domain, s.url(), "", s.c.System.WebUser, s.env.Logf)
	}
	if s.c.Site.Platform.Drush == "" {
		return app.DrupalLoginLink(ctx, s.ex, s.p, s.c.Site.Domain, s.url(), s.c.System.WebUser, s.env.Logf)
	}
	// drush 8 (Drupal 7) calls it user-login; later drush user:login.
	verb := "user:login"
	if s.p.Major == 7 {
		verb = "user-login"
	}
	res, err := s.ex.Run(ctx, exec.Command{Name: s.c.Site.Platform.Drush, Args: []string{"--root=" + s.p.Docroot, "--uri=" + s.url(), verb, "--no-browser"},
		Dir: s.p.Docroot, User: s.c.System.WebUser})
	if err != nil {
		return "", err
	}
	link := strings.TrimSpace(string(res.Stdout))
	if !strings.HasPrefix(link, "http") {
		return "", provision.Errorf(provision.ErrCommand, "run the same drush command by hand to see why", "drush gave no login link for %s", s.c.Site.Domain)
	}
	return link, nil
}

// sitePackages reads which packages the site has enabled, with their
// schema versions, from the site itself (WordPress: active plugins and
// theme; Drupal: its extensions), matched to the platform's packages.
func sitePackages(ctx context.Context, s *site) ([]entities.Package, error) {
	found, err := app.Discover(ctx, s.ex, s.p, s.env.Logf)
	if err != nil {
		return nil, err
	}
	enabled := map[string]string{} // type/name -> schema version
	switch s.p.Type {
	case app.WordPress:
		st, err := app.ReadWordPressStatus(ctx, s.ex, s.p, s.c.Site.Domain, s.url(), s.c.System.WebUser, s.env.Logf)
		if err != nil {
			return nil, err
		}
		enabled["core/wordpress"] = st.DBVersion
		for _, pl := range st.ActivePlugins {
			// "akismet/akismet.php" or "hello.php": the plugin's directory or file name.
			name := strings.TrimSuffix(strings.SplitN(pl, "/", 2)[0], ".php")
			enabled["plugin/"+name] = ""
		}
		enabled["theme/"+st.Stylesheet] = ""
		enabled["theme/"+st.Template] = ""
	default:
		st, err := app.ReadDrupalStatus(ctx, s.ex, s.p, s.c.Site.Domain, s.url(), s.c.System.WebUser, s.env.Logf)
		if err != nil {
			return nil, err
		}
		enabled["core/drupal"] = ""
		for _, e := range st.Extensions {
			if e.Enabled {
				enabled[e.Type+"/"+e.Name] = e.Schema
			}
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
