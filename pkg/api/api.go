// Package api is aegir's HTTP API (aegir serve): JSON over the operations
// of the command line, each authorised by a user's token and client.
//
// Reading is done here, on the state; every change is a task, recorded by
// the Ops the command line gives (the same code its commands run), so
// that a change through the API is queued exactly as one from the command
// line. A client's user sees only its client's sites and what belongs to
// them: another client's site is not found (404), as one that does not
// exist, so that names do not leak. Errors are the command line's JSON
// errors ({error, hint, exit_code}) with an HTTP status.
//
// New builds the server; its Mux is where other handlers (the dashboard
// at /) mount, and Protect wraps them in the same authentication, rate
// limit and audit log.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// OpenAPI is the API's OpenAPI 3 document, served at /api/openapi.json
// (docs/openapi.json is a copy, which a test keeps equal).
//
//go:embed openapi.json
var OpenAPI []byte

// Ops are the changes the API asks of the front end: the same code the
// command line's commands run, so that both record a task the same way.
// Every method refuses a site that has a task queued or running with a
// *store.HeldError (or another error that maps to exit 4), and bad input
// with the command line's errors (exit 2).
type Ops interface {
	// Details adds to site v what site show prints beside the record:
	// its statistics and certificate.
	Details(ctx context.Context, v *entities.Site) error
	// Install records a new site and queues its install task.
	Install(ctx context.Context, r *InstallRequest) (*entities.Task, error)
	// Queue queues the task of verb (backup, restore, verify ..., and
	// delete) on the site, with r's options.
	Queue(ctx context.Context, v *entities.Site, verb string, r *VerbRequest) (*entities.Task, error)
	// LoginReset runs a login-reset task on the site now and returns the
	// one-time login link it made, which is stored nowhere.
	LoginReset(ctx context.Context, v *entities.Site) (*entities.Task, string, error)
}

// InstallRequest is the body of POST /api/sites: site install's flags.
type InstallRequest struct {
	Domain     string   `json:"domain"`
	Platform   string   `json:"platform"`
	DBServer   string   `json:"db_server,omitempty"`
	Client     string   `json:"client,omitempty"` // a client's user: its own client, whatever is given
	Profile    string   `json:"profile,omitempty"`
	Language   string   `json:"language,omitempty"`
	HTTPS      string   `json:"https,omitempty"`
	Aliases    []string `json:"aliases,omitempty"`
	Redirect   bool     `json:"redirect,omitempty"`
	Title      string   `json:"title,omitempty"`
	AdminUser  string   `json:"admin_user,omitempty"`
	AdminEmail string   `json:"admin_email,omitempty"`
}

// VerbRequest is the body of POST /api/sites/{domain}/{verb}, which may
// be empty: restore's backup (0: the newest); sync's source (the site
// copied onto {domain}, one the caller sees), what it copies (db, files:
// both when both or neither are given), updatedb, and force (onto a
// disabled site), as site sync's flags.
type VerbRequest struct {
	Backup   int64  `json:"backup,omitempty"`
	Source   string `json:"source,omitempty"`
	DB       bool   `json:"db,omitempty"`
	Files    bool   `json:"files,omitempty"`
	UpdateDB bool   `json:"updatedb,omitempty"`
	Force    bool   `json:"force,omitempty"`
	// NoBackup is a delete's (DELETE /api/sites/{domain}): no backup
	// first; an admin's only.
	NoBackup bool `json:"-"`
}

// DeleteRequest is the body of DELETE /api/sites/{domain}, which may be
// empty.
type DeleteRequest struct {
	NoBackup bool `json:"no_backup,omitempty"`
}

// Verbs are the verbs of POST /api/sites/{domain}/{verb}.
var Verbs = []string{"backup", "restore", "login-reset", "verify", "cron", "disable", "enable", "updatedb", "stats", "sync"}

// Config is what a Server needs.
type Config struct {
	Store *store.Store
	Ops   Ops
	// Classify maps an error to the command line's exit code, its hint
	// and the actions the hint proposes (the command line's own rule, the
	// actions not worded as its commands), for the errors' JSON.
	Classify func(error) (code int, hint string, fix []entities.Action)
	// Rate is the requests a second each token may make, Burst how many
	// at once (a token bucket); 0: 10 and 20.
	Rate  float64
	Burst int
	// FailRate and FailBurst limit the refused tokens (401) of one source
	// address: FailBurst at once, then FailRate a second; beyond, every
	// request from there is 429 until its bucket refills. 0: 0.1 (one
	// every 10 seconds) and 10.
	FailRate  float64
	FailBurst int
	// Now is the clock (tests set it); nil: time.Now.
	Now func() time.Time
	// Poll is how often a followed task log is read again; 0: 250 ms.
	Poll time.Duration
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	limits *limiter[int64]  // requests per token
	fails  *limiter[string] // refused tokens per source address
	dash   *dashboard
	used   *lastUse // when each token's last use was written
}

