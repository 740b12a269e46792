package cli_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/store"
)

// lineWriter sends the first line written to it on first, and keeps the rest.
type lineWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	first chan string
	sent  bool
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if s := w.buf.String(); !w.sent && strings.Contains(s, "\n") {
		w.sent = true
		w.first <- s[:strings.Index(s, "\n")]
	}
	return len(b), nil
}

// serve runs aegir serve (with flags) on a free loopback port of home
// until the test ends and returns its base URL.
func serve(t *testing.T, home string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errw := &lineWriter{first: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"--home", home, "serve", "--listen", "127.0.0.1:0", "--rate", "1000", "--burst", "1000"}, flags...),
			cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, Err: errw})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("aegir serve: exit %d", code)
		}
	})
	select {
	case line := <-errw.first:
		m := regexp.MustCompile(`at (https?://127\.0\.0\.1:\d+)/api/`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("aegir serve said: %s", line)
		}
		return m[1]
	case code := <-done:
		t.Fatalf("aegir serve: exit %d: %s", code, errw.buf.String())
	}
	return ""
}

// apiClient calls the API at url with a token.
type apiClient struct {
	url, token string
}

func (c apiClient) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// task is do's answer as a task, which must have status code.
func (c apiClient) task(t *testing.T, code int, method, path, body string) *entities.Task {
	t.Helper()
	got, b := c.do(t, method, path, body)
	var task entities.Task
	if err := json.Unmarshal([]byte(b), &task); got != code || err != nil || task.ID == 0 {
		t.Fatalf("%s %s: %d %s, want %d and a task", method, path, got, b, code)
	}
	return &task
}

func token(t *testing.T, home, user, scope string) string {
	t.Helper()
	return strings.TrimSpace(must(t, home, "token", "create", "--user", user, "--scope", scope, "-q"))
}

