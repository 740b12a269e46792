package queue

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// received is one request a test receiver got.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is an HTTP server on 127.0.0.1 that keeps what it receives
// and answers 200.
type receiver struct {
	mu   sync.Mutex
	got  []received
	srv  *http.Server
	addr string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, received{req.URL.Path, req.Header.Clone(), b})
	r.mu.Unlock()
}

// listen starts serving on addr ("127.0.0.1:0": a free port).
func (r *receiver) listen(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(l)
	t.Cleanup(func() { r.srv.Close() })
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// checkSigned verifies a delivery as a receiver would, with its own
// HMAC: the signature over timestamp "." body with secret, the timestamp
// the one given, and the event's name in its header and body.
func checkSigned(t *testing.T, r received, secret, event string, at time.Time) entities.Event {
	t.Helper()
	ts := r.header.Get("X-Aegir-Timestamp")
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(r.body)))
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(r.header.Get("X-Aegir-Signature")), []byte(want)) {
		t.Fatalf("signature %q, want %q", r.header.Get("X-Aegir-Signature"), want)
	}
	if ts != strconv.FormatInt(at.Unix(), 10) {
		t.Fatalf("timestamp %q, want %d", ts, at.Unix())
	}
	if r.header.Get("X-Aegir-Event") != event || r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Aegir-Delivery") == "" {
		t.Fatalf("headers %v", r.header)
	}
	if !Verify(secret, ts, r.header.Get("X-Aegir-Signature"), r.body) || Verify("another secret", ts, r.header.Get("X-Aegir-Signature"), r.body) ||
		Verify(secret, strconv.FormatInt(at.Unix()+1, 10), r.header.Get("X-Aegir-Signature"), r.body) {
		t.Fatal("Verify does not tell the right secret and timestamp from wrong ones")
	}
	var ev entities.Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event != event {
		t.Fatalf("body event %q, want %q", ev.Event, event)
	}
	return ev
}

func addWebhook(t *testing.T, st *store.Store, url, client string, events ...string) *entities.Webhook {
	t.Helper()
	w := &entities.Webhook{URL: url, Events: events, Client: client, Secret: "secret of " + url + client}
	if err := st.AddWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

// A task that fails queues its event; a receiver that is down gets it
// after a retry once it is up again, and not before the backoff ran out.
// The delivery log says how each attempt went.
func TestWebhookRetryAfterReceiverDown(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	sites := seedSites(t, st, 1)

	// Find a free port, then stop listening on it: the receiver is down.
	var r receiver
	r.listen(t, "127.0.0.1:0")
	addr := r.addr
	r.srv.Close()
	w := addWebhook(t, st, "http://"+addr+"/hook", "", entities.EventTaskFailed)

	task := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, sites[0])
	d := &Dispatcher{Store: st, Handler: func(context.Context, *entities.Task, func(string, string, ...entities.Action)) Outcome {
		return Outcome{Status: entities.TaskError, Error: "nginx is not running", Code: "unreachable"}
	}}
	sum, err := d.RunOnce(ctx)
	if err != nil || sum.Failed != 1 || sum.Delivered != 0 {
		t.Fatalf("pass: %+v, %v", sum, err)
	}
	ds, err := st.Deliveries(ctx, w.ID, 0)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	first := ds[0]
	if first.Status != entities.DeliveryPending || first.Attempts != 1 || first.Error == "" || first.StatusCode != 0 ||
		first.NextAttempt == nil || !first.NextAttempt.After(clk.Now()) {
		t.Fatalf("after the receiver was down: %+v", first)
	}

	// Up again, but the backoff has not run out: nothing is sent.
	r2 := &receiver{}
	r2.listen(t, addr)
	if n, err := d.Deliver(ctx); err != nil || n != 0 || len(r2.requests()) != 0 {
		t.Fatalf("before the backoff: %d delivered, %v, %d received", n, err, len(r2.requests()))
	}
	clk.Add(DeliveryBackoff(1) * 2)
	if n, err := d.Deliver(ctx); err != nil || n != 1 {
		t.Fatalf("after the backoff: %d delivered, %v", n, err)
	}
	got := r2.requests()
	if len(got) != 1 {
		t.Fatalf("received %d requests, want 1", len(got))
	}
	ev := checkSigned(t, got[0], w.Secret, entities.EventTaskFailed, clk.Now())
	if ev.Task == nil || ev.Task.ID != task.ID || ev.Task.Error != "nginx is not running" || ev.Task.ErrorCode != "unreachable" || ev.Site != "s0.test" {
		t.Fatalf("event %+v (task %+v)", ev, ev.Task)
	}
	ds, _ = st.Deliveries(ctx, w.ID, 0)
	if d := ds[0]; d.Status != entities.DeliveryDelivered || d.Attempts != 2 || d.StatusCode != 200 || d.Error != "" || d.NextAttempt != nil {
		t.Fatalf("after delivery: %+v", d)
	}
	// Delivered once: another pass sends nothing.
	if n, _ := d.Deliver(ctx); n != 0 || len(r2.requests()) != 1 {
		t.Fatalf("sent again: %d", n)
	}
}

