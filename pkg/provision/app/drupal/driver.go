package drupal

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/backup"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() { app.Register(drupalDriver{}) }

// drupalDriver is the Driver of Drupal 7 to 11.
type drupalDriver struct{}

var _ app.Driver = drupalDriver{}

func (drupalDriver) Type() string { return entities.PlatformDrupal }

func (drupalDriver) Markers() []app.Marker {
	return []app.Marker{
		{File: "core/lib/Drupal.php", Docroot: "", Version: drupal8Version},
		{File: "web/core/lib/Drupal.php", Docroot: "web", Version: drupal8Version},
		{File: "docroot/core/lib/Drupal.php", Docroot: "docroot", Version: drupal8Version},
		{File: "includes/bootstrap.inc", Docroot: "", Version: drupal7Version},
		{File: "web/includes/bootstrap.inc", Docroot: "web", Version: drupal7Version},
		{File: "docroot/includes/bootstrap.inc", Docroot: "docroot", Version: drupal7Version},
	}
}

func (drupalDriver) Describe() (string, string) {
	return "Drupal (core/lib/Drupal.php, includes/bootstrap.inc, or the same under web/ or docroot/)",
		"Drupal's index.php (or the Composer project above web/)"
}

// Inspect finds the platform's own drush, vendor/bin/drush.
func (drupalDriver) Inspect(ctx context.Context, ex exec.Executor, p *app.Platform) {
	drush := path.Join(p.Root, "vendor/bin/drush")
	if _, err := ex.Stat(ctx, drush); err == nil {
		p.Drush = drush
	}
}

// SitesDir is DOCROOT/sites.
func (drupalDriver) SitesDir(p app.Platform) string { return path.Join(p.Docroot, "sites") }

// PreparePlatform moves out the sites/*/settings.php.aegir-orig that an
// older aegir kept in the docroot.
func (drupalDriver) PreparePlatform(ctx context.Context, ex exec.Executor, p app.Platform, keep string, log app.Logf) error {
	var copies []app.LegacyCopy
	if dirs, err := ex.ReadDir(ctx, p.SitesDir()); err == nil {
		for _, d := range dirs {
			if d.IsDir() {
				copies = append(copies, app.LegacyCopy{Path: path.Join(p.SitesDir(), d.Name(), "settings.php.aegir-orig"), Name: d.Name() + "-settings.php"})
			}
		}
	}
	return app.MoveOutLegacyCopies(ctx, ex, p, keep, copies, log)
}

func (drupalDriver) FindSites(ctx context.Context, ex exec.Executor, p app.Platform, runAs string, log app.Logf) ([]app.FoundSite, error) {
	return findSites(ctx, ex, p, runAs, log)
}

func (drupalDriver) Discover(ctx context.Context, ex exec.Executor, p app.Platform, log app.Logf) ([]app.Package, error) {
	files, err := app.ScanFiles(ctx, ex, p, func() ([]app.SrcFile, error) { return scanLocal(p) }, remoteScan(p), log)
	if err != nil {
		return nil, err
	}
	return parse(p, files), nil
}

