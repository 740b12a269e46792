package queue

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// Webhooks. An event (a task failed, a certificate close to expiry ...)
// becomes one delivery row per webhook that wants it (Store.RecordEvent):
// an insert, made where the event happens, that sends nothing. The
// dispatcher sends the deliveries (Deliver) beside the tasks it runs, never
// in a task's path, so that a receiver that is down or slow holds no task
// back. A delivery is a POST of the event's JSON with
//
//	Content-Type: application/json
//	X-Aegir-Event: task.failed
//	X-Aegir-Delivery: 42
//	X-Aegir-Timestamp: 1767312000          (Unix seconds)
//	X-Aegir-Signature: sha256=HEX          (HMAC-SHA256 of "TIMESTAMP.BODY" with the webhook's secret)
//
// Any 2xx answer delivers it; anything else (no answer within
// DeliveryTimeout, another status, a redirect) is tried again after
// DeliveryBackoff, up to DeliveryAttempts attempts in all.
const (
	HeaderEvent     = "X-Aegir-Event"
	HeaderDelivery  = "X-Aegir-Delivery"
	HeaderTimestamp = "X-Aegir-Timestamp"
	HeaderSignature = "X-Aegir-Signature"

	DeliveryAttempts = 10
	DeliveryTimeout  = 10 * time.Second

	// deliveryParallel is how many deliveries are sent at once.
	deliveryParallel = 4
	// DefaultCertExpiringDays is when cert.expiring is told: fewer days
	// left than this (config webhooks.cert_expiring_days).
	DefaultCertExpiringDays = 14
	// DefaultKeepDeliveries is how long a delivery that ended is kept
	// for webhook log (config webhooks.keep).
	DefaultKeepDeliveries = 30 * 24 * time.Hour
)