// route is one operation of the API: its method and path pattern (the
// ServeMux's, also the OpenAPI document's path), whether it changes
// anything (a write token only) and its handler.
type route struct {
	method, path string
	write        bool
	h            func(*Server, *request) (int, any, error)
}

// routes are every operation of the API; the OpenAPI document has each.
var routes = []route{
	{"GET", "/api/me", false, (*Server).me},
	{"GET", "/api/sites", false, (*Server).listSites},
	{"POST", "/api/sites", true, (*Server).installSite},
	{"GET", "/api/sites/{domain}", false, (*Server).showSite},
	{"DELETE", "/api/sites/{domain}", true, (*Server).deleteSite},
	{"GET", "/api/sites/{domain}/backups", false, (*Server).siteBackups},
	{"GET", "/api/sites/{domain}/tasks", false, (*Server).siteTasks},
	{"POST", "/api/sites/{domain}/{verb}", true, (*Server).siteVerb},
	{"GET", "/api/tasks/{id}", false, (*Server).showTask},
	{"GET", "/api/tasks/{id}/log", false, (*Server).taskLog},
	{"GET", "/api/platforms", false, (*Server).listPlatforms},
	{"GET", "/api/servers", false, (*Server).listServers},
}

// New builds the API server of cfg.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 10
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 20
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.FailRate <= 0 {
		cfg.FailRate = 0.1
	}
	if cfg.FailBurst <= 0 {
		cfg.FailBurst = 10
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), limits: newLimiter[int64](cfg.Rate, cfg.Burst), fails: newLimiter[string](cfg.FailRate, cfg.FailBurst),
		used: &lastUse{at: map[int64]time.Time{}}}
	for _, rt := range routes {
		rt := rt
		s.mux.Handle(rt.method+" "+rt.path, s.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, rt)
		})))
	}
	s.mux.Handle("GET /api/openapi.json", s.audited(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})))
	s.mountDashboard()
	// Anything else under /api/ is a JSON 404, not the mux's text.
	s.mux.Handle("/api/", s.audited(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, &apiError{status: http.StatusNotFound, msg: "no such API path: " + r.Method + " " + r.URL.Path, hint: "see /api/openapi.json", code: 3})
	})))
	return s
}

// Mux is the server's request multiplexer: other handlers (the dashboard
// at "GET /") are mounted on it, wrapped in Protect when they need a user.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// ServeHTTP serves the API (and whatever was mounted on Mux).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Routes are the method and path pattern of every operation, as the
// OpenAPI document lists them (GET /api/sites/{domain} ...).
func Routes() []string {
	out := make([]string, 0, len(routes)+1)
	for _, rt := range routes {
		out = append(out, rt.method+" "+rt.path)
	}
	return append(out, "GET /api/openapi.json")
}

// request is one authorised request to an operation.
type request struct {
	*http.Request
	caller *Caller
	rec    *record
	w      http.ResponseWriter // for a handler that streams its answer
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) {
	c := CallerFrom(r.Context())
	if rt.write && c.Token.Scope != entities.ScopeWrite {
		s.writeError(w, &apiError{status: http.StatusForbidden, code: 2, msg: "this token may only read (scope read)",
			hint: "make a write token: aegir token create --user " + c.User.Name + " --scope write"})
		return
	}
	rec := recordFrom(r.Context())
	status, body, err := rt.h(s, &request{Request: r, caller: c, rec: rec, w: w})
	if err != nil {
		s.writeError(w, err)
		return
	}
	if status == 0 {
		return // the handler wrote the response itself
	}
	if t, ok := body.(*entities.Task); ok && rec != nil {
		rec.taskID = t.ID
	}
	writeJSON(w, status, body)
}

