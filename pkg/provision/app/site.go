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
func (o SiteStep) Check() (string, error) {
	bad := func(err error) (string, error) {
		return "", provision.Errorf(provision.ErrInvalidContext, "check the site's record", "%s: %v", o.Domain, err).With(entities.Do("site.show", o.Domain))
	}
	if err := CheckDomains(o.Domain, nil); err != nil {
		return bad(err)
	}
	url, err := SiteURL(o.Domain, o.URL)
	if err != nil {
		return bad(err)
	}
	if o.DBType != "" {
		if _, err := (DB{Type: o.DBType}).PDODriver(); err != nil {
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

// UpdateSite runs the database updates of a site on its platform, whatever
// the platform (Driver.UpdateDB).
func UpdateSite(ctx context.Context, ex exec.Executor, p Platform, o SiteStep) error {
	d, err := p.findDriver()
	if err != nil {
		return fmt.Errorf("database updates of %s: %w", o.Domain, err)
	}
	return d.UpdateDB(ctx, ex, p, o)
}

// InstallTimeout bounds an application's installer.
const InstallTimeout = 10 * time.Minute

// StepTimeout bounds the smaller PHP steps (login link, status).
const StepTimeout = 2 * time.Minute

// CheckAccount checks a site's title and its admin account's name and
// email (site_title, site_admin_user and site_admin_email of the
// context). The command line holds a given email to the stricter
// entities.ValidateAccountEmail; the default, the client's, is only
// a plain address.
func CheckAccount(title, user, email string) error {
	if err := entities.ValidateTitle("site_title", title); err != nil {
		return err
	}
	if err := entities.ValidateAccountName("site_admin_user", user); err != nil {
		return err
	}
	return entities.ValidateEmail("site_admin_email", email)
}

// RunSiteStep checks the site's address and runs the PHP step code (of
// the script name, Scripts.Script) for it in the docroot, as o says, with
// the site's address, the platform's major version and the database
// driver in its input besides input.
func RunSiteStep(ctx context.Context, ex exec.Executor, p Platform, name string, code []byte, o SiteStep, timeout time.Duration, input map[string]any, out any) error {
	url, err := o.Check()
	if err != nil {
		return err
	}
	in := map[string]any{"url": url, "major": p.Major}
	if o.DBType != "" {
		in["db_driver"], _ = DB{Type: o.DBType}.PDODriver()
	}
	for k, v := range input {
		in[k] = v
	}
	return RunPHP(ctx, ex, name, code, in, PHPRun{Dir: p.Docroot, User: o.User, Timeout: timeout, Log: o.Log, PHP: o.PHP}, out)
}

// RemoveSite removes what the platform holds of one site
// (Driver.RemoveSite): for Drupal the whole DOCROOT/sites/DOMAIN
// directory; for WordPress the site's configuration, its aliases' files
// and its uploads. Absent files are no error. The caller takes a backup
// first.
func RemoveSite(ctx context.Context, ex exec.Executor, p Platform, domain string) error {
	if d, err := entities.NormalizeDomain("domain", domain); err != nil || d != domain {
		return fmt.Errorf("remove site: invalid domain %q", domain)
	}
	d, err := p.findDriver()
	if err != nil {
		return err
	}
	return d.RemoveSite(ctx, ex, p, domain)
}