// The API over a real WordPress site on a private nginx and the shared
// MariaDB, served by aegir serve: a client's install through the API
// queues a task the dispatcher runs and the site answers; its backup
// likewise; its log streams while the task runs; the login link comes
// only in login-reset's answer; another client's user sees none of it;
// and a change through the API and one from the command line on one
// site: the second is refused (409, exit 4) while the first holds it.
func TestAPIWordPress(t *testing.T) {
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "api")
	must(t, h.home, "client", "add", "acme", "-q")
	must(t, h.home, "client", "add", "other", "-q")
	must(t, h.home, "user", "add", "ann", "--client", "acme", "-q")
	must(t, h.home, "user", "add", "olga", "--client", "other", "-q")
	url := serve(t, h.home)
	ann := apiClient{url, token(t, h.home, "ann", "write")}
	olga := apiClient{url, token(t, h.home, "olga", "write")}

	install := ann.task(t, 202, "POST", "/api/sites", fmt.Sprintf(`{"domain": %q, "platform":"wp", "title":"API site"}`, domain))
	if install.Type != entities.TaskSiteInstall || install.Status != entities.TaskQueued {
		t.Fatalf("install task: %+v", install)
	}
	// The log streams as the task runs: follow it while the dispatcher
	// runs the install; it ends when the task does, with its last line.
	streamed := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", url+"/api/tasks/"+strconv.FormatInt(install.ID, 10)+"/log?follow=1", nil)
		req.Header.Set("Authorization", "Bearer "+ann.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			streamed <- err.Error()
			return
		}
		defer resp.Body.Close()
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		streamed <- strings.Join(lines, "\n")
	}()
	must(t, h.home, "hosting", "dispatch", "-q")
	log := <-streamed
	stored := must(t, h.home, "task", "log", strconv.FormatInt(install.ID, 10), "--format", "json")
	var all, want []entities.LogLine
	if err := json.Unmarshal([]byte(stored), &all); err != nil || len(all) == 0 {
		t.Fatalf("task log: %v %s", err, stored)
	}
	// A client's user reads the log without its debug, command and
	// output lines; the stream is the rest, in order, to the last line.
	for _, l := range all {
		switch l.Level {
		case entities.LevelDebug, entities.LevelCommand, entities.LevelOutput:
			continue
		}
		want = append(want, l)
	}
	if len(want) == len(all) {
		t.Fatalf("the install's log has no debug, command or output line to hide: %s", stored)
	}
	if got := strings.Split(log, "\n"); len(got) != len(want) || !strings.Contains(got[len(got)-1], jsonString(want[len(want)-1].Message)) {
		t.Fatalf("streamed log (%d lines) is not the task's (%d lines): last %q, want %q", len(got), len(want), got[len(got)-1], want[len(want)-1].Message)
	}
	for _, hidden := range []string{`"level":"debug"`, `"level":"command"`, `"level":"output"`} {
		if strings.Contains(log, hidden) {
			t.Fatalf("a client's user was streamed a %s line:\n%s", hidden, log)
		}
	}
	if done := ann.task(t, 200, "GET", "/api/tasks/"+strconv.FormatInt(install.ID, 10), ""); done.Status != entities.TaskSuccess {
		t.Fatalf("install through the API: %+v", done)
	}
	code, body := ann.do(t, "GET", "/api/sites/"+domain, "")
	pw := siteDBPassword(t, h.home, domain)
	if code != 200 || !strings.Contains(body, `"status":"installed"`) || !strings.Contains(body, `"client":"acme"`) || strings.Contains(body, pw) || strings.Contains(body, `"db_server":"web1"`) {
		t.Fatalf("ann GET the site: %d %s", code, body)
	}
	title := "<title>API site"
	if code, page, _ := h.get(t, domain, "/", func(c int, b string, _ http.Header) bool { return c == 200 && strings.Contains(b, title) }); code != 200 || !strings.Contains(page, title) {
		t.Fatalf("the site installed through the API: %d %.300s", code, page)
	}

	// Another client's user: 404 on the site, its task and its verbs.
	for _, r := range [][2]string{{"GET", "/api/sites/" + domain}, {"GET", "/api/tasks/" + strconv.FormatInt(install.ID, 10)}, {"POST", "/api/sites/" + domain + "/backup"}, {"POST", "/api/sites/" + domain + "/login-reset"}} {
		if code, body := olga.do(t, r[0], r[1], ""); code != 404 {
			t.Fatalf("olga %s %s: %d %s, want 404", r[0], r[1], code, body)
		}
	}
	if code, body := olga.do(t, "GET", "/api/sites", ""); code != 200 || strings.Contains(body, domain) {
		t.Fatalf("olga's list: %d %s", code, body)
	}

	// A backup through the API, run by the dispatcher.
	backup := ann.task(t, 202, "POST", "/api/sites/"+domain+"/backup", "")
	must(t, h.home, "hosting", "dispatch", "-q")
	if done := ann.task(t, 200, "GET", "/api/tasks/"+strconv.FormatInt(backup.ID, 10), ""); done.Status != entities.TaskSuccess {
		t.Fatalf("backup through the API: %+v", done)
	}
	code, body = ann.do(t, "GET", "/api/sites/"+domain+"/backups", "")
	var backups []entities.Backup
	if err := json.Unmarshal([]byte(body), &backups); code != 200 || err != nil || len(backups) != 1 || backups[0].Path != "" || backups[0].Size == 0 {
		t.Fatalf("ann's backups: %d %s, want one, without its path", code, body)
	}

	// site sync through the API, as site sync --queue: a staging clone's
	// new post reaches the site, a backup of it taken first; a source
	// another client's user does not see is 404 for it.
	stg := testsite.Domain(t, "apis")
	must(t, h.home, "site", "clone", domain, stg, "-q")
	must(t, h.home, "site", "edit", stg, "--client", "acme", "-q")
	addPost(t, siteRecord(t, h.home, stg)["db_name"].(string), "Staging post")
	if code, body := olga.do(t, "POST", "/api/sites/"+domain+"/sync", fmt.Sprintf(`{"source": %q}`, stg)); code != 404 {
		t.Fatalf("olga's sync onto ann's site: %d %s, want 404", code, body)
	}
	if code, body := ann.do(t, "POST", "/api/sites/"+domain+"/sync", `{}`); code != 400 || !strings.Contains(body, "source") {
		t.Fatalf("a sync without its source: %d %s, want 400 naming source", code, body)
	}
	_, body = ann.do(t, "GET", "/api/sites/"+domain+"/backups", "")
	if err := json.Unmarshal([]byte(body), &backups); err != nil {
		t.Fatal(err)
	}
	before := len(backups)
	sync := ann.task(t, 202, "POST", "/api/sites/"+domain+"/sync", fmt.Sprintf(`{"source": %q}`, stg))
	if sync.Type != entities.TaskSiteSync || sync.Options["source"] != stg {
		t.Fatalf("the sync's task: %+v", sync)
	}
	must(t, h.home, "hosting", "dispatch", "-q")
	if done := ann.task(t, 200, "GET", "/api/tasks/"+strconv.FormatInt(sync.ID, 10), ""); done.Status != entities.TaskSuccess {
		t.Fatalf("sync through the API: %+v (aegir task log %d)", done, sync.ID)
	}
	if ok, got := h.pageHas(t, domain, "Staging post", ""); !ok {
		t.Fatalf("%s after the sync from %s: %s", domain, stg, got)
	}
	code, body = ann.do(t, "GET", "/api/sites/"+domain+"/backups", "")
	if err := json.Unmarshal([]byte(body), &backups); code != 200 || err != nil || len(backups) != before+1 {
		t.Fatalf("ann's backups after the sync: %d %s, want the sync's too", code, body)
	}
	must(t, h.home, "site", "delete", stg, "--no-backup", "-q")

	// login-reset: the link in its answer, in no log and no task.
	code, body = ann.do(t, "POST", "/api/sites/"+domain+"/login-reset", "")
	var link struct {
		Link   string `json:"login_link"`
		TaskID int64  `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(body), &link); code != 200 || err != nil || !strings.HasPrefix(link.Link, "http://"+domain) || link.TaskID == 0 {
		t.Fatalf("login-reset: %d %s", code, body)
	}
	secret := link.Link[strings.LastIndexAny(link.Link, "#=/")+1:]
	for _, p := range []string{"/api/tasks/" + strconv.FormatInt(link.TaskID, 10), "/api/tasks/" + strconv.FormatInt(link.TaskID, 10) + "/log"} {
		if _, body := ann.do(t, "GET", p, ""); strings.Contains(body, secret) {
			t.Fatalf("GET %s shows the login link's secret: %s", p, body)
		}
	}
	if state, err := os.ReadFile(filepath.Join(h.home, "aegir.db")); err != nil || strings.Contains(string(state), secret) {
		t.Fatalf("the state holds the login link's secret (%v)", err)
	}

	// The API first: its task is queued, so the command line's change on
	// the site waits behind it (exit 4) and runs after it.
	cron := ann.task(t, 202, "POST", "/api/sites/"+domain+"/cron", "")
	if _, errs, code := aegir(t, h.home, "site", "verify", domain); code != 4 || !strings.Contains(errs, fmt.Sprintf("task %d (site.cron) was queued on it earlier", cron.ID)) {
		t.Fatalf("CLI verify beside the API's queued cron: exit %d\n%s", code, errs)
	}
	must(t, h.home, "hosting", "dispatch", "-q")
	out := must(t, h.home, "task", "list", "--site", domain, "--format", "json", "--fields", "type,status")
	if !strings.Contains(out, `"type": "site.cron",
    "status": "success"`) || !strings.Contains(out, `"type": "site.verify",
    "status": "success"`) {
		t.Fatalf("the cron and then the verify: %s", out)
	}

	// The command line first: while its task runs (claimed as its
	// dispatcher claims it), the API's change is refused, 409, exit 4,
	// and nothing is queued.
	must(t, h.home, "site", "disable", domain, "--queue", "-q")
	st, err := store.Open(context.Background(), filepath.Join(h.home, "aegir.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	queued, err := st.ListTasks(context.Background(), store.TaskFilter{Target: domain, Status: entities.TaskQueued})
	if err != nil || len(queued) != 1 {
		t.Fatalf("queued: %v %v", queued, err)
	}
	now := time.Now()
	claimed, err := st.ClaimTask(context.Background(), store.Claim{Worker: fmt.Sprintf("%d@test", os.Getpid()), Now: now, LeaseUntil: now.Add(time.Hour)}, queued[0].ID)
	if err != nil || claimed == nil {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	code, body = ann.do(t, "POST", "/api/sites/"+domain+"/backup", "")
	if code != 409 || !strings.Contains(body, `"exit_code":4`) || !strings.Contains(body, fmt.Sprintf("task %d (site.disable) is running on it", claimed.ID)) {
		t.Fatalf("API backup beside the CLI's running disable: %d %s", code, body)
	}
	if n, _ := st.ListTasks(context.Background(), store.TaskFilter{Target: domain, Status: entities.TaskQueued}); len(n) != 0 {
		t.Fatalf("the refused change was queued: %+v", n)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// aegir serve with --tls-cert and --tls-key answers HTTPS with that
// certificate, and not plain HTTP.
func TestServeTLS(t *testing.T) {
	home := newHome(t)
	must(t, home, "user", "add", "root", "--role", "admin", "-q")
	tok := token(t, home, "root", "read")
	certPEM, keyPEM, _ := testenv.SelfSigned(t, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	url := serve(t, home, "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("aegir serve with TLS at %s", url)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	req, _ := http.NewRequest("GET", url+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"name":"root"`) || resp.TLS == nil {
		t.Fatalf("GET /api/me over TLS: %d %s", resp.StatusCode, b)
	}
	plain, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/api/openapi.json")
	if err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatalf("plain HTTP on the TLS port answered 200: %.100s", b)
		}
	}
}

