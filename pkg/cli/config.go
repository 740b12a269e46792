package cli

import (
	"time"

	"github.com/spf13/viper"
)

// setDefaults sets every configuration key's default. docs/configuration.md
// lists them; `aegir init` writes them, commented, into aegir.yaml.
func setDefaults(v *viper.Viper) {
	v.SetDefault("format", "table")
	v.SetDefault("workers", 2)
	v.SetDefault("lease", 2*time.Minute)
	v.SetDefault("web_user", "www-data")
	v.SetDefault("web_group", "www-data")
	v.SetDefault("https", "off")
	v.SetDefault("acme_directory", "production")
	v.SetDefault("acme_email", "")
	v.SetDefault("acme_ca_file", "")
	v.SetDefault("acme_renew_days", 30)
	v.SetDefault("site.profile", "standard")
	v.SetDefault("site.language", "en")
	v.SetDefault("queue.interval", time.Minute)
	v.SetDefault("queue.cron.enabled", true)
	v.SetDefault("queue.cron.frequency", time.Hour)
	v.SetDefault("queue.backup.enabled", false)
	v.SetDefault("queue.backup.frequency", 24*time.Hour)
	v.SetDefault("queue.stats.enabled", true)
	v.SetDefault("queue.stats.frequency", time.Hour)
	v.SetDefault("queue.cert.enabled", true)
	v.SetDefault("queue.cert.frequency", 24*time.Hour)
	v.SetDefault("backup.keep", 7)
	v.SetDefault("backup.max_age", 30*24*time.Hour)
	v.SetDefault("notify.command", "")
	v.SetDefault("notify.email.to", "")
	v.SetDefault("notify.email.from", "")
	v.SetDefault("notify.email.smtp", "localhost:25")
}

const defaultConfigFile = `# aegir configuration. Precedence: command-line flags > AEGIR_* environment
# variables (AEGIR_QUEUE_CRON_FREQUENCY for queue.cron.frequency) > this file >
# built-in defaults. Every key is listed in docs/configuration.md; uncomment to change.

# format: table            # default output format: table, json, yaml, csv
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
#   cert:   {enabled: true,  frequency: 24h}   # certificate renewals due, spread over this
# backup:
#   keep: 7                # backups kept per site by the backup queue's clean-up
#   max_age: 720h          # and none older than this
# notify:                  # when a task fails
#   command: ""            # run with the task as JSON on stdin
#   email: {to: "", from: "", smtp: "localhost:25"}
`
