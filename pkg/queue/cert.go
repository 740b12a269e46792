package queue

import (
	"time"
)

// The cert queue renews the ACME certificates of sites.
//
// A certificate's row (the certificates table) says when it is due:
// renew_after, set by the back end when the certificate is installed (30
// days before expiry by default, acme_renew_days), or after a failed
// attempt by CertRetryDelay. Each run of the queue takes the due
// certificates, earliest first, and queues a site.cert task for each: at
// most ItemsPerRun(certificates, interval, frequency), so that a day's
// renewals (frequency 24h) spread over the day's runs rather than hit the
// CA at once. A site.cert task gets a new certificate and installs it only
// once the CA issued it: a failed renewal keeps the current certificate,
// ends in error (so the dispatcher's notifiers hear of it) and is retried
// after CertRetryDelay. Certificates the administrator brought are not
// renewed; sites with HTTPS off are skipped; a site with HTTPS and no
// certificate row at all is due at once.
const (
	CertQueue    = "cert"
	TaskSiteCert = "site.cert"
)

// CertRetryDelay is how long after its n-th failure in a row a
// certificate is tried again: 1h, 2h, 4h, 8h, 16h, then daily.
func CertRetryDelay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 5 {
		return 24 * time.Hour
	}
	return time.Hour << (n - 1)
}