// WriteSettings writes sites/DOMAIN/settings.php and makes the site's
// files directories.
func (drupalDriver) WriteSettings(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (bool, error) {
	changed, err := WriteSettings(ctx, ex, p, Settings{Domain: s.Domain, Aliases: s.Aliases, DB: s.DB}, s.Owner)
	if err != nil {
		return changed, err
	}
	skipped, err := PrepareSite(ctx, ex, p, s.Domain, s.Owner)
	for _, d := range skipped {
		s.Log.Printf(provision.LevelWarning, "%s on %s is a symbolic link: aegir leaves it, and what lies under it, as it is (no chown or chmod through a link); make sure %s may write where it points", d, ex.Host(), s.Owner.WebUser)
	}
	return changed, err
}

func (drupalDriver) Install(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) error {
	in := s.Install
	return Install(ctx, ex, p, InstallOptions{Domain: s.Domain, URL: s.URL, Profile: in.Profile, Locale: in.Locale,
		SiteName: in.Title, SiteMail: in.SiteMail, AdminName: in.AdminUser, AdminMail: in.AdminEmail,
		DB: s.DB, User: s.Owner.WebUser, Drush: s.Drush, Log: s.Log})
}

// RemoveSite removes the whole DOCROOT/sites/DOMAIN directory.
func (drupalDriver) RemoveSite(ctx context.Context, ex exec.Executor, p app.Platform, domain string) error {
	return ex.RemoveAll(ctx, p.SiteDir(domain))
}

// LoginLink makes Drupal's one-time login link for user 1: through the
// platform's drush when it has one configured, else aegir's own PHP
// step.
func (drupalDriver) LoginLink(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (string, error) {
	if s.Drush == "" {
		return LoginLink(ctx, ex, p, s.Domain, s.URL, s.Owner.WebUser, s.Log)
	}
	// drush 8 (Drupal 7) calls it user-login; later drush user:login.
	verb := "user:login"
	if p.Major == 7 {
		verb = "user-login"
	}
	res, err := ex.Run(ctx, exec.Command{Name: s.Drush, Args: []string{"--root=" + p.Docroot, "--uri=" + s.URL, verb, "--no-browser"},
		Dir: p.Docroot, User: s.Owner.WebUser})
	if err != nil {
		return "", err
	}
	link := strings.TrimSpace(string(res.Stdout))
	if !strings.HasPrefix(link, "http") {
		return "", provision.Errorf(provision.ErrCommand, "run the same drush command by hand to see why", "drush gave no login link for %s", s.Domain)
	}
	return link, nil
}

// EnabledPackages are core and the site's enabled extensions, with their
// schema versions.
func (drupalDriver) EnabledPackages(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (map[string]string, error) {
	st, err := ReadStatus(ctx, ex, p, s.Domain, s.URL, s.Owner.WebUser, s.Log)
	if err != nil {
		return nil, err
	}
	enabled := map[string]string{"core/drupal": ""}
	for _, e := range st.Extensions {
		if e.Enabled {
			enabled[e.Type+"/"+e.Name] = e.Schema
		}
	}
	return enabled, nil
}

// Cron runs Drupal's own cron through aegir's PHP step as the web server
// user (drupal_cron_run(); 8+ the cron service), or the platform's drush
// when one is configured. Not through the site's URL: that needs the cron
// key from the database, fails for a disabled site (the web server
// answers its "disabled" page) and runs under the web server's PHP time
// limit, and when PHP itself fails (a missing extension, the database
// refusing) the URL way fails too, with less to say.
func (drupalDriver) Cron(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) error {
	return Cron(ctx, ex, p, s.Step())
}

func (drupalDriver) UpdateDB(ctx context.Context, ex exec.Executor, p app.Platform, o app.SiteStep) error {
	_, err := UpdateDB(ctx, ex, p, o)
	return err
}

// Check makes sure the site's settings parse, and that the platform's
// drush bootstraps the site when it has one.
func (drupalDriver) Check(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) error {
	settings := path.Join(p.SiteDir(s.Domain), "settings.php")
	if _, err := ex.Run(ctx, exec.Command{Name: "php", Args: []string{"-l", settings}, Timeout: time.Minute}); err != nil {
		return &provision.Error{Code: provision.ErrPlatform, Msg: "the settings of " + s.Domain + " do not parse", Err: err, Hint: "this is a bug in aegir; report it with the task log"}
	}
	if s.Drush != "" {
		c := exec.Command{Name: s.Drush, Args: []string{"--root=" + p.Docroot, "--uri=" + s.URL, "status"},
			Dir: p.Docroot, User: s.Owner.WebUser, Timeout: 2 * time.Minute}
		if _, err := ex.Run(ctx, c); err != nil {
			return &provision.Error{Code: provision.ErrCommand, Msg: "drush cannot bootstrap " + s.Domain + " at its new place", Err: err,
				Hint: "run the same drush status by hand to see why; the site stays where it was"}
		}
	}
	return nil
}

// SettingsFiles is the site's settings.php.
func (drupalDriver) SettingsFiles(p app.Platform, s app.Site) []string {
	return []string{path.Join(p.SiteDir(s.Domain), "settings.php")}
}

// BackupParts is the site's directory, DOCROOT/sites/DOMAIN
// (settings.php, files/, private/, ...), as site/.
func (drupalDriver) BackupParts(p app.Platform, domain string) []backup.Part {
	return []backup.Part{{Name: "site", Path: p.SiteDir(domain), Dir: true}}
}

// BackupMembers: the web server writes the site's public and private
// files; its settings are site/settings.php.
func (drupalDriver) BackupMembers() ([]string, string) {
	return []string{"site/files", "site/private"}, "site/settings.php"
}

// Readdress does nothing: Drupal keeps no address of its own in its
// database.
func (drupalDriver) Readdress(context.Context, db.Service, app.Site, app.Address) error { return nil }

func (drupalDriver) StatsQueries(p app.Platform, since int64) map[string]string {
	if p.Major == 7 {
		return map[string]string{
			"users":        `SELECT COUNT(*) FROM users WHERE uid > 0`,
			"active_users": fmt.Sprintf(`SELECT COUNT(*) FROM users WHERE uid > 0 AND access >= %d`, since),
			"posts":        `SELECT COUNT(*) FROM node WHERE status = 1`,
			"comments":     `SELECT COUNT(*) FROM comment WHERE status = 1`,
		}
	}
	return map[string]string{
		"users":        `SELECT COUNT(*) FROM users_field_data WHERE uid > 0`,
		"active_users": fmt.Sprintf(`SELECT COUNT(*) FROM users_field_data WHERE uid > 0 AND access >= %d`, since),
		"posts":        `SELECT COUNT(*) FROM node_field_data WHERE status = 1`,
		"comments":     `SELECT COUNT(*) FROM comment_field_data WHERE status = 1`,
	}
}

// PlatformAliases is false: a Drupal site's aliases are in its own
// settings.php.
func (drupalDriver) PlatformAliases() bool { return false }
