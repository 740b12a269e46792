package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
	"github.com/aegir-project/aegir/pkg/provision/priv"
	"github.com/aegir-project/aegir/pkg/provision/web"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// setDefaults sets every configuration key's default. docs/configuration.md
// lists them; `aegir init` writes them, commented, into aegir.yaml.
func setDefaults(v *viper.Viper) {
	v.SetDefault("state", "")
	v.SetDefault("state_password_file", "")
	v.SetDefault("master", "")
	v.SetDefault("format", "table")
	v.SetDefault("no_color", false)
	v.SetDefault("workers", 2)
	v.SetDefault("lease", 2*time.Minute)
	v.SetDefault("web_user", "www-data")
	v.SetDefault("web_group", "www-data")
	v.SetDefault("https", entities.HTTPSOff)
	v.SetDefault("isolation", entities.IsolationShared)
	v.SetDefault("php_fpm.pool_dir", fpm.DefaultPoolDir)
	v.SetDefault("php_fpm.test_cmd", fpm.DefaultTestCmd)
	v.SetDefault("php_fpm.reload_cmd", fpm.DefaultReloadCmd)
	v.SetDefault("php_fpm.runtime_dir", fpm.DefaultRuntimeDir)
	v.SetDefault("php_fpm.disable_functions", fpm.DefaultDisableFunctions)
	v.SetDefault("php_fpm.logrotate_file", fpm.DefaultLogrotateFile)
	v.SetDefault("php_fpm.helper", priv.DefaultPath)
	v.SetDefault("acme_directory", "production")
	v.SetDefault("acme_email", "")
	v.SetDefault("acme_ca_file", "")
	v.SetDefault("acme_renew_days", 30)
	v.SetDefault("platform.locked", false)
	v.SetDefault("site.profile", "standard")
	v.SetDefault("site.language", "en")
	v.SetDefault("queue.interval", time.Minute)
	v.SetDefault("queue.cron.enabled", true)
	v.SetDefault("queue.cron.frequency", time.Hour)
	v.SetDefault("queue.backup.enabled", false)
	v.SetDefault("queue.backup.frequency", 24*time.Hour)
	v.SetDefault("queue.stats.enabled", true)
	v.SetDefault("queue.stats.frequency", time.Hour)
	v.SetDefault("queue.health.enabled", true)
	v.SetDefault("queue.health.frequency", time.Hour)
	v.SetDefault("queue.cert.enabled", true)
	v.SetDefault("queue.cert.frequency", 24*time.Hour)
	v.SetDefault("backup.keep", 7)
	v.SetDefault("backup.max_age", 30*24*time.Hour)
	v.SetDefault("notify.command", "")
	v.SetDefault("notify.email.to", "")
	v.SetDefault("notify.email.from", "")
	v.SetDefault("notify.email.smtp", "localhost:25")
	v.SetDefault("webhooks.cert_expiring_days", 14)
	v.SetDefault("webhooks.keep", 30*24*time.Hour)
	v.SetDefault("tasks.keep", queue.DefaultKeepTasks)
	v.SetDefault("audit.keep", queue.DefaultKeepAudit)
}

// keepForeverKeys are the duration keys that also take 0 or forever:
// keep everything (keepSetting).
var keepForeverKeys = map[string]bool{"tasks.keep": true, "audit.keep": true}

// keepSetting is the dispatcher's setting for a key of keepForeverKeys:
// its duration, or -1 (never delete) for 0 or forever, since the
// dispatcher's 0 is its default.
func (a *App) keepSetting(key string) time.Duration {
	if d := a.cfg.GetDuration(key); d > 0 {
		return d
	}
	return -1
}

