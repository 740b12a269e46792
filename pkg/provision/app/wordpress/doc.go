// Package wordpress is aegir's driver of WordPress (app.Driver). It
// readies a platform for aegir's sites (EnsurePlatform: the dispatcher and
// the login plugin), writes a site's configuration (WriteSiteConfig),
// installs it with WordPress's own installer (Install), makes one-time
// login links (LoginLink), reads its state (ReadStatus) and upgrades its
// database after a move (UpdateDB), through aegir's embedded PHP steps
// (php/wp-*.php) run by php-cli.
//
// # Layout of a platform
//
// A WordPress platform is one WordPress tree serving many sites. Its
// wp-config.php is aegir's dispatcher (RenderDispatcher): it takes the
// request's host name, finds ROOT/wp-content/aegir-sites/HOST.php (the
// site's own configuration, or a small file that loads it for an alias)
// and loads it, or answers 404 when there is none. Each site's uploads go
// to wp-content/uploads/DOMAIN.
package wordpress