// listBuf keeps the buffer the last list of sites was written in, for
// the next list: a list of 10,000 is about 4 MB, which the collector
// would otherwise sweep at every request (a sync.Pool loses it at every
// collection). Requests at the same time each take a buffer of their own.
var listBuf struct {
	sync.Mutex
	b []byte
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	if l, ok := body.(siteList); ok {
		listBuf.Lock()
		b := listBuf.b
		listBuf.b = nil
		listBuf.Unlock()
		if b == nil {
			b = make([]byte, 0, 512*len(l)+16) // a site is 300 to 450 bytes
		}
		b, err := l.appendJSON(b[:0])
		if err == nil {
			w.WriteHeader(status)
			_, _ = w.Write(b)
		}
		if cap(b) <= 64<<20 {
			listBuf.Lock()
			if cap(b) > cap(listBuf.b) {
				listBuf.b = b[:0]
			}
			listBuf.Unlock()
		}
		if err == nil {
			return
		}
		// The error encoding/json gives, as before.
	}
	w.WriteHeader(status)
	// Compact: a list of 10,000 sites indented takes a third longer to
	// write (jq or python -m json.tool indent it for people).
	_ = json.NewEncoder(w).Encode(body)
}

// apiError is an error of the API itself (authentication, scope, rate,
// a body that is not JSON), with its status.
type apiError struct {
	status int
	code   int // the command line's exit code it is like
	msg    string
	hint   string
	retry  time.Duration // 429: Retry-After
}

func (e *apiError) Error() string { return e.msg }

// HTTPStatuser is an error that says its own HTTP status: a change a
// client's quota refuses answers 409 this way.
type HTTPStatuser interface{ HTTPStatus() int }

// errorBody is the command line's JSON error, its hint in neutral words
// and the actions it proposes as they are (the command line words them as
// its commands).
type errorBody struct {
	Error string            `json:"error"`
	Hint  string            `json:"hint,omitempty"`
	Fix   []entities.Action `json:"fix,omitempty"`
	Code  int               `json:"exit_code"`
}

// status maps an error to its HTTP status and the command line's exit
// code and hint: bad input 400, not found 404, busy or a conflict 409.
func (s *Server) status(err error) (int, errorBody) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, errorBody{Error: ae.msg, Hint: ae.hint, Code: ae.code}
	}
	code, hint, fix := 1, "", []entities.Action(nil)
	if s.cfg.Classify != nil {
		code, hint, fix = s.cfg.Classify(err)
	}
	b := errorBody{Error: err.Error(), Hint: hint, Fix: fix, Code: code}
	var hs HTTPStatuser
	var held *store.HeldError
	switch {
	case errors.As(err, &hs):
		return hs.HTTPStatus(), b
	case errors.As(err, &held):
		b.Code = 4
		return http.StatusConflict, b
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, b
	}
	switch code {
	case 2:
		return http.StatusBadRequest, b
	case 3:
		return http.StatusNotFound, b
	case 4:
		return http.StatusConflict, b
	}
	return http.StatusInternalServerError, b
}

func (s *Server) writeError(w http.ResponseWriter, err error) {
	st, b := s.status(err)
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aegir"`)
	}
	retryAfter(w, err)
	writeJSON(w, st, b)
}

// retryAfter sets Retry-After when err is a 429's.
func retryAfter(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) && ae.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.retry.Seconds()))))
	}
}

// notFound is the error for a record the caller may not see or that does
// not exist: the same for both.
func notFound(kind, name string) error { return &store.NotFoundError{Kind: kind, Name: name} }

// taskID parses the {id} of a task path.
func taskID(r *request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, entities.Invalid("task ID", r.PathValue("id"), "must be a positive whole number")
	}
	return id, nil
}

// limiter is a token bucket per key: an API token's id (its requests),
// a source address (its refused tokens).
type limiter[K comparable] struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter[K comparable](rate float64, burst int) *limiter[K] {
	return &limiter[K]{rate: rate, burst: float64(burst), buckets: map[K]*bucket{}}
}

// maxBuckets is how many keys a limiter keeps before it forgets those
// whose bucket is full again (as good as new).
const maxBuckets = 10000

// fill is key's bucket at now, refilled (l.mu held).
func (l *limiter[K]) fill(key K, now time.Time) *bucket {
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			for k, o := range l.buckets {
				if o.tokens+now.Sub(o.at).Seconds()*l.rate >= l.burst {
					delete(l.buckets, k)
				}
			}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = min(l.burst, b.tokens+d*l.rate)
	}
	b.at = now
	return b
}

// allow takes one from key's bucket at now; false (with how long until
// one is there) when it is empty.
func (l *limiter[K]) allow(key K, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.fill(key, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, l.wait(b)
}

// check says whether key's bucket has one at now without taking it
// (take takes it): false with how long until it has.
func (l *limiter[K]) check(key K, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.fill(key, now)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, l.wait(b)
}

// take takes one from key's bucket at now, if it has one.
func (l *limiter[K]) take(key K, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.fill(key, now); b.tokens >= 1 {
		b.tokens--
	}
}

func (l *limiter[K]) wait(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}
