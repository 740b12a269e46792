package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/api"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// storeOps records changes straight in the state, as the command line's
// code does once it has checked its input: enough to see what the API
// lets through, to whom. (pkg/cli's tests run the API over the command
// line's own code and real sites.)
type storeOps struct{ st *store.Store }

func (o storeOps) Details(ctx context.Context, v *entities.Site) error {
	var err error
	if v.Stats, err = o.st.SiteStats(ctx, v); err != nil {
		return err
	}
	v.Cert, err = o.st.GetCert(ctx, v.ID)
	if errors.Is(err, store.ErrNotFound) {
		v.Cert, err = nil, nil
	}
	return err
}

func (o storeOps) Install(ctx context.Context, r *api.InstallRequest) (*entities.Task, error) {
	return o.st.AddSite(ctx, &entities.Site{Domain: r.Domain, Platform: r.Platform, DBServer: "web1", Client: r.Client, HTTPS: "off", Language: "en"})
}

func (o storeOps) Queue(ctx context.Context, v *entities.Site, verb string, r *api.VerbRequest) (*entities.Task, error) {
	var opts map[string]string
	if r.NoBackup {
		opts = map[string]string{"no_backup": "1"}
	}
	return o.st.QueueSiteTaskIfFree(ctx, v, "site."+verb, opts)
}

func (o storeOps) LoginReset(context.Context, *entities.Site) (*entities.Task, string, error) {
	return nil, "", errors.New("no login link here")
}

// apiEnv is a state with two clients' sites and one of no client, an
// admin and a user of each client with their tokens, and the API served
// on 127.0.0.1.
type apiEnv struct {
	st     *store.Store
	url    string
	tokens map[string]string // root, ann (acme, write), annread, olga (other)
	h      http.Handler
	mu     sync.Mutex
	now    time.Time
}

