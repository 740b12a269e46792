package tasks

import (
	"context"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/engine"
)

func init() {
	engine.Register("site.updatedb", siteUpdateDB)
}

// step says how the application's own steps (cron, database updates) run
// for the site: as whoever runs its PHP (the web server's user, or an
// isolated site's own: owner), through the platform's drush when one is
// configured, else through aegir's embedded PHP with the site's php-cli
// (phpCLI: the extra option php_cli, "/usr/bin/php7.4" or with
// arguments "php -d memory_limit=1G"; else that of its PHP version).
func (s *site) step() app.SiteStep {
	return app.SiteStep{Domain: s.c.Site.Domain, URL: s.url(), User: s.owner().WebUser, DBType: s.c.Site.DBServer.Type,
		Drush: s.c.Site.Platform.Drush, PHP: s.phpCLI(), Log: s.env.Logf}
}

// updateDatabase runs the site's database updates on its platform, as
// after a move to a newer one: Drupal's pending updates (drush updatedb
// with the platform's drush, else aegir's built-in updater, one log line
// per update), WordPress's wp_upgrade(). A failed update is the error,
// with Drupal's message.
func (s *site) updateDatabase(ctx context.Context) error {
	return app.UpdateSite(ctx, s.ex, s.p, s.step())
}

// siteUpdateDB runs a site's pending database updates (site.updatedb).
func siteUpdateDB(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	if err := s.updateDatabase(ctx); err != nil {
		return nil, err
	}
	ch := &provision.Changes{Site: &provision.SiteChanges{}}
	recordPackages(ctx, s, ch.Site)
	return ch, nil
}
