package drupal

import (
	"context"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// drush runs the platform's drush for the site: drush --root=DOCROOT
// --uri=URL --yes ARGS..., its output logged.
func drush(ctx context.Context, ex exec.Executor, p app.Platform, o app.SiteStep, timeout time.Duration, what string, args ...string) error {
	url, err := o.Check()
	if err != nil {
		return err
	}
	c := exec.Command{Name: o.Drush, Args: append([]string{"--root=" + p.Docroot, "--uri=" + url, "--yes"}, args...),
		Dir: p.Docroot, User: o.User, Timeout: timeout}
	return runDrush(ctx, ex, c, o.Log, provision.ErrCommand, what)
}

// Cron runs a Drupal site's cron: drupal_cron_run() on Drupal 7,
// the cron service on 8+, through aegir's embedded PHP step as the web
// server user; with o.Drush, `drush cron` instead. Drupal's messages go
// to the log.
func Cron(ctx context.Context, ex exec.Executor, p app.Platform, o app.SiteStep) error {
	if o.Drush != "" {
		if err := drush(ctx, ex, p, o, app.CronTimeout, "drush cron of "+o.Domain, "cron"); err != nil {
			return err
		}
		o.Log.Printf(provision.LevelInfo, "cron of %s ran (the platform's drush)", o.Domain)
		return nil
	}
	var out struct{ Seconds float64 }
	if err := scripts.RunStep(ctx, ex, p, ScriptSite, o, app.CronTimeout, map[string]any{"op": "cron"}, &out); err != nil {
		return app.AsTaskError(err, provision.ErrCommand, "cron of "+o.Domain)
	}
	o.Log.Printf(provision.LevelInfo, "cron of %s ran in %.2f s", o.Domain, out.Seconds)
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

// UpdateDB runs a Drupal site's pending database updates, in one
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
func UpdateDB(ctx context.Context, ex exec.Executor, p app.Platform, o app.SiteStep) ([]Update, error) {
	if o.Drush != "" {
		o.Log.Printf(provision.LevelInfo, "running the database updates of %s (the platform's drush)", o.Domain)
		return nil, drush(ctx, ex, p, o, app.UpdateTimeout, "drush updatedb of "+o.Domain, "updatedb")
	}
	o.Log.Printf(provision.LevelInfo, "running the database updates of %s on Drupal %s", o.Domain, p.Version)
	var out struct {
		Updates []Update
		Seconds float64
	}
	if err := scripts.RunStep(ctx, ex, p, ScriptUpdate, o, app.UpdateTimeout, nil, &out); err != nil {
		return nil, app.AsTaskError(err, provision.ErrCommand, "database updates of "+o.Domain)
	}
	n := 0
	for _, u := range out.Updates {
		if u.Status == UpdateApplied {
			n++
		}
	}
	if len(out.Updates) > 0 {
		o.Log.Printf(provision.LevelInfo, "%s: %d of %d database updates applied in %.1f s", o.Domain, n, len(out.Updates), out.Seconds)
	}
	return out.Updates, nil
}