func (e *apiEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *apiEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func newAPIEnv(t *testing.T, burst int) *apiEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aegir.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &apiEnv{st: st, tokens: map[string]string{}, now: time.Now()}
	st.Now = e.clock
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = st.AddServer(ctx, &entities.Server{Name: "web1", Host: "localhost", SSHPort: 22, Services: []entities.Service{
		{Kind: "http", Type: "nginx", Port: 80}, {Kind: "db", Type: "mariadb", Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"}}})
	check(err)
	_, err = st.AddPlatform(ctx, &entities.Platform{Name: "p1", Server: "web1", Root: "/var/www/p1"})
	check(err)
	_, err = st.AddPlatform(ctx, &entities.Platform{Name: "locked", Server: "web1", Root: "/var/www/locked"})
	check(err)
	for _, name := range []string{"p1", "locked"} {
		p, err := st.GetPlatform(ctx, name)
		check(err)
		check(st.SetPlatformStatus(ctx, p.ID, entities.StatusEnabled))
		check(st.LockPlatform(ctx, p.ID, name == "locked"))
	}
	// queued-locked: locked, but not enabled yet (its verify queued).
	_, err = st.AddPlatform(ctx, &entities.Platform{Name: "queued-locked", Server: "web1", Root: "/var/www/ql", Locked: true})
	check(err)
	for _, c := range []string{"acme", "other"} {
		check(st.AddClient(ctx, &entities.Client{Name: c}))
	}
	for domain, client := range map[string]string{"a.acme.test": "acme", "a2.acme.test": "acme", "b.other.test": "other", "c.none.test": ""} {
		install, err := st.AddSite(ctx, &entities.Site{Domain: domain, Platform: "p1", DBServer: "web1", Client: client, HTTPS: "off", Language: "en"})
		check(err)
		v, err := st.GetSite(ctx, domain)
		check(err)
		check(st.SaveSiteDB(ctx, v.ID, "db_"+strings.Split(domain, ".")[0], "u", "secret-password-"+domain))
		check(st.SetSiteStatus(ctx, v.ID, entities.SiteInstalled))
		_, err = st.TestExec(`UPDATE tasks SET status = 'success' WHERE id = ?`, install.ID)
		check(err)
	}
	for _, u := range []entities.User{{Name: "root", Role: entities.RoleAdmin}, {Name: "ann", Client: "acme", Role: entities.RoleClient}, {Name: "olga", Client: "other", Role: entities.RoleClient}} {
		check(st.AddUser(ctx, &u))
	}
	for key, tk := range map[string]struct {
		user, scope string
	}{"root": {"root", "write"}, "ann": {"ann", "write"}, "annread": {"ann", "read"}, "olga": {"olga", "write"}} {
		_, secret, err := st.CreateToken(ctx, tk.user, tk.scope, time.Hour)
		check(err)
		e.tokens[key] = secret
	}
	e.h = api.New(api.Config{Store: st, Ops: storeOps{st}, Now: e.clock, Rate: 1, Burst: burst,
		Classify: func(err error) (int, string, []entities.Action) {
			switch {
			case errors.Is(err, store.ErrNotFound):
				return 3, "see the sites", []entities.Action{entities.Do("site.list", "")}
			case errors.As(err, new(*entities.InvalidError)):
				return 2, "", nil
			}
			return 1, "", nil
		}})
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// call makes a request as token (a key of tokens, or a literal header
// value after "raw:") and returns the status and body.
func (e *apiEnv) call(t *testing.T, token, method, path, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := strings.CutPrefix(token, "raw:"); ok {
		if v != "" {
			req.Header.Set("Authorization", v)
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+e.tokens[token])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func domains(t *testing.T, body string) []string {
	t.Helper()
	var sites []entities.Site
	if err := json.Unmarshal([]byte(body), &sites); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var out []string
	for _, v := range sites {
		out = append(out, v.Domain)
	}
	return out
}

func errorOf(t *testing.T, body string) (msg string, code int) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Hint  string `json:"hint"`
		Code  *int   `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.Code == nil {
		t.Fatalf("not the command line's JSON error: %v: %s", err, body)
	}
	return e.Error, *e.Code
}

func TestClientSeesOnlyItsSites(t *testing.T) {
	e := newAPIEnv(t, 100)
	code, body, _ := e.call(t, "ann", "GET", "/api/sites", "")
	if code != 200 || strings.Join(domains(t, body), ",") != "a.acme.test,a2.acme.test" {
		t.Fatalf("ann's sites: %d %s", code, body)
	}
	if strings.Contains(body, "web1") || strings.Contains(body, "secret-password") {
		t.Fatalf("a client's user sees a server name or a password: %s", body)
	}
	code, body, _ = e.call(t, "ann", "GET", "/api/sites?client=other", "")
	if code != 200 || len(domains(t, body)) != 0 {
		t.Fatalf("ann asking for other's sites: %d %s", code, body)
	}
	code, body, _ = e.call(t, "root", "GET", "/api/sites", "")
	if code != 200 || strings.Join(domains(t, body), ",") != "a.acme.test,a2.acme.test,b.other.test,c.none.test" {
		t.Fatalf("root's sites: %d %s", code, body)
	}
	if strings.Contains(body, "secret-password") || !strings.Contains(body, `"server":"web1"`) {
		t.Fatalf("admin's list: a password, or no server: %s", body)
	}

	code, body, _ = e.call(t, "ann", "GET", "/api/sites/A.acme.test", "")
	if code != 200 || !strings.Contains(body, `"domain":"a.acme.test"`) || strings.Contains(body, "secret-password") {
		t.Fatalf("ann's site: %d %s", code, body)
	}
	// Another client's site and one that does not exist: the same 404.
	for _, d := range []string{"b.other.test", "c.none.test", "nope.test"} {
		code, body, _ = e.call(t, "ann", "GET", "/api/sites/"+d, "")
		msg, exit := errorOf(t, body)
		if code != 404 || exit != 3 || msg != `site "`+d+`" not found` {
			t.Fatalf("ann GET %s: %d %s, want 404 not found", d, code, body)
		}
		// The hint's actions as they are, not worded as commands.
		if !strings.Contains(body, `"hint":"see the sites","fix":[{"verb":"site.list"}]`) {
			t.Fatalf("ann GET %s: the error does not carry its fix: %s", d, body)
		}
		code, body, _ = e.call(t, "ann", "POST", "/api/sites/"+d+"/backup", "")
		if code != 404 {
			t.Fatalf("ann POST %s/backup: %d %s, want 404", d, code, body)
		}
	}
	code, body, _ = e.call(t, "root", "GET", "/api/sites/b.other.test", "")
	if code != 200 {
		t.Fatalf("root GET b.other.test: %d %s", code, body)
	}
	code, body, _ = e.call(t, "ann", "GET", "/api/sites/not_a_domain!", "")
	if _, exit := errorOf(t, body); code != 400 || exit != 2 {
		t.Fatalf("bad domain: %d %s, want 400", code, body)
	}

	// Servers: admins only; platforms: a client's user sees the names
	// of those it may use.
	if code, body, _ = e.call(t, "ann", "GET", "/api/servers", ""); code != 403 {
		t.Fatalf("ann GET /api/servers: %d %s, want 403", code, body)
	}
	if code, body, _ = e.call(t, "root", "GET", "/api/servers", ""); code != 200 || !strings.Contains(body, `"name":"web1"`) {
		t.Fatalf("root GET /api/servers: %d %s", code, body)
	}
	code, body, _ = e.call(t, "ann", "GET", "/api/platforms", "")
	if code != 200 || strings.TrimSpace(body) != `[{"name":"locked","type":"","locked":true},{"name":"p1","type":"","locked":false}]` {
		t.Fatalf("ann GET /api/platforms: %d %s, want the enabled ones' names, types and locks alone (not the queued one)", code, body)
	}
	if code, body, _ = e.call(t, "ann", "GET", "/api/me", ""); code != 200 || !strings.Contains(body, `"client":"acme"`) {
		t.Fatalf("ann GET /api/me: %d %s", code, body)
	}
}

// DELETE /api/sites/{domain}: a client's user deletes its client's site
// (a backup first), not another's (404) nor without a backup (403); a
// read token may not (403); an admin may without a backup; a busy site is
// 409. Nothing is queued by a refusal.
func TestDeleteSite(t *testing.T) {
	e := newAPIEnv(t, 100)
	ctx := context.Background()
	queued := func(domain string) []*entities.Task {
		ts, err := e.st.ListTasks(ctx, store.TaskFilter{Target: domain, Status: "queued"})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	for _, c := range []struct {
		token, domain, body string
		code                int
	}{
		{"ann", "b.other.test", "", 404},
		{"ann", "c.none.test", "", 404},
		{"annread", "a.acme.test", "", 403},
		{"ann", "a.acme.test", `{"no_backup": true}`, 403},
		{"ann", "a.acme.test", `{"nope": 1}`, 400},
		{"olga", "a.acme.test", "", 404},
	} {
		if code, body, _ := e.call(t, c.token, "DELETE", "/api/sites/"+c.domain, c.body); code != c.code {
			t.Fatalf("%s DELETE %s %s: %d %s, want %d", c.token, c.domain, c.body, code, body, c.code)
		}
		if q := queued(c.domain); len(q) != 0 {
			t.Fatalf("a refused delete queued %+v", q)
		}
	}
	code, body, _ := e.call(t, "ann", "DELETE", "/api/sites/A.ACME.TEST", "")
	var task entities.Task
	if err := json.Unmarshal([]byte(body), &task); code != 202 || err != nil || task.Type != entities.TaskSiteDelete || task.Options["no_backup"] != "" {
		t.Fatalf("ann's delete: %d %s", code, body)
	}
	if code, body, _ := e.call(t, "ann", "DELETE", "/api/sites/a.acme.test", ""); code != 409 || !strings.Contains(body, "is busy") {
		t.Fatalf("a second delete: %d %s", code, body)
	}
	code, body, _ = e.call(t, "root", "DELETE", "/api/sites/c.none.test", `{"no_backup": true}`)
	if err := json.Unmarshal([]byte(body), &task); code != 202 || err != nil || task.Type != entities.TaskSiteDelete {
		t.Fatalf("root's delete without a backup: %d %s", code, body)
	}
	if q := queued("c.none.test"); len(q) != 1 || q[0].Options["no_backup"] != "1" {
		t.Fatalf("root's delete: %+v", q)
	}
	// POST .../delete is no verb.
	if code, _, _ := e.call(t, "root", "POST", "/api/sites/b.other.test/delete", ""); code != 404 {
		t.Fatalf("POST .../delete: %d, want 404", code)
	}
}

func TestChangesQueueTasksForTheCallersSites(t *testing.T) {
	e := newAPIEnv(t, 100)
	code, body, _ := e.call(t, "ann", "POST", "/api/sites/a.acme.test/backup", "")
	var task entities.Task
	if err := json.Unmarshal([]byte(body), &task); code != 202 || err != nil || task.ID == 0 || task.Type != entities.TaskSiteBackup || task.Status != "queued" {
		t.Fatalf("ann's backup: %d %s", code, body)
	}
	// A second change while the first is queued: 409, nothing queued.
	code, body, _ = e.call(t, "ann", "POST", "/api/sites/a.acme.test/cron", "")
	if _, exit := errorOf(t, body); code != 409 || exit != 4 {
		t.Fatalf("beside a queued task: %d %s, want 409 and exit 4", code, body)
	}
	ts, err := e.st.ListTasks(context.Background(), store.TaskFilter{Target: "a.acme.test", Status: "queued"})
	if err != nil || len(ts) != 1 || ts[0].ID != task.ID {
		t.Fatalf("queued on a.acme.test: %+v %v, want the backup alone", ts, err)
	}

	// The task: ann's and root's to see, not olga's.
	id := strconv.FormatInt(task.ID, 10)
	if code, body, _ = e.call(t, "ann", "GET", "/api/tasks/"+id, ""); code != 200 || !strings.Contains(body, `"target":"a.acme.test"`) {
		t.Fatalf("ann's task: %d %s", code, body)
	}
	if code, body, _ = e.call(t, "root", "GET", "/api/tasks/"+id+"/log", ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("root's view of its log: %d %s", code, body)
	}
	// Its log: a client's user sees no commands, output or debug lines
	// (they name servers and paths); an admin sees them all.
	for _, l := range []entities.LogLine{{Level: entities.LevelInfo, Message: "backing up a.acme.test"},
		{Level: entities.LevelCommand, Message: "web1: mysqldump a_acme"}, {Level: entities.LevelOutput, Message: "dump of 10.0.0.7"},
		{Level: entities.LevelDebug, Message: "ssh to web1.internal"}} {
		if err := e.st.AppendLog(context.Background(), task.ID, l); err != nil {
			t.Fatal(err)
		}
	}
	if code, body, _ = e.call(t, "ann", "GET", "/api/tasks/"+id+"/log", ""); code != 200 || !strings.Contains(body, "backing up a.acme.test") ||
		strings.Contains(body, "web1") || strings.Contains(body, "10.0.0.7") {
		t.Fatalf("ann's task log: %d %s, want the info line alone", code, body)
	}
	if code, body, _ = e.call(t, "root", "GET", "/api/tasks/"+id+"/log", ""); code != 200 || !strings.Contains(body, "mysqldump") || !strings.Contains(body, "web1.internal") {
		t.Fatalf("root's task log: %d %s, want every line", code, body)
	}
	if code, body, _ = e.call(t, "ann", "GET", "/api/sites/a.acme.test/tasks", ""); code != 200 || !strings.Contains(body, `"id":`+id+`,`) || strings.Contains(body, "b.other.test") {
		t.Fatalf("ann's site's tasks: %d %s", code, body)
	}
	for _, p := range []string{"/api/tasks/" + id, "/api/tasks/" + id + "/log", "/api/sites/a.acme.test/tasks"} {
		if code, body, _ = e.call(t, "olga", "GET", p, ""); code != 404 {
			t.Fatalf("olga GET %s: %d %s, want 404", p, code, body)
		}
	}
	// A server's task is no client's.
	srv, err := e.st.GetServer(context.Background(), "web1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.st.QueueTask(context.Background(), entities.TaskServerVerify, entities.TargetServer, srv.ID, "web1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ = e.call(t, "ann", "GET", "/api/tasks/"+strconv.FormatInt(st.ID, 10), ""); code != 404 {
		t.Fatalf("ann GET a server's task: %d %s, want 404", code, body)
	}

	// A read token reads, and changes nothing.
	if code, body, _ = e.call(t, "annread", "GET", "/api/sites", ""); code != 200 {
		t.Fatalf("read token GET: %d %s", code, body)
	}
	if code, body, _ = e.call(t, "annread", "POST", "/api/sites/a2.acme.test/backup", ""); code != 403 {
		t.Fatalf("read token POST: %d %s, want 403", code, body)
	}
	// An install by a client's user is its client's, whatever it says,
	// and only on a platform it may use.
	code, body, _ = e.call(t, "ann", "POST", "/api/sites", `{"domain":"new.acme.test", "platform":"p1", "client":"other"}`)
	if code != 202 {
		t.Fatalf("ann's install: %d %s", code, body)
	}
	if v, err := e.st.GetSite(context.Background(), "new.acme.test"); err != nil || v.Client != "acme" {
		t.Fatalf("ann's new site: %+v %v, want acme's", v, err)
	}
	// A locked platform takes no new site: 409 as a quota, for a client's
	// user and an admin alike; nothing is recorded.
	for _, who := range []string{"ann", "root"} {
		code, body, _ = e.call(t, who, "POST", "/api/sites", `{"domain":"l.acme.test", "platform":"locked", "client":"acme"}`)
		if msg, _ := errorOf(t, body); code != 409 || msg != `platform "locked" is locked: it takes no new sites` {
			t.Fatalf("%s's install on a locked platform: %d %s, want 409 saying it is locked", who, code, body)
		}
		if _, err := e.st.GetSite(context.Background(), "l.acme.test"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s's refused install was recorded: %v", who, err)
		}
	}
	// sync: onto a site of the caller's from a site it sees; a source of
	// another client's is not found as one that does not exist; sync's
	// fields are sync's alone, and its source is required.
	_, nope, _ := e.call(t, "ann", "POST", "/api/sites/a2.acme.test/sync", `{"source":"nope.other.test"}`)
	code, body, _ = e.call(t, "ann", "POST", "/api/sites/a2.acme.test/sync", `{"source":"b.other.test"}`)
	if code != 404 || strings.ReplaceAll(body, "b.other.test", "nope.other.test") != nope {
		t.Fatalf("ann's sync from another client's site: %d %s, want 404 as for one that does not exist: %s", code, body, nope)
	}
	for _, c := range []struct{ path, body string }{{"/api/sites/a2.acme.test/sync", `{}`}, {"/api/sites/a2.acme.test/sync", `{"db":true}`},
		{"/api/sites/a2.acme.test/backup", `{"source":"a.acme.test"}`}} {
		if code, body, _ = e.call(t, "ann", "POST", c.path, c.body); code != 400 || !strings.Contains(body, "source") {
			t.Fatalf("ann POST %s %s: %d %s, want 400 naming source", c.path, c.body, code, body)
		}
	}
	if ts, _ := e.st.ListTasks(context.Background(), store.TaskFilter{Target: "a2.acme.test", Status: "queued"}); len(ts) != 0 {
		t.Fatalf("a refused sync was queued: %+v", ts)
	}
	code, body, _ = e.call(t, "ann", "POST", "/api/sites/a2.acme.test/sync", `{"source":"A.acme.test", "files":true}`)
	if code != 202 || !strings.Contains(body, `"type":"site.sync"`) {
		t.Fatalf("ann's sync: %d %s, want 202 and its task", code, body)
	}

	// A platform a client's user may not use (not enabled yet), locked
	// or not, is not found as one that does not exist: the same answer
	// but for the name, never the lock's 409.
	_, nope, _ = e.call(t, "ann", "POST", "/api/sites", `{"domain":"q.acme.test", "platform":"nope"}`)
	code, body, _ = e.call(t, "ann", "POST", "/api/sites", `{"domain":"q.acme.test", "platform":"queued-locked"}`)
	if code != 404 || strings.ReplaceAll(body, "queued-locked", "nope") != nope {
		t.Fatalf("ann's install on a locked platform not enabled yet: %d %s, want 404 as for one that does not exist: %s", code, body, nope)
	}
	if code, body, _ = e.call(t, "ann", "POST", "/api/sites", `{"domain":"x.acme.test", "platfrom":"p1"}`); code != 400 || !strings.Contains(body, "platfrom") {
		t.Fatalf("an unknown key: %d %s, want 400 naming it", code, body)
	}
	if code, body, _ = e.call(t, "ann", "POST", "/api/sites/a2.acme.test/explode", ""); code != 404 {
		t.Fatalf("an unknown verb: %d %s, want 404", code, body)
	}
	if _, err := e.st.GetSite(context.Background(), "l.acme.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused install was recorded: %v", err)
	}
}

func TestTokenRefused(t *testing.T) {
	e := newAPIEnv(t, 100)
	ctx := context.Background()
	_, expiring, err := e.st.CreateToken(ctx, "ann", "write", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tok, revoked, err := e.st.CreateToken(ctx, "ann", "write", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"raw:Bearer " + expiring, "raw:Bearer " + revoked} {
		if code, body, _ := e.call(t, h, "GET", "/api/sites", ""); code != 200 {
			t.Fatalf("live token: %d %s", code, body)
		}
	}
	if _, err := e.st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.advance(2 * time.Minute)
	for what, h := range map[string]string{
		"expired": "raw:Bearer " + expiring, "revoked": "raw:Bearer " + revoked, "unknown": "raw:Bearer aegir_nope",
		"none": "raw:", "not bearer": "raw:Basic " + revoked,
	} {
		code, body, hdr := e.call(t, h, "GET", "/api/sites", "")
		if _, exit := errorOf(t, body); code != 401 || exit != 2 || hdr.Get("WWW-Authenticate") == "" || strings.Contains(body, "a.acme.test") {
			t.Fatalf("%s token: %d %v %s, want 401 with WWW-Authenticate and nothing else", what, code, hdr, body)
		}
		if code, _, _ := e.call(t, h, "POST", "/api/sites/a.acme.test/backup", ""); code != 401 {
			t.Fatalf("%s token POST: %d, want 401", what, code)
		}
	}
	if ts, _ := e.st.ListTasks(ctx, store.TaskFilter{Status: "queued", TargetKind: entities.TargetSite}); len(ts) != 0 {
		t.Fatalf("refused tokens queued tasks: %+v", ts)
	}
}

func TestRateLimitPerToken(t *testing.T) {
	e := newAPIEnv(t, 3)
	for i := 0; i < 3; i++ {
		if code, body, _ := e.call(t, "ann", "GET", "/api/me", ""); code != 200 {
			t.Fatalf("request %d: %d %s", i+1, code, body)
		}
	}
	code, body, hdr := e.call(t, "ann", "GET", "/api/me", "")
	if _, exit := errorOf(t, body); code != 429 || exit != 4 || hdr.Get("Retry-After") != "1" {
		t.Fatalf("4th request at once: %d %v %s, want 429 with Retry-After 1", code, hdr, body)
	}
	// Another token has its own bucket.
	if code, body, _ := e.call(t, "olga", "GET", "/api/me", ""); code != 200 {
		t.Fatalf("olga: %d %s", code, body)
	}
	e.advance(time.Second)
	if code, body, _ := e.call(t, "ann", "GET", "/api/me", ""); code != 200 {
		t.Fatalf("a second later: %d %s", code, body)
	}
	if code, _, _ := e.call(t, "ann", "GET", "/api/me", ""); code != 429 {
		t.Fatalf("then at once again: %d, want 429", code)
	}
}

// Refused tokens from one address: after FailBurst (10) of them every
// request from there is 429 with Retry-After, a good token's too, until
// the bucket refills (one every 10 s); another address is not held back,
// and requests without a token are not counted.
func TestRefusedTokensLimitedPerAddress(t *testing.T) {
	e := newAPIEnv(t, 1000)
	for i := 0; i < 20; i++ {
		if code, _, _ := e.call(t, "raw:", "GET", "/api/me", ""); code != 401 {
			t.Fatalf("no token %d: %d, want 401", i+1, code)
		}
	}
	for i := 0; i < 10; i++ {
		if code, body, _ := e.call(t, "raw:Bearer aegir_guess"+strconv.Itoa(i), "GET", "/api/me", ""); code != 401 {
			t.Fatalf("bad token %d: %d %s, want 401", i+1, code, body)
		}
	}
	code, body, hdr := e.call(t, "raw:Bearer aegir_guess10", "GET", "/api/me", "")
	if _, exit := errorOf(t, body); code != 429 || exit != 4 || hdr.Get("Retry-After") != "10" || !strings.Contains(body, "too many refused tokens from 127.0.0.1") {
		t.Fatalf("the 11th bad token: %d %v %s, want 429 with Retry-After 10", code, hdr, body)
	}
	if code, body, _ := e.call(t, "ann", "GET", "/api/me", ""); code != 429 {
		t.Fatalf("a good token from the address: %d %s, want 429", code, body)
	}
	// Another address.
	req := httptest.NewRequest("GET", "/api/me", nil)
	req.RemoteAddr = "192.0.2.7:4321"
	req.Header.Set("Authorization", "Bearer "+e.tokens["ann"])
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("ann from another address: %d %s", rec.Code, rec.Body)
	}
	e.advance(10 * time.Second)
	if code, body, _ := e.call(t, "ann", "GET", "/api/me", ""); code != 200 {
		t.Fatalf("10 s later, a good token: %d %s", code, body)
	}
	if code, _, _ := e.call(t, "raw:Bearer aegir_guess11", "GET", "/api/me", ""); code != 401 {
		t.Fatalf("10 s later, a bad token: %d, want 401", code)
	}
	if code, _, _ := e.call(t, "raw:Bearer aegir_guess12", "GET", "/api/me", ""); code != 429 {
		t.Fatalf("and at once another: %d, want 429", code)
	}
	// The dashboard's sign-in counts too.
	b := newBrowser(t, e.url)
	_, page := b.do(t, "GET", "/", nil, nil)
	if resp, body := b.do(t, "POST", "/login", url.Values{"token": {e.tokens["ann"]}, "csrf": {csrfOf(t, page)}}, nil); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("sign-in from the address: %d %s", resp.StatusCode, body)
	}
}

func TestAuditLogOfEveryRequest(t *testing.T) {
	e := newAPIEnv(t, 100)
	e.call(t, "raw:", "GET", "/api/sites", "")
	e.call(t, "ann", "GET", "/api/sites/b.other.test", "")
	_, body, _ := e.call(t, "ann", "POST", "/api/sites/a.acme.test/verify", "")
	var task entities.Task
	if err := json.Unmarshal([]byte(body), &task); err != nil || task.ID == 0 {
		t.Fatalf("verify: %s", body)
	}
	e.call(t, "raw:", "GET", "/api/openapi.json", "")
	log, err := e.st.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range log {
		got = append(got, l.User+" "+l.Method+" "+l.Path+" "+strconv.Itoa(l.Status)+" "+strconv.FormatInt(l.TaskID, 10))
		if l.User == "ann" && l.TokenID == 0 {
			t.Errorf("entry %+v: no token id", l)
		}
		if l.Source != "127.0.0.1" {
			t.Errorf("entry %+v: source %q, want 127.0.0.1", l, l.Source)
		}
	}
	want := []string{" GET /api/sites 401 0", "ann GET /api/sites/b.other.test 404 0",
		"ann POST /api/sites/a.acme.test/verify 202 " + strconv.FormatInt(task.ID, 10), " GET /api/openapi.json 200 0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var lastUsed *time.Time
	toks, _ := e.st.ListTokens(context.Background(), "ann")
	for _, tk := range toks {
		if tk.Scope == "write" {
			lastUsed = tk.LastUsed
		}
	}
	if lastUsed == nil {
		t.Fatal("ann's token not marked used")
	}
}

func TestOpenAPIDocument(t *testing.T) {
	e := newAPIEnv(t, 100)
	code, served, _ := e.call(t, "raw:", "GET", "/api/openapi.json", "")
	if code != 200 {
		t.Fatalf("GET /api/openapi.json: %d", code)
	}
	file, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(served), file) {
		t.Fatal("docs/openapi.json differs from the served document (pkg/api/openapi.json): copy it there")
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(file, &doc); err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, r := range api.Routes() {
		routes[r] = true
		method, path, _ := strings.Cut(r, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if !routes[strings.ToUpper(m)+" "+path] {
				t.Errorf("the OpenAPI document has %s %s, which the server does not serve", strings.ToUpper(m), path)
			}
		}
	}
	if code, body, _ := e.call(t, "ann", "GET", "/api/nope", ""); code != 404 || !strings.Contains(body, `"exit_code":3`) {
		t.Fatalf("an unknown path: %d %s, want a JSON 404", code, body)
	}
}

// A token's last use is written with the first request's audit entry and
// then at most once a minute; every request still has its entry.
func TestLastUseWrittenOncePerMinute(t *testing.T) {
	e := newAPIEnv(t, 100)
	ctx := context.Background()
	lastUsed := func() time.Time {
		t.Helper()
		toks, err := e.st.ListTokens(ctx, "olga")
		if err != nil || len(toks) != 1 || toks[0].LastUsed == nil {
			t.Fatalf("olga's token: %+v %v", toks, err)
		}
		return *toks[0].LastUsed
	}
	start := e.clock()
	e.call(t, "olga", "GET", "/api/me", "")
	if got := lastUsed(); !got.Equal(start.Truncate(time.Millisecond)) {
		t.Fatalf("last used %v, want %v", got, start)
	}
	e.advance(30 * time.Second)
	e.call(t, "olga", "GET", "/api/sites", "")
	if got := lastUsed(); !got.Equal(start.Truncate(time.Millisecond)) {
		t.Fatalf("30 s later: last used %v, want it left at %v", got, start)
	}
	e.advance(31 * time.Second)
	e.call(t, "olga", "GET", "/api/me", "")
	if got, want := lastUsed(), e.clock().Truncate(time.Millisecond); !got.Equal(want) {
		t.Fatalf("61 s later: last used %v, want %v", got, want)
	}
	log, err := e.st.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range log {
		if l.User == "olga" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d audit entries of olga's, want 3: %+v", n, log)
	}
}