// DELETE /api/sites/{domain} over a real WordPress site: a client's user
// queues its site's delete, the dispatcher runs it, a backup is taken
// first and the site is gone (its page no longer served, its database
// dropped); the record is deleted, restorable from that backup.
func TestAPIDeleteWordPress(t *testing.T) {
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "apidel")
	must(t, h.home, "client", "add", "acme", "-q")
	must(t, h.home, "user", "add", "ann", "--client", "acme", "-q")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "--client", "acme", "--title", "To delete", "-q")
	dbs := siteDBs(t, domain)
	if len(dbs) != 1 {
		t.Fatalf("databases of %s: %v", domain, dbs)
	}
	ann := apiClient{serve(t, h.home), token(t, h.home, "ann", "write")}
	del := ann.task(t, 202, "DELETE", "/api/sites/"+domain, "")
	if del.Type != entities.TaskSiteDelete || del.Options["no_backup"] != "" {
		t.Fatalf("the delete task: %+v", del)
	}
	must(t, h.home, "hosting", "dispatch", "-q")
	if done := ann.task(t, 200, "GET", "/api/tasks/"+strconv.FormatInt(del.ID, 10), ""); done.Status != entities.TaskSuccess {
		t.Fatalf("the delete: %+v", done)
	}
	if code, body := ann.do(t, "GET", "/api/sites/"+domain, ""); code != 404 {
		t.Fatalf("GET the deleted site: %d %s", code, body)
	}
	if left := siteDBs(t, domain); len(left) != 0 {
		t.Fatalf("databases left: %v", left)
	}
	var backups []entities.Backup
	if err := json.Unmarshal([]byte(must(t, h.home, "backup", "list", "--site", domain, "--format", "json")), &backups); err != nil || len(backups) != 1 {
		t.Fatalf("the backup taken before the delete: %+v %v", backups, err)
	}
	if code, page, _ := h.get(t, domain, "/", func(c int, b string, _ http.Header) bool { return !strings.Contains(b, "To delete") }); strings.Contains(page, "To delete") {
		t.Fatalf("the deleted site still answers: %d %.200s", code, page)
	}
}

