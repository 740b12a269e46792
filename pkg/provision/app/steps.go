package app

import (
	"context"
	"fmt"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Bounds of the steps on installed sites.
const (
	CronTimeout   = 15 * time.Minute
	UpdateTimeout = time.Hour
)

// SiteStep says how to run a step on an installed site: its cron, its
// database updates.
type SiteStep struct {
	Domain string
	URL    string // the site's address; empty: http://DOMAIN
	User   string // run as this user (the web server user), so that the files the step makes are its own
	// DBType is the site's database type (mariadb, mysql, postgresql):
	// the PHP extension of its driver is checked before Drupal runs.
	// Empty: either driver will do.
	DBType string
	// Drush, when set, is the platform's drush (an absolute path), which
	// does the Drupal step instead of aegir's embedded PHP.
	Drush string
	// PHP is the php-cli command and its first arguments, e.g.
	// ["/usr/bin/php7.4"] for an old platform; empty: php.
	PHP []string
	Log Logf
}

// check validates the step's settings and returns the site's address.
func (o SiteStep) check() (string, error) {
	bad := func(err error) (string, error) {
		return "", provision.Errorf(provision.ErrInvalidContext, "check the site's record (aegir site show "+o.Domain+")", "%s: %v", o.Domain, err)
	}
	if err := checkDomains(o.Domain, nil); err != nil {
		return bad(err)
	}
	url, err := siteURL(o.Domain, o.URL)
	if err != nil {
		return bad(err)
	}
	if o.DBType != "" {
		if _, err := (DB{Type: o.DBType}).driver(); err != nil {
			return bad(err)
		}
	}
	if o.Drush != "" {
		if err := entities.ValidateAbsPath("drush", o.Drush); err != nil {
			return bad(err)
		}
	}
	if err := checkPHPCommand(o.PHP); err != nil {
		return bad(err)
	}
	return url, nil
}

// drush runs the platform's drush for the site: drush --root=DOCROOT
// --uri=URL --yes ARGS..., its output logged.
func (o SiteStep) drush(ctx context.Context, ex exec.Executor, p Platform, timeout time.Duration, what string, args ...string) error {
	url, err := o.check()
	if err != nil {
		return err
	}
	c := exec.Command{Name: o.Drush, Args: append([]string{"--root=" + p.Docroot, "--uri=" + url, "--yes"}, args...),
		Dir: p.Docroot, User: o.User, Timeout: timeout}
	return runDrush(ctx, ex, c, o.Log, provision.ErrCommand, what)
}

// DrupalCron runs a Drupal site's cron: drupal_cron_run() on Drupal 7,
// the cron service on 8+, through aegir's embedded PHP step as the web
// server user; with o.Drush, `drush cron` instead. Drupal's messages go
// to the log.
func DrupalCron(ctx context.Context, ex exec.Executor, p Platform, o SiteStep) error {
	if o.Drush != "" {
		if err := o.drush(ctx, ex, p, CronTimeout, "drush cron of "+o.Domain, "cron"); err != nil {
			return err
		}
		o.Log.log(provision.LevelInfo, "cron of %s ran (the platform's drush)", o.Domain)
		return nil
	}
	var out struct{ Seconds float64 }
	if err := siteStep(ctx, ex, p, Drupal, ScriptDrupalSite, o, CronTimeout, map[string]any{"op": "cron"}, &out); err != nil {
		return asTaskError(err, provision.ErrCommand, "cron of "+o.Domain)
	}
	o.Log.log(provision.LevelInfo, "cron of %s ran in %.2f s", o.Domain, out.Seconds)
	return nil
}

// Outcomes of a database update.
const (
	UpdateApplied = "applied"
	UpdateFailed  = "failed"
	UpdateSkipped = "skipped" // its dependencies are missing; Drupal goes on without it
	UpdateNotRun  = "not run" // an update before it failed
)

// Update is what became of one database update.
type Update struct {
	Kind     string `json:"kind"` // update (hook_update_N) or post_update (hook_post_update_NAME)
	Module   string `json:"module"`
	Name     string `json:"name"` // the update's number, or the post update's name
	Function string `json:"function"`
	Status   string `json:"status"`  // one of the Update* outcomes
	Message  string `json:"message"` // what the update returned, or why it failed
}

// UpdateDrupal runs a Drupal site's pending database updates, in one
// process, as update.php and drush updatedb do: Drupal 7 through its own
// update_batch(), 8+ its update hooks and then its post updates (see
// php/drupal-update.php). The site is in maintenance mode meanwhile and
// comes back as it was; its caches are rebuilt, with updates or without
// (a site moved to a new platform needs that too). Each update gets one
// line in the log. A failed update fails the step with Drupal's message;
// the updates applied before it stay recorded. With o.Drush it runs
// `drush updatedb` instead and reports no updates.
//
// Run it after a site moves to another platform (migrate) and after a
// backup from an older platform is restored.
func UpdateDrupal(ctx context.Context, ex exec.Executor, p Platform, o SiteStep) ([]Update, error) {
	if o.Drush != "" {
		o.Log.log(provision.LevelInfo, "running the database updates of %s (the platform's drush)", o.Domain)
		return nil, o.drush(ctx, ex, p, UpdateTimeout, "drush updatedb of "+o.Domain, "updatedb")
	}
	o.Log.log(provision.LevelInfo, "running the database updates of %s on Drupal %s", o.Domain, p.Version)
	var out struct {
		Updates []Update
		Seconds float64
	}
	if err := siteStep(ctx, ex, p, Drupal, ScriptDrupalUpdate, o, UpdateTimeout, nil, &out); err != nil {
		return nil, asTaskError(err, provision.ErrCommand, "database updates of "+o.Domain)
	}
	n := 0
	for _, u := range out.Updates {
		if u.Status == UpdateApplied {
			n++
		}
	}
	if len(out.Updates) > 0 {
		o.Log.log(provision.LevelInfo, "%s: %d of %d database updates applied in %.1f s", o.Domain, n, len(out.Updates), out.Seconds)
	}
	return out.Updates, nil
}

// WordPressUpgrade is what UpdateWordPress did: the database's
// db_version before and after, and the platform's WordPress version.
type WordPressUpgrade struct {
	From    int    `json:"from"`
	To      int    `json:"to"`
	Version string `json:"version"`
}

// UpdateWordPress brings a WordPress site's database up to the platform's
// WordPress with its own wp_upgrade(), as wp-admin/upgrade.php does. A
// database newer than the platform's WordPress is refused.
func UpdateWordPress(ctx context.Context, ex exec.Executor, p Platform, o SiteStep) (WordPressUpgrade, error) {
	var out WordPressUpgrade
	if err := siteStep(ctx, ex, p, WordPress, ScriptWordPressUpgrade, o, UpdateTimeout, nil, &out); err != nil {
		return out, asTaskError(err, provision.ErrCommand, "database upgrade of "+o.Domain)
	}
	return out, nil
}

// UpdateSite runs the database updates of a site on its platform, whatever
// the platform (Driver.UpdateDB): UpdateDrupal or UpdateWordPress.
func UpdateSite(ctx context.Context, ex exec.Executor, p Platform, o SiteStep) error {
	d, err := p.driver()
	if err != nil {
		return fmt.Errorf("database updates of %s: %w", o.Domain, err)
	}
	return d.UpdateDB(ctx, ex, p, o)
}