// checkConfig checks the configuration read from the file and the
// environment against the keys setDefaults knows (the defaults of known,
// taken before the file was read): an unknown key in the file is a warning
// naming the file and the key, and an error when it is a letter or two off
// a known one (a typo); a value of the wrong type, or one that
// breaks its key's rule, is an error naming where it was set.
func (a *App) checkConfig(known []string) error {
	v := a.cfg
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		if !isKnown[k] && v.InConfig(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	sections := append([]string{}, known...)
	sort.Strings(sections)
	for _, k := range unknown {
		for _, kk := range sections {
			if strings.HasPrefix(kk, k+".") { // site: standard, for site.profile
				return a.configInvalid(k, fmt.Sprint(v.Get(k)), "must be a section of keys, like "+kk)
			}
		}
		if n := entities.Nearest(k, known, 2); n != "" && len(k) >= 3 {
			// A typo of a known key (stat: for state:) is an error: ignored,
			// the command would run on the default (a state, a master) the
			// user meant to change.
			return &Error{Code: ExitUsage, Err: fmt.Errorf("unknown key %q in %s: did you mean %q?", k, v.ConfigFileUsed(), n),
				Hint: "rename it to " + n + " (docs/configuration.md lists the keys)"}
		}
		a.warnf("%s: unknown key %q is ignored (docs/configuration.md lists the keys)", v.ConfigFileUsed(), k)
	}
	for _, k := range known {
		if a.configSource(k) == "" {
			continue // the default
		}
		if err := checkConfigValue(k, v.Get(k), defaultOf(k)); err != nil {
			val := fmt.Sprint(v.Get(k))
			if store.IsPostgres(val) {
				val = store.RedactDSN(val) // the state's DSN: its password is not shown
			}
			return a.configInvalid(k, val, err.Error())
		}
	}
	return nil
}

// defaultOf is key's default value (its type is the key's type).
func defaultOf(key string) any {
	d := viper.New()
	setDefaults(d)
	return d.Get(key)
}

// checkConfigValue checks one value against its key's type (that of def,
// its default) and rule, and returns the rule it breaks.
func checkConfigValue(key string, val, def any) error {
	s := fmt.Sprint(val)
	switch def.(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		switch {
		case keepForeverKeys[key] && (s == "0" || s == "forever"):
		case keepForeverKeys[key] && (err != nil || d <= 0):
			return fmt.Errorf("must be a positive duration such as %s, or 0 or forever to keep everything", strings.TrimSuffix(def.(time.Duration).String(), "0m0s"))
		case err != nil || d <= 0:
			return fmt.Errorf("must be a positive duration such as 90s, 30m or 24h")
		case key == "queue.interval" && d < time.Minute:
			return fmt.Errorf("must be at least 1m (cron runs each minute)")
		case key == "lease" && d < 10*time.Second:
			// Renewed every third of it: shorter, one slow write to the
			// state makes a running task look dead to another dispatcher.
			return fmt.Errorf("must be at least 10s")
		}
	case int:
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 0:
			return fmt.Errorf("must be a whole number, 0 or more")
		case n == 0 && (key == "workers" || key == "acme_renew_days"):
			return fmt.Errorf("must be 1 or more")
		case key == "workers" && n > maxWorkers:
			return fmt.Errorf("must be at most %d", maxWorkers)
		}
	case bool:
		if _, err := strconv.ParseBool(s); err != nil {
			return fmt.Errorf("must be true or false")
		}
	}
	var err error
	switch key {
	case "format":
		err = entities.ValidateOneOf(key, s, output.Formats...)
	case "https":
		err = entities.ValidateOneOf(key, s, entities.HTTPSModes...)
	case "isolation":
		err = entities.ValidateOneOf(key, s, entities.Isolations...)
	case "php_fpm.pool_dir":
		err = fpm.CheckConfig(provision.FPMSpec{PoolDir: s})
	case "php_fpm.runtime_dir":
		err = fpm.CheckConfig(provision.FPMSpec{RuntimeDir: s})
	case "php_fpm.logrotate_file":
		err = fpm.CheckConfig(provision.FPMSpec{LogrotateFile: s})
	case "php_fpm.helper":
		err = fpm.CheckConfig(provision.FPMSpec{Helper: s})
	case "php_fpm.test_cmd", "php_fpm.reload_cmd":
		err = fpm.CheckConfig(provision.FPMSpec{TestCmd: s})
	case "php_fpm.disable_functions":
		err = fpm.CheckConfig(provision.FPMSpec{DisableFunctions: s})
	case "site.profile":
		err = entities.ValidateProfile(key, s)
	case "site.language":
		err = entities.ValidateLanguage(key, s)
	case "web_user":
		err = web.CheckUser(key, s) // the web back end's rule
	case "web_group":
		err = entities.ValidateSystemName(key, s, "group") // the back end's rule (provision.Job.Check)
	case "acme_directory":
		if _, derr := acme.DirectoryURL(s); derr != nil { // the ACME client's rule
			err = fmt.Errorf("must be an https:// URL, or production or staging")
		}
	case "acme_email", "notify.email.to", "notify.email.from":
		err = entities.ValidateEmail(key, s)
	case "state":
		err = checkState(s)
	case "master":
		if s != "" {
			err = entities.ValidateName(key, s)
		}
	case "acme_ca_file", "state_password_file":
		if s != "" {
			err = readableFile(key, s)
		}
	case "notify.email.smtp":
		err = checkHostPort(key, s)
	}
	var ie *entities.InvalidError
	if errors.As(err, &ie) {
		return fmt.Errorf("%s", ie.Rule)
	}
	return err
}