// DeliveryBackoff is how long after its n-th failed attempt a delivery is
// tried again: 30s, 1m, 2m, 4m ... doubling up to 6h, each ±10%.
func DeliveryBackoff(n int) time.Duration {
	d := 6 * time.Hour
	if n < 1 {
		n = 1
	}
	if n < 16 {
		d = min(d, 30*time.Second<<(n-1))
	}
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// Sign is the signature of a delivery: "sha256=" and the hex HMAC-SHA256,
// keyed with the webhook's secret, of the timestamp (Unix seconds, as in
// the timestamp header), a dot and the body.
func Sign(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature header against the secret, in
// constant time: what a receiver written in Go does.
func Verify(secret, timestamp, signature string, body []byte) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// event records ev for the webhooks that want it; mark, when not empty,
// tells it once (Store.RecordEvent). A failure is only logged: an event
// never fails what caused it.
func (d *Dispatcher) event(ctx context.Context, ev *entities.Event, mark string) {
	ev.Time = d.now().UTC()
	if ev.Host == "" {
		ev.Host = Master()
	}
	body, err := json.Marshal(ev)
	if err == nil {
		_, err = d.Store.RecordEvent(ctx, ev.Event, ev.Client, mark, body)
	}
	if err != nil {
		d.logf("queue: webhook event %s: %v", ev.Event, err)
	}
}

// taskFailed records task.failed for task id, and cert.failed too when it
// was a certificate's renewal.
func (d *Dispatcher) taskFailed(ctx context.Context, t *entities.Task, code string) {
	site, client, err := d.Store.SiteClient(ctx, t.TargetKind, t.TargetID)
	if err != nil {
		d.logf("queue: task %d: finding its site for the webhooks: %v", t.ID, err)
	}
	et := &entities.EventTask{ID: t.ID, Type: t.Type, TargetKind: t.TargetKind, Target: t.Target, Status: t.Status,
		Error: t.Error, ErrorCode: code, Hint: t.Hint, Finished: t.Finished}
	d.event(ctx, &entities.Event{Event: entities.EventTaskFailed, Client: client, Site: site, Task: et,
		Message: fmt.Sprintf("task %d (%s %s) failed: %s", t.ID, t.Type, t.Target, t.Error)}, "")
	if t.Type != TaskSiteCert || t.TargetKind != entities.TargetSite {
		return
	}
	ec := &entities.EventCert{Error: t.Error}
	if c, err := d.Store.GetCert(ctx, t.TargetID); err == nil {
		ec.Names, ec.NotAfter = c.Names, c.NotAfter
		ec.DaysLeft = daysLeft(c.NotAfter, d.now())
	}
	d.event(ctx, &entities.Event{Event: entities.EventCertFailed, Client: client, Site: site, Task: et, Cert: ec,
		Message: fmt.Sprintf("the certificate of %s could not be renewed: %s", site, t.Error)}, "")
}

func daysLeft(notAfter *time.Time, now time.Time) *int {
	if notAfter == nil {
		return nil
	}
	n := int(notAfter.Sub(now).Hours() / 24)
	return &n
}

// Watch records the events of states that last: certificates with fewer
// than CertExpiringDays left, sites whose last backup is older than the
// backup queue's frequency (when that queue is on), and sites whose health
// check failed. Each state is told once (a new certificate, a new backup,
// a site healthy again and then not make a new one). Then it deletes the
// deliveries that ended longer than KeepDeliveries ago.
func (d *Dispatcher) Watch(ctx context.Context) error {
	now := d.now()
	var errs []error
	if days := d.certExpiringDays(); days > 0 {
		ws, err := d.Store.ExpiringCerts(ctx, now.Add(time.Duration(days)*24*time.Hour))
		errs = append(errs, err)
		for _, w := range ws {
			left := daysLeft(w.Cert.NotAfter, now)
			d.event(ctx, &entities.Event{Event: entities.EventCertExpiring, Client: w.Client, Site: w.Domain,
				Cert:    &entities.EventCert{Names: w.Cert.Names, NotAfter: w.Cert.NotAfter, DaysLeft: left, Error: w.Cert.LastError},
				Message: fmt.Sprintf("the certificate of %s expires in %d days (%s)", w.Domain, *left, w.Cert.NotAfter.Format(time.RFC3339))},
				fmt.Sprintf("%s:%d:%d", entities.EventCertExpiring, w.SiteID, w.Cert.NotAfter.UnixMilli()))
		}
	}
	for _, q := range d.Queues {
		if q.Name != "backup" || !q.Enabled || q.Frequency <= 0 {
			continue
		}
		ws, err := d.Store.StaleBackups(ctx, now.Add(-q.Frequency-d.interval()))
		errs = append(errs, err)
		for _, w := range ws {
			last, since := "never", int64(0)
			if w.LastBackup != nil {
				last, since = w.LastBackup.Format(time.RFC3339), w.LastBackup.UnixMilli()
			}
			d.event(ctx, &entities.Event{Event: entities.EventBackupStale, Client: w.Client, Site: w.Domain,
				Backup:  &entities.EventBackup{LastBackup: w.LastBackup, Frequency: formatDuration(q.Frequency)},
				Message: fmt.Sprintf("%s has no backup newer than %s (last: %s)", w.Domain, formatDuration(q.Frequency), last)},
				fmt.Sprintf("%s:%d:%d", entities.EventBackupStale, w.SiteID, since))
		}
	}
	errs = append(errs, d.watchHealth(ctx))
	if keep := d.keepDeliveries(); keep > 0 {
		n, more, err := d.Store.PruneDeliveries(ctx, now.Add(-keep), store.PruneBatch, pruneMaxBatches)
		errs = append(errs, err)
		if n > 0 {
			left := ""
			if more {
				left = "; more are left for the next pass"
			}
			d.logf("queue: deleted %d webhook deliveries that ended more than %s ago%s", n, formatDuration(keep), left)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("queue: webhook events: %w", err)
	}
	return nil
}

// watchHealth records site.unhealthy for each site whose health check
// failed, once per failure: a site healthy again is told of again when it
// fails next. A dispatch runs it again once its tasks ended, so that the
// health its tasks found (the health queue's, a verify's) is told in the
// same pass.
func (d *Dispatcher) watchHealth(ctx context.Context) error {
	ws, err := d.Store.UnhealthySites(ctx)
	if err != nil {
		return err
	}
	var marks []string
	for _, w := range ws {
		mark := fmt.Sprintf("%s:%d", entities.EventSiteUnhealthy, w.SiteID)
		marks = append(marks, mark)
		d.event(ctx, &entities.Event{Event: entities.EventSiteUnhealthy, Client: w.Client, Site: w.Domain, Health: w.Health,
			Message: fmt.Sprintf("%s fails its health check: %s", w.Domain, w.Health.Error)}, mark)
	}
	return d.Store.ForgetMarks(ctx, entities.EventSiteUnhealthy+":", marks)
}

func (d *Dispatcher) keepDeliveries() time.Duration {
	if d.KeepDeliveries == 0 {
		return DefaultKeepDeliveries
	}
	return d.KeepDeliveries // < 0: never
}

func (d *Dispatcher) certExpiringDays() int {
	if d.CertExpiringDays == 0 {
		return DefaultCertExpiringDays
	}
	return d.CertExpiringDays // < 0: off
}

func (d *Dispatcher) httpClient() *http.Client {
	if d.HTTPClient != nil {
		return d.HTTPClient
	}
	return &http.Client{Timeout: DeliveryTimeout,
		// A redirect is not followed: the receiver's answer counts.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Deliver sends the deliveries that are due, deliveryParallel at a time,
// until none is left or ctx is done, and returns how many were delivered.
// It claims them first (Store.ClaimDeliveries), so that two dispatchers
// never send one twice at once.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	var mu sync.Mutex
	delivered := 0
	for ctx.Err() == nil {
		ds, err := d.Store.ClaimDeliveries(ctx, d.now(), 3*DeliveryTimeout, 4*deliveryParallel)
		if err != nil || len(ds) == 0 {
			return delivered, err
		}
		sem := make(chan struct{}, deliveryParallel)
		var wg sync.WaitGroup
		for _, dd := range ds {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				a := d.send(ctx, dd)
				if err := d.Store.DeliveryAttempt(context.WithoutCancel(ctx), dd.ID, a); err != nil {
					d.logf("queue: webhook delivery %d: recording it: %v", dd.ID, err)
				}
				if a.Error == "" {
					mu.Lock()
					delivered++
					mu.Unlock()
				} else {
					d.logf("queue: webhook delivery %d (%s to webhook %d), attempt %d: %s", dd.ID, dd.Event, dd.Webhook, dd.Attempts+1, a.Error)
				}
			}()
		}
		wg.Wait()
	}
	return delivered, nil
}

// send makes one attempt at a delivery.
func (d *Dispatcher) send(ctx context.Context, dd *store.DueDelivery) store.Attempt {
	now := d.now()
	a := store.Attempt{At: now}
	fail := func(msg string) store.Attempt {
		a.Error = msg
		if dd.Attempts+1 < DeliveryAttempts {
			a.Next = now.Add(DeliveryBackoff(dd.Attempts + 1))
		}
		return a
	}
	body := []byte(dd.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dd.URL, bytes.NewReader(body))
	if err != nil {
		return fail(err.Error())
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aegir-webhook")
	req.Header.Set(HeaderEvent, dd.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(dd.ID, 10))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(dd.Secret, ts, body))
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return fail(oneLine(err.Error(), 300))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	a.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := "HTTP " + resp.Status
		if s := oneLine(string(answer), 200); s != "" {
			msg += ": " + s
		}
		return fail(msg)
	}
	return a
}

// oneLine is s on one line of printable characters, at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