// A delivery that never gets a 2xx is tried DeliveryAttempts times, each
// after its backoff, and then given up as failed.
func TestWebhookGivesUp(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	var mu sync.Mutex
	hits := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Error(w, "busy\nplease wait", http.StatusServiceUnavailable)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	w := addWebhook(t, st, "http://"+l.Addr().String()+"/", "", entities.EventSiteUnhealthy)
	if n, err := st.RecordEvent(ctx, entities.EventSiteUnhealthy, "", "", []byte(`{"event":"site.unhealthy"}`)); err != nil || n != 1 {
		t.Fatalf("recorded %d, %v", n, err)
	}
	d := &Dispatcher{Store: st}
	for i := 1; i <= DeliveryAttempts+2; i++ {
		if _, err := d.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Add(7 * time.Hour) // beyond any backoff
	}
	ds, _ := st.Deliveries(ctx, w.ID, 0)
	mu.Lock()
	defer mu.Unlock()
	if hits != DeliveryAttempts || ds[0].Status != entities.DeliveryFailed || ds[0].Attempts != DeliveryAttempts || ds[0].StatusCode != 503 ||
		ds[0].Error != "HTTP 503 Service Unavailable: busy please wait" {
		t.Fatalf("%d requests; delivery %+v", hits, ds[0])
	}
}

// Backoff doubles from 30s up to 6h, within ±10%.
func TestDeliveryBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 10: 256 * 30 * time.Second * 2, 11: 6 * time.Hour, 40: 6 * time.Hour} {
		got := DeliveryBackoff(n)
		if got < want*9/10 || got > want*11/10 {
			t.Errorf("DeliveryBackoff(%d) = %s, want %s ±10%%", n, got, want)
		}
	}
}

// A receiver that does not answer holds no task back: the next task runs
// to its end while the delivery is still waiting for the receiver.
func TestWebhookSlowReceiverDoesNotHoldTasks(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	sites := seedSites(t, st, 2)
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	addWebhook(t, st, "http://"+l.Addr().String()+"/", "", entities.EventTaskFailed)
	failed := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, sites[0])
	d := &Dispatcher{Store: st, Handler: func(_ context.Context, task *entities.Task, _ func(string, string, ...entities.Action)) Outcome {
		if task.ID == failed.ID {
			return Outcome{Status: entities.TaskError, Error: "broken"}
		}
		return Outcome{Status: entities.TaskSuccess}
	}}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- d.Serve(serveCtx) }()
	defer func() {
		close(release)
		stop()
		<-served
	}()
	select {
	case <-entered: // the delivery of the failure waits on the receiver
	case <-time.After(30 * time.Second):
		t.Fatal("the failure was never delivered")
	}
	next := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, sites[1])
	for deadline := time.Now().Add(30 * time.Second); getTask(t, st, next.ID).Status != entities.TaskSuccess; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("task %d did not run while a delivery waited: %s", next.ID, getTask(t, st, next.ID).Status)
		}
	}
	select {
	case <-release:
		t.Fatal("released early")
	default: // the receiver still holds the delivery
	}
}