// checkHostPort checks a HOST:PORT address (an SMTP server).
func checkHostPort(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || entities.ValidateHost(field, host) != nil {
		return entities.Invalid(field, s, "must be HOST:PORT, like localhost:25")
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return entities.Invalid(field, s, "must be HOST:PORT, like localhost:25")
	}
	return entities.ValidatePort(field, n)
}

// configEnv is the environment variable of a configuration key.
func configEnv(key string) string {
	return "AEGIR_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// configSource says where key's value was set: its environment variable,
// the config file, or "" (its default).
func (a *App) configSource(key string) string {
	if os.Getenv(configEnv(key)) != "" { // viper ignores an empty one
		return "environment variable " + configEnv(key)
	}
	if a.cfg.InConfig(key) {
		return a.cfg.ConfigFileUsed()
	}
	return ""
}

// configInvalid is the error for a configuration value that breaks rule:
// it names where the value was set (the file, or the environment), not a
// flag the user did not give.
func (a *App) configInvalid(key, value, rule string) error {
	src := a.configSource(key)
	if src == "" {
		src = "the default"
	}
	return &Error{Code: ExitUsage, Err: fmt.Errorf("%s: %w", src, entities.Invalid(key, value, rule)),
		Hint: "fix " + key + " in " + src + " (docs/configuration.md lists the keys and their values)"}
}

const defaultConfigFile = `# aegir configuration. Precedence: command-line flags > AEGIR_* environment
# variables (AEGIR_QUEUE_CRON_FREQUENCY for queue.cron.frequency) > this file >
# built-in defaults. Every key is listed in docs/configuration.md; uncomment to change.

# state: ""                # the state: "" is AEGIR_HOME/aegir.db (SQLite); postgres://USER@HOST/DB
#                          # for one several masters share (docs/masters.md), with no password in it
# state_password_file: ""  # the PostgreSQL password's file (mode 0600); else PGPASSWORD or ~/.pgpass
# format: table            # default output format: table, json, yaml, csv
# no_color: false          # never color the output (as --no-color)
# workers: 2               # parallel task workers of hosting dispatch / queued
# lease: 2m                # a running task's lease; a dispatcher that dies is noticed after it
# web_user: www-data       # the web server's system user on your servers
# web_group: www-data
# https: off               # default HTTPS mode of new sites: off, on, required
# acme_directory: production  # ACME CA: production or staging (Let's Encrypt), or a directory URL
# acme_email: ""           # the CA's contact for expiry notices (recommended)
# acme_ca_file: ""         # extra PEM roots to trust for the CA's own TLS (a private CA)
# acme_renew_days: 30      # renew certificates this many days before they expire
# site:
#   profile: standard      # default Drupal install profile
#   language: en
# queue:
#   interval: 1m           # how often cron runs hosting dispatch
#   cron:   {enabled: true,  frequency: 1h}    # every site's cron once per frequency
#   backup: {enabled: false, frequency: 24h}   # every site backed up once per frequency
#   stats:  {enabled: true,  frequency: 1h}    # site statistics
#   health: {enabled: true,  frequency: 1h}    # every site's health check (changes nothing)
#   cert:   {enabled: true,  frequency: 24h}   # certificate renewals due, spread over this
# backup:
#   keep: 7                # backups kept per site by the backup queue's clean-up
#   max_age: 720h          # and none older than this
# notify:                  # when a task fails
#   command: ""            # run with the task as JSON on stdin
#   email: {to: "", from: "", smtp: "localhost:25"}
# webhooks:                # aegir webhook add URL --events ...
#   cert_expiring_days: 14 # cert.expiring: fewer days left than this (0: never)
#   keep: 720h             # deliveries that ended are deleted after this
# tasks:
#   keep: 2160h            # finished tasks (and their logs) are deleted after this; 0 or forever: never
# audit:
#   keep: 8760h            # audit log entries are deleted after this; 0 or forever: never
`
