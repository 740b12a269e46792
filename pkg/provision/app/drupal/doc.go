// Package drupal is aegir's driver of Drupal 7 to 11 (app.Driver). It
// writes a site's settings (WriteSettings, PrepareSite), installs it
// (Install), makes one-time login links (LoginLink), reads its state
// (ReadStatus), runs its cron (Cron) and its database updates after a
// move to a newer platform (UpdateDB), through aegir's embedded PHP steps
// (php/drupal-*.php) run by php-cli as the web server user. Before Drupal
// runs, a script checks that PHP has the extensions Drupal needs and
// fails with the Debian packages to install when it has not. Drupal
// needs no drush: Install drives Drupal's installer the way drush does,
// Cron and UpdateDB run its cron and update.php's batch. With the
// platform's own drush (InstallOptions.Drush, app.SiteStep.Drush) they
// run drush instead; drush site:install gets no password and no database
// URL on its command line (drush reads the database from settings.php and
// makes up the admin password, which is kept out of the log).
//
// # Layout of a platform
//
// A Drupal platform is either a plain tree (ROOT/index.php, ROOT/core or
// ROOT/includes) or a Composer project whose docroot is ROOT/web or
// ROOT/docroot. Its sites live in DOCROOT/sites/DOMAIN; settings.php there
// holds the site's database and paths, and the site's files are
//
//	sites/DOMAIN/files                  public files (owned by the web server user)
//	sites/DOMAIN/private/files          private files
//	sites/DOMAIN/private/temp           temporary files
//	sites/DOMAIN/private/config/sync    configuration sync directory (8+)
//
// The web server must refuse requests for sites/*/private.
package drupal