// aegir serve whose state state migrate marks moved while it serves stops
// serving it: it exits 2 with the moved message, and its port is closed,
// so no request reads or writes the old copy.
func TestServeStopsOnMovedState(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	errw := &lineWriter{first: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(context.Background(), []string{"--home", home, "serve", "--listen", "127.0.0.1:0"},
			cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, Err: errw})
	}()
	var url string
	select {
	case line := <-errw.first:
		m := regexp.MustCompile(`at (https?://127\.0\.0\.1:\d+)/api/`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("aegir serve said: %s", line)
		}
		url = m[1]
	case code := <-done:
		t.Fatalf("aegir serve: exit %d: %s", code, errw.buf.String())
	}
	to := filepath.Join(t.TempDir(), "new.db")
	must(t, home, "state", "migrate", "--to", to)
	select {
	case code := <-done:
		errw.mu.Lock()
		out := errw.buf.String()
		errw.mu.Unlock()
		if code != 2 || !strings.Contains(out, "was moved to "+to) {
			t.Fatalf("aegir serve on a moved state: exit %d, want 2 and the moved message:\n%s", code, out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("aegir serve kept serving a state marked moved")
	}
	if resp, err := http.Get(url + "/api/openapi.json"); err == nil {
		resp.Body.Close()
		t.Fatalf("aegir serve still answers after it stopped: %s", resp.Status)
	}
}
