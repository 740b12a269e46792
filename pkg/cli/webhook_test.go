package cli_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookReceiver is a webhook receiver on 127.0.0.1 that keeps, per path,
// the deliveries whose signature it could verify with secret, and counts
// the others.
type hookReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	got    map[string][]hookEvent
	bad    int
}

type hookEvent struct {
	Event  string `json:"event"`
	Client string `json:"client"`
	Site   string `json:"site"`
	Task   struct {
		ID     int64  `json:"id"`
		Type   string `json:"type"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"task"`
	header    string
	timestamp time.Time
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	r := &hookReceiver{secret: secret, got: map[string][]hookEvent{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ts := req.Header.Get("X-Aegir-Timestamp")
		m := hmac.New(sha256.New, []byte(r.secret))
		m.Write([]byte(ts + "." + string(body)))
		sig := "sha256=" + hex.EncodeToString(m.Sum(nil))
		sec, err := strconv.ParseInt(ts, 10, 64)
		var ev hookEvent
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil || !hmac.Equal([]byte(sig), []byte(req.Header.Get("X-Aegir-Signature"))) || json.Unmarshal(body, &ev) != nil {
			r.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		ev.header, ev.timestamp = req.Header.Get("X-Aegir-Event"), time.Unix(sec, 0)
		r.got[req.URL.Path] = append(r.got[req.URL.Path], ev)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) events(path string) []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookEvent(nil), r.got[path]...)
}

// A site install that really fails (its platform's root is missing)
// reaches, signed, the webhook of every event and that of the site's
// client, not that of another client; each delivery is in its webhook's
// log. A webhook's secret comes from a private file, or is made and
// printed once.
func TestWebhookFailedTask(t *testing.T) {
	home := newHome(t)
	secret := "a-shared-secret-for-the-receiver"
	r := newHookReceiver(t, secret)
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, home, "client", "add", "acme")
	must(t, home, "client", "add", "other")
	// The server and platform are recorded only: their verify tasks are
	// cancelled, so that the install is the one task that runs.
	for _, args := range [][]string{
		{"server", "add", "web1", "--host", "localhost", "--http", "nginx", "--db", "mariadb", "--db-host", "127.0.0.1", "--queue"},
		{"platform", "add", "wp", "--server", "web1", "--root", filepath.Join(t.TempDir(), "gone"), "--type", "wordpress", "--queue"},
	} {
		id := strings.TrimSpace(must(t, home, args...))
		must(t, home, "task", "cancel", id)
	}
	add := func(path string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(must(t, home, append([]string{"webhook", "add", r.URL + path, "--field", "id"}, args...)...))
	}
	all := add("/all", "--events", "task.failed,cert.failed", "--secret-file", secretFile)
	mine := add("/acme", "--events", "task.failed", "--client", "acme", "--secret-file", secretFile)
	other := add("/other", "--events", "task.failed", "--client", "other", "--secret-file", secretFile)
	// A webhook without a secret file gets one made, printed this once.
	var made struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(must(t, home, "webhook", "add", r.URL+"/made", "--events", "site.unhealthy", "--format", "json")), &made); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(made.Secret) {
		t.Fatalf("made secret %q", made.Secret)
	}
	if out := must(t, home, "webhook", "list", "--format", "json"); strings.Contains(out, made.Secret) || strings.Contains(out, secret) {
		t.Fatalf("webhook list shows a secret:\n%s", out)
	}

	id := strings.TrimSpace(must(t, home, "site", "install", "a.test", "--platform", "wp", "--client", "acme", "--queue"))
	before := time.Now().Truncate(time.Second)
	var sum struct{ Ran, Failed, Delivered int }
	if err := json.Unmarshal([]byte(must(t, home, "hosting", "dispatch", "--format", "json")), &sum); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if sum.Ran != 1 || sum.Failed != 1 || sum.Delivered != 2 {
		t.Fatalf("dispatch: %+v, want 1 task failed, 2 deliveries", sum)
	}
	for _, path := range []string{"/all", "/acme"} {
		got := r.events(path)
		if len(got) != 1 {
			t.Fatalf("%s received %d events, want 1", path, len(got))
		}
		ev := got[0]
		if ev.Event != "task.failed" || ev.header != "task.failed" || ev.Client != "acme" || ev.Site != "a.test" ||
			strconv.FormatInt(ev.Task.ID, 10) != id || ev.Task.Type != "site.install" || ev.Task.Status != "error" || ev.Task.Error == "" {
			t.Fatalf("%s received %+v", path, ev)
		}
		if ev.timestamp.Before(before) || ev.timestamp.After(after) {
			t.Fatalf("%s: timestamp %s not within the dispatch (%s to %s)", path, ev.timestamp, before, after)
		}
	}
	if n := len(r.events("/other")); n != 0 || r.bad != 0 {
		t.Fatalf("the other client's webhook received %d events; %d bad signatures", n, r.bad)
	}

	var log []struct {
		Event      string `json:"event"`
		Status     string `json:"status"`
		StatusCode int    `json:"status_code"`
		Attempts   int    `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(must(t, home, "webhook", "log", mine, "--format", "json")), &log); err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Event != "task.failed" || log[0].Status != "delivered" || log[0].StatusCode != 200 || log[0].Attempts != 1 {
		t.Fatalf("webhook log %s: %+v", mine, log)
	}
	if out := must(t, home, "webhook", "log", other, "--format", "count"); out != "0\n" {
		t.Fatalf("webhook log %s: %q", other, out)
	}
	if out := must(t, home, "webhook", "log", all); !strings.Contains(out, "task.failed") || !strings.Contains(out, "delivered") {
		t.Fatalf("webhook log %s:\n%s", all, out)
	}
}
