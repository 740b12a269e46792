package wordpress

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/backup"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() { app.Register(wordPressDriver{}) }

// wordPressDriver is the Driver of WordPress: one tree serving many
// sites through aegir's dispatcher.
type wordPressDriver struct{}

var _ app.Driver = wordPressDriver{}

func (wordPressDriver) Type() string { return entities.PlatformWordPress }

func (wordPressDriver) Markers() []app.Marker {
	return []app.Marker{{File: "wp-includes/version.php", Version: wpVersion}}
}

func (wordPressDriver) Describe() (string, string) {
	return "WordPress (wp-includes/version.php)", "WordPress's wp-includes/"
}

func (wordPressDriver) Inspect(context.Context, exec.Executor, *app.Platform) {}

// SitesDir is ROOT/wp-content/aegir-sites.
func (wordPressDriver) SitesDir(p app.Platform) string { return path.Join(p.Root, SitesPath) }

// PreparePlatform puts aegir's dispatcher and login plugin in place
// (EnsurePlatform).
func (wordPressDriver) PreparePlatform(ctx context.Context, ex exec.Executor, p app.Platform, keep string, log app.Logf) error {
	_, err := EnsurePlatform(ctx, ex, p, keep, log)
	return err
}

func (wordPressDriver) FindSites(ctx context.Context, ex exec.Executor, p app.Platform, _ string, log app.Logf) ([]app.FoundSite, error) {
	return findSites(ctx, ex, p, log)
}

func (wordPressDriver) Discover(ctx context.Context, ex exec.Executor, p app.Platform, log app.Logf) ([]app.Package, error) {
	files, err := app.ScanFiles(ctx, ex, p, func() ([]app.SrcFile, error) { return scanLocal(p) }, []string{discoverScript}, log)
	if err != nil {
		return nil, err
	}
	return parse(p, files), nil
}

