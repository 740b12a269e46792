package entities

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Webhook events: what a webhook can be told of.
const (
	EventTaskFailed    = "task.failed"    // a task ended in error
	EventCertFailed    = "cert.failed"    // a certificate renewal failed
	EventCertExpiring  = "cert.expiring"  // a certificate has fewer than N days left
	EventBackupStale   = "backup.stale"   // a site's last backup is older than the backup schedule
	EventSiteUnhealthy = "site.unhealthy" // a site's health check failed
)

// WebhookEvents lists every event.
var WebhookEvents = []string{EventTaskFailed, EventCertFailed, EventCertExpiring, EventBackupStale, EventSiteUnhealthy}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // every attempt failed
)

// Webhook is a URL told of events: all of them, or (Client) those of one
// client's sites only. Its secret signs each delivery; it is kept in the
// 0600 state and never printed but once, when aegir makes it.
type Webhook struct {
	ID      int64     `json:"id" yaml:"id"`
	URL     string    `json:"url" yaml:"url"`
	Events  []string  `json:"events" yaml:"events"`
	Client  string    `json:"client" yaml:"client"`
	Created time.Time `json:"created" yaml:"created"`
	Secret  string    `json:"-" yaml:"-"`
}

// TableColumns are the default columns of aegir webhook list.
func (Webhook) TableColumns() []string { return []string{"id", "url", "events", "client", "created"} }

// Delivery is one event sent, or to be sent, to one webhook.
type Delivery struct {
	ID          int64      `json:"id" yaml:"id"`
	Webhook     int64      `json:"webhook" yaml:"webhook"`
	Event       string     `json:"event" yaml:"event"`
	Status      string     `json:"status" yaml:"status"`
	StatusCode  int        `json:"status_code" yaml:"status_code"` // the receiver's last answer; 0: none
	Attempts    int        `json:"attempts" yaml:"attempts"`
	Error       string     `json:"error" yaml:"error"` // why the last attempt failed
	Created     time.Time  `json:"created" yaml:"created"`
	LastAttempt *time.Time `json:"last_attempt" yaml:"last_attempt"`
	NextAttempt *time.Time `json:"next_attempt" yaml:"next_attempt"` // pending only
	Body        string     `json:"-" yaml:"-"`
}

// TableColumns are the default columns of aegir webhook log.
func (Delivery) TableColumns() []string {
	return []string{"created", "event", "status", "status_code", "attempts", "error"}
}

// Event is the JSON body of a webhook delivery: what happened, when, to
// what, and one line for people (Message). The keys that do not apply to
// the event are left out.
type Event struct {
	Event   string    `json:"event"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host,omitempty"` // the aegir master's host name
	Client  string    `json:"client,omitempty"`
	Site    string    `json:"site,omitempty"`
	Message string    `json:"message"`
	// Task is the task that failed (task.failed, cert.failed).
	Task *EventTask `json:"task,omitempty"`
	// Cert is the certificate (cert.expiring, cert.failed).
	Cert *EventCert `json:"cert,omitempty"`
	// Backup is the site's last backup and the schedule (backup.stale).
	Backup *EventBackup `json:"backup,omitempty"`
	// Health is the failed check (site.unhealthy).
	Health *SiteHealth `json:"health,omitempty"`
}

// EventTask is a task as an event tells of it.
type EventTask struct {
	ID         int64      `json:"id"`
	Type       string     `json:"type"`
	TargetKind string     `json:"target_kind"`
	Target     string     `json:"target"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	ErrorCode  string     `json:"error_code,omitempty"`
	Hint       string     `json:"hint,omitempty"`
	Finished   *time.Time `json:"finished,omitempty"`
}

// EventCert is a certificate as an event tells of it.
type EventCert struct {
	Names    []string   `json:"names"`
	NotAfter *time.Time `json:"not_after,omitempty"`
	DaysLeft *int       `json:"days_left,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// EventBackup is a site's last backup against its schedule.
type EventBackup struct {
	LastBackup *time.Time `json:"last_backup"` // nil: never backed up
	Frequency  string     `json:"frequency"`   // the backup queue's
}

// ValidateWebhookURL checks a webhook's URL: absolute http or https with
// a host, no credentials (they would show in every list), no fragment, no
// spaces or control characters, at most 2000 characters.
func ValidateWebhookURL(field, s string) error {
	if s == "" {
		return Invalid(field, s, "must not be empty")
	}
	if len(s) > 2000 {
		return Invalid(field, s, "must be at most 2000 characters")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return Invalid(field, s, "must not contain spaces or control characters (percent-encode them)")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return Invalid(field, s, "must be a URL such as https://hooks.example.com/aegir")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Invalid(field, s, "must start with http:// or https://")
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return Invalid(field, s, "must name a host, as in https://hooks.example.com/aegir")
	}
	if u.User != nil {
		return Invalid(field, s, "must not hold a user or password: the webhook's secret signs each delivery")
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return Invalid(field, s, "must not have a #fragment (it is never sent)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Invalid(field, s, "must have a port between 1 and 65535")
		}
	}
	if h := u.Hostname(); net.ParseIP(h) == nil {
		if err := ValidateHost(field, h); err != nil {
			return Invalid(field, s, "must name a valid host name or IP address")
		}
	}
	return nil
}

// ParseEvents reads a webhook's events from the values of --events (each
// one or more names separated by commas): known names, each once, in the
// order of WebhookEvents.
func ParseEvents(field string, values []string) ([]string, error) {
	seen := map[string]bool{}
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			if e == "" {
				return nil, Invalid(field, v, "must list events separated by commas, none empty")
			}
			known := false
			for _, k := range WebhookEvents {
				known = known || k == e
			}
			if !known {
				return nil, Invalid(field, e, "must be one of "+strings.Join(WebhookEvents, ", "))
			}
			seen[e] = true
		}
	}
	out := []string{}
	for _, k := range WebhookEvents {
		if seen[k] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, Invalid(field, "", "is required: one or more of "+strings.Join(WebhookEvents, ", "))
	}
	return out, nil
}