// Each dispatch pass looks for the states that last: a certificate close
// to expiry, a site whose last backup is older than the backup queue's
// frequency, a site whose health check failed. Each is told once, to the
// webhooks that want it; a site healthy again and then not is told of
// again; a client's webhook hears only of its client's sites.
func TestWebhookWatchedStates(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	sites := seedSites(t, st, 3)
	now := clk.Now()
	mustExec(t, st, `INSERT INTO clients (name, created) VALUES ('acme', 0), ('other', 0)`)
	mustExec(t, st, `UPDATE sites SET client_id = (SELECT id FROM clients WHERE name = 'acme') WHERE id = ?`, sites[0])
	// s0: its certificate expires in 5 days; s1 is unhealthy; every site
	// was made two days ago and never backed up.
	mustExec(t, st, `UPDATE sites SET created = ?`, now.Add(-48*time.Hour).UnixMilli())
	mustExec(t, st, `INSERT INTO certificates (site_id, names, issuer, source, not_before, not_after, updated) VALUES (?, 's0.test', 'CA', 'acme', 0, ?, 0)`,
		sites[0], now.Add(5*24*time.Hour).UnixMilli())
	mustExec(t, st, `UPDATE sites SET health_status = 'error', health_http_code = 502, health_checked = ?, health_error = 'the site answered 502' WHERE id = ?`,
		now.UnixMilli(), sites[1])

	var r receiver
	r.listen(t, "127.0.0.1:0")
	all := addWebhook(t, st, "http://"+r.addr+"/all", "", entities.EventCertExpiring, entities.EventBackupStale, entities.EventSiteUnhealthy)
	acme := addWebhook(t, st, "http://"+r.addr+"/acme", "acme", entities.WebhookEvents...)
	other := addWebhook(t, st, "http://"+r.addr+"/other", "other", entities.WebhookEvents...)
	d := &Dispatcher{Store: st, Handler: succeed, Queues: []QueueConfig{{Name: "backup", Enabled: false, Frequency: 24 * time.Hour}}}
	count := func(w *entities.Webhook) map[string]int {
		t.Helper()
		ds, err := st.Deliveries(ctx, w.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, x := range ds {
			if x.Status != entities.DeliveryDelivered {
				t.Fatalf("delivery %+v", x)
			}
			m[x.Event]++
		}
		return m
	}
	if _, err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(all); len(got) != 2 || got[entities.EventCertExpiring] != 1 || got[entities.EventSiteUnhealthy] != 1 {
		t.Fatalf("all, backup queue off: %v", got)
	}
	// The backup queue on: the three sites' backups are late.
	d.Queues[0].Enabled = true
	sum, err := d.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := count(all); got[entities.EventBackupStale] != 3 || got[entities.EventCertExpiring] != 1 || got[entities.EventSiteUnhealthy] != 1 {
		t.Fatalf("all, backup queue on: %v (%+v)", got, sum)
	}
	if got := count(acme); len(got) != 2 || got[entities.EventCertExpiring] != 1 || got[entities.EventBackupStale] != 1 {
		t.Fatalf("acme: %v", got)
	}
	if got := count(other); len(got) != 0 {
		t.Fatalf("other: %v", got)
	}
	// Told once: another pass sends nothing new.
	before := len(r.requests())
	if _, err := d.RunOnce(ctx); err != nil || len(r.requests()) != before {
		t.Fatalf("a second pass sent %d more (%v)", len(r.requests())-before, err)
	}
	// Healthy, then failing again: a new event.
	mustExec(t, st, `UPDATE sites SET health_status = 'ok' WHERE id = ?`, sites[1])
	if _, err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	mustExec(t, st, `UPDATE sites SET health_status = 'error' WHERE id = ?`, sites[1])
	if _, err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(all); got[entities.EventSiteUnhealthy] != 2 {
		t.Fatalf("unhealthy again: %v", got)
	}
	secrets := map[string]string{"/all": all.Secret, "/acme": acme.Secret}
	for _, req := range r.requests() {
		if req.header.Get("X-Aegir-Event") == entities.EventCertExpiring {
			ev := checkSigned(t, req, secrets[req.path], entities.EventCertExpiring, clk.Now())
			if ev.Cert == nil || ev.Cert.DaysLeft == nil || *ev.Cert.DaysLeft != 5 || ev.Site != "s0.test" || ev.Client != "acme" {
				t.Fatalf("cert.expiring: %+v (%+v)", ev, ev.Cert)
			}
		}
	}
}

// Watch deletes the deliveries that ended (delivered, failed) longer
// than KeepDeliveries ago, counted from their last attempt; a pending
// delivery stays however old, and a negative KeepDeliveries keeps all.
func TestWebhookDeliveriesPruned(t *testing.T) {
	st, _ := newStore(t)
	clk := newClock()
	st.Now = clk.Now
	ctx := context.Background()
	w := addWebhook(t, st, "http://127.0.0.1:9/hook", "", entities.EventSiteUnhealthy)
	for i := 0; i < 4; i++ {
		if _, err := st.RecordEvent(ctx, entities.EventSiteUnhealthy, "", "", []byte(`{"event":"site.unhealthy"}`)); err != nil {
			t.Fatal(err)
		}
	}
	due, err := st.ClaimDeliveries(ctx, clk.Now(), time.Minute, 10)
	if err != nil || len(due) != 4 {
		t.Fatalf("claimed %d, %v", len(due), err)
	}
	// Delivered, failed, pending (to be tried in a year), and delivered a
	// day later than the first.
	at := clk.Now()
	for i, a := range []store.Attempt{{At: at, StatusCode: 200}, {At: at, StatusCode: 503, Error: "HTTP 503"},
		{At: at, Error: "refused", Next: at.Add(365 * 24 * time.Hour)}, {At: at.Add(24 * time.Hour), StatusCode: 204}} {
		if err := st.DeliveryAttempt(ctx, due[i].ID, a); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []int64 {
		t.Helper()
		ds, err := st.Deliveries(ctx, w.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		return ids
	}
	all := left()
	d := &Dispatcher{Store: st}
	clk.Add(DefaultKeepDeliveries - time.Hour)
	if err := d.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 4 {
		t.Fatalf("before webhooks.keep: %v left, want all 4", got)
	}
	clk.Add(2 * time.Hour)
	if err := (&Dispatcher{Store: st, KeepDeliveries: -1}).Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 4 {
		t.Fatalf("KeepDeliveries < 0: %v left, want all 4", got)
	}
	if err := d.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	// A claim gives no order (SKIP LOCKED on PostgreSQL): the two kept are
	// compared as a set, the list newest first.
	if got := left(); len(got) != 2 || !slices.Contains(got, due[2].ID) || !slices.Contains(got, due[3].ID) || got[0] < got[1] {
		t.Fatalf("after webhooks.keep: %v left of %v, want the pending one (%d) and the one a day younger (%d)", got, all, due[2].ID, due[3].ID)
	}
	clk.Add(24 * time.Hour)
	if err := d.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 1 || got[0] != due[2].ID {
		t.Fatalf("a day later: %v left, want the pending one", got)
	}
}