// WriteSettings puts the platform's dispatcher in place and writes the
// site's configuration and its aliases' files.
func (wordPressDriver) WriteSettings(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (bool, error) {
	if _, err := EnsurePlatform(ctx, ex, p, s.Keep, s.Log); err != nil {
		return false, err
	}
	return WriteSiteConfig(ctx, ex, p, SiteConfig{Domain: s.Domain, Aliases: s.Aliases, URL: s.URL, HTTPSURL: s.HTTPSURL, DB: s.DB}, s.Owner)
}

func (wordPressDriver) Install(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) error {
	in := s.Install
	_, err := Install(ctx, ex, p, InstallOptions{Domain: s.Domain, URL: s.URL,
		Title: in.Title, AdminUser: in.AdminUser, AdminEmail: in.AdminEmail, User: s.Owner.WebUser, Log: s.Log})
	return err
}

func (wordPressDriver) RemoveSite(ctx context.Context, ex exec.Executor, p app.Platform, domain string) error {
	return removeSite(ctx, ex, p, domain)
}

// LoginLink makes a link of aegir's login plugin for the first
// administrator (LoginLink).
func (wordPressDriver) LoginLink(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (string, error) {
	return LoginLink(ctx, ex, p, s.Domain, s.URL, "", s.Owner.WebUser, s.Log)
}

// EnabledPackages are core (with its database version), the active
// plugins and the theme.
func (wordPressDriver) EnabledPackages(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (map[string]string, error) {
	st, err := ReadStatus(ctx, ex, p, s.Domain, s.URL, s.Owner.WebUser, s.Log)
	if err != nil {
		return nil, err
	}
	return enabledOf(st), nil
}

// enabledOf are the packages status st says are enabled (EnabledPackages).
func enabledOf(st Status) map[string]string {
	enabled := map[string]string{"core/wordpress": st.DBVersion}
	for _, pl := range st.ActivePlugins {
		// "akismet/akismet.php" or "hello.php": the plugin's directory or file name.
		name := strings.TrimSuffix(strings.SplitN(pl, "/", 2)[0], ".php")
		enabled["plugin/"+name] = ""
	}
	enabled["theme/"+st.Stylesheet] = ""
	enabled["theme/"+st.Template] = ""
	return enabled
}

// Cron requests wp-cron.php through the site's address, as a visitor's
// request starts it.
func (wordPressDriver) Cron(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) error {
	code, err := s.Visit(ctx, "/wp-cron.php?doing_wp_cron")
	if err != nil {
		return err
	}
	if code >= 400 {
		return provision.Errorf(provision.ErrCommand, "open the site in a browser and read the web server's error log",
			"cron of %s: the site answered HTTP %d", s.Domain, code)
	}
	s.Log.Printf(provision.LevelInfo, "cron of %s ran (HTTP %d)", s.Domain, code)
	return nil
}

func (wordPressDriver) UpdateDB(ctx context.Context, ex exec.Executor, p app.Platform, o app.SiteStep) error {
	_, err := UpdateDB(ctx, ex, p, o)
	return err
}

// wpDBVersion is where wp-includes/version.php says the database schema
// its WordPress wants.
var wpDBVersion = regexp.MustCompile(`\$wp_db_version\s*=\s*(\d+)\s*;`)

// DBUpToDate compares the site's db_version option with the platform's
// $wp_db_version (app.DBUpToDater): equal, wp_upgrade() would do nothing.
// Anything it cannot read leaves the upgrade step to run and say why.
func (wordPressDriver) DBUpToDate(ctx context.Context, ex exec.Executor, svc db.Service, p app.Platform, s app.Site) (bool, string) {
	b, err := ex.ReadFile(ctx, path.Join(p.Root, "wp-includes", "version.php"))
	if err != nil {
		return false, ""
	}
	m := wpDBVersion.FindSubmatch(b)
	if m == nil {
		return false, ""
	}
	conn, err := svc.Open(ctx, s.DB.Name)
	if err != nil {
		return false, ""
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, "SELECT option_value FROM wp_options WHERE option_name = 'db_version'")
	if err != nil {
		return false, ""
	}
	defer rows.Close()
	var have string
	if !rows.Next() || rows.Scan(&have) != nil || rows.Err() != nil {
		return false, ""
	}
	if strings.TrimSpace(have) != string(m[1]) {
		return false, ""
	}
	return true, fmt.Sprintf("db_version %s, WordPress %s", m[1], p.Version)
}

// Check loads WordPress for the site with its database.
func (d wordPressDriver) Check(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) error {
	_, err := d.CheckPackages(ctx, ex, p, s)
	return err
}

// CheckPackages is Check, and gives the enabled packages its status read
// has (app.PackageChecker): one load of WordPress for both.
func (wordPressDriver) CheckPackages(ctx context.Context, ex exec.Executor, p app.Platform, s app.Site) (map[string]string, error) {
	st, err := ReadStatus(ctx, ex, p, s.Domain, s.URL, s.Owner.WebUser, s.Log)
	if err != nil {
		return nil, err
	}
	s.Log.Printf(provision.LevelInfo, "WordPress %s runs %s from database %s (version %s, theme %s, %d active plugins)",
		st.Version, s.Domain, s.DB.Name, st.DBVersion, st.Stylesheet, len(st.ActivePlugins))
	return enabledOf(st), nil
}

// SettingsFiles are the site's configuration, its aliases' files that
// load it, and the platform's dispatcher (wp-config.php) that loads them.
func (wordPressDriver) SettingsFiles(p app.Platform, s app.Site) []string {
	files := []string{siteFile(p, s.Domain)}
	for _, a := range s.Aliases {
		files = append(files, siteFile(p, a))
	}
	return append(files, path.Join(p.Root, "wp-config.php"))
}

// BackupParts are the site's uploads, ROOT/wp-content/uploads/DOMAIN, as
// uploads/, and its configuration, ROOT/wp-content/aegir-sites/DOMAIN.php,
// as settings.php. Its aliases' files are made again from its record.
func (wordPressDriver) BackupParts(p app.Platform, domain string) []backup.Part {
	return []backup.Part{
		{Name: "uploads", Path: UploadsDir(p, domain), Dir: true},
		{Name: "settings.php", Path: path.Join(p.SitesDir(), domain+".php")},
	}
}

// BackupMembers: the web server writes the site's uploads; its
// configuration is settings.php.
func (wordPressDriver) BackupMembers() ([]string, string) { return []string{"uploads"}, "settings.php" }

// Readdress rewrites the site's old address in its posts, the uploads'
// addresses first (their path holds the domain too), and in its home and
// siteurl options.
func (wordPressDriver) Readdress(ctx context.Context, svc db.Service, s app.Site, from app.Address) error {
	conn, err := svc.Open(ctx, s.DB.Name)
	if err != nil {
		return err
	}
	defer conn.Close()
	uploads := func(url, domain string) string { return url + "/wp-content/uploads/" + domain + "/" }
	var rows int64
	for _, p := range [][2]string{{uploads(from.URL, from.Domain), uploads(s.URL, s.Domain)}, {from.URL + "/", s.URL + "/"}} {
		n, err := conn.Exec(ctx, "UPDATE wp_posts SET post_content = REPLACE(post_content, ?, ?), guid = REPLACE(guid, ?, ?)", p[0], p[1], p[0], p[1])
		if err != nil {
			return fmt.Errorf("rewrite the address of %s in its posts: %w", s.Domain, err)
		}
		rows += n
	}
	if _, err := conn.Exec(ctx, "UPDATE wp_options SET option_value = ? WHERE option_name IN ('home', 'siteurl')", s.URL); err != nil {
		return fmt.Errorf("write the address of %s in its options: %w", s.Domain, err)
	}
	s.Log.Printf(provision.LevelInfo, "address %s rewritten to %s (%d rows of posts)", from.URL, s.URL, rows)
	return nil
}

// StatsQueries: WordPress records no last visit, so active users are
// those with posts or comments in the last 30 days.
func (wordPressDriver) StatsQueries(_ app.Platform, since int64) map[string]string {
	return map[string]string{
		"users":        `SELECT COUNT(*) FROM wp_users`,
		"active_users": fmt.Sprintf(`SELECT COUNT(DISTINCT post_author) FROM wp_posts WHERE post_date_gmt >= FROM_UNIXTIME(%d)`, since),
		"posts":        `SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post' AND post_status = 'publish'`,
		"comments":     `SELECT COUNT(*) FROM wp_comments WHERE comment_approved = '1'`,
	}
}

// PlatformAliases is true: each alias is a file in the platform's sites
// directory.
func (wordPressDriver) PlatformAliases() bool { return true }
