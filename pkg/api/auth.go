package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// Caller is who made a request: the user and the token it gave.
type Caller struct {
	User  *entities.User
	Token *entities.Token
}

// Admin says whether the caller may see and change everything.
func (c *Caller) Admin() bool { return c.User.Admin() }

// Sees says whether the caller may see site v: an admin every site, a
// client's user its client's.
func (c *Caller) Sees(v *entities.Site) bool {
	return c.Admin() || (c.User.Client != "" && v.Client == c.User.Client)
}

type ctxKey int

const (
	callerKey ctxKey = iota
	recordKey
)

// CallerFrom is the caller of a request that went through Protect; nil
// for one that did not.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey).(*Caller)
	return c
}

// record is what the audit log says of a request: set while it is
// served.
type record struct {
	user    string
	tokenID int64
	taskID  int64
}

func recordFrom(ctx context.Context) *record {
	r, _ := ctx.Value(recordKey).(*record)
	return r
}

// Protect lets only requests with a live token through to h, within the
// token's rate, with the Caller in their context (CallerFrom), and writes
// every request, refused or not, to the audit log.
func (s *Server) Protect(h http.Handler) http.Handler {
	return s.audited(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.admit(r, func() (string, error) { return bearer(r) })
		if err != nil {
			s.writeError(w, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
	}))
}

// unauthorized is the 401 of every refused token; none says more than
// the caller knows.
func unauthorized(msg string) error {
	return &apiError{status: http.StatusUnauthorized, code: 2, msg: msg, hint: "give a live token as Authorization: Bearer TOKEN (aegir token create --user NAME)"}
}

// errNoToken is a request without a token: refused, but not counted
// against its address as a bad token is.
var errNoToken = unauthorized("no token: this request needs Authorization: Bearer TOKEN")

// bearer is the token of r's Authorization: Bearer header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errNoToken
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return "", unauthorized("the Authorization header is not Bearer TOKEN")
	}
	return strings.TrimSpace(secret), nil
}

// source is the address a request came from (its connection's, without
// the port; a proxy's own for every request through it).
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// admit finds the caller of r from the token secret gives, records it in
// the request's audit entry, and takes the request from the token's
// rate. An address whose refused tokens spent its bucket is refused at
// once (429), before its token is looked at, so that tokens cannot be
// guessed from there at more than FailRate a second.
func (s *Server) admit(r *http.Request, secret func() (string, error)) (*Caller, error) {
	now := s.cfg.Now()
	from := source(r)
	if ok, wait := s.fails.check(from, now); !ok {
		return nil, &apiError{status: http.StatusTooManyRequests, code: 4, retry: wait,
			msg:  "too many refused tokens from " + from,
			hint: "wait " + wait.Round(time.Second).String() + " and try again with a live token"}
	}
	c, err := s.authenticate(r.Context(), secret)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusUnauthorized && err != errNoToken {
		s.fails.take(from, now)
	}
	if err != nil {
		return nil, err
	}
	if rec := recordFrom(r.Context()); rec != nil {
		rec.user, rec.tokenID = c.User.Name, c.Token.ID
	}
	if ok, wait := s.limits.allow(c.Token.ID, now); !ok {
		return nil, &apiError{status: http.StatusTooManyRequests, code: 4, retry: wait,
			msg:  fmt.Sprintf("too many requests with token %d: at most %g a second", c.Token.ID, s.cfg.Rate),
			hint: "wait " + wait.Round(1e6).String() + " and try again"}
	}
	return c, nil
}

// authenticate finds the caller whose token secret gives. Every failure
// is 401.
func (s *Server) authenticate(ctx context.Context, secret func() (string, error)) (*Caller, error) {
	tok, err := secret()
	if err != nil {
		return nil, err
	}
	t, u, err := s.cfg.Store.Authenticate(ctx, tok)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("the token is not valid")
	}
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	switch {
	case t.Revoked != nil:
		return nil, unauthorized(fmt.Sprintf("token %d was revoked", t.ID))
	case !t.Live(now):
		return nil, unauthorized(fmt.Sprintf("token %d expired", t.ID))
	}
	return &Caller{User: u, Token: t}, nil
}

// audited writes every request h serves to the audit log: when, who
// (once known), what, the status answered and the task it queued.
func (s *Server) audited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if recordFrom(r.Context()) != nil {
			h.ServeHTTP(w, r) // already audited further out
			return
		}
		rec := &record{}
		sw := &statusWriter{ResponseWriter: w}
		at := s.cfg.Now()
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), recordKey, rec)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		// The request's context may be done (a client that hung up):
		// the entry is written all the same.
		e := &entities.AuditEntry{
			Time: at, User: rec.user, TokenID: rec.tokenID, Method: r.Method, Path: r.URL.Path, Status: sw.status, TaskID: rec.taskID, Source: source(r),
		}
		ctx := context.WithoutCancel(r.Context())
		if rec.tokenID != 0 && s.used.due(rec.tokenID, at) {
			_ = s.cfg.Store.RecordRequest(ctx, e)
		} else {
			_ = s.cfg.Store.AppendAudit(ctx, e)
		}
	})
}

// usedEvery is how often a token's last use is written: at most once a
// minute, beside the audit entry of a request, rather than a write on
// every request.
const usedEvery = time.Minute

// lastUse says when each token's last use was written by this server.
type lastUse struct {
	mu sync.Mutex
	at map[int64]time.Time
}

// due says whether token id's use at now is to be written, and if so
// takes it as written.
func (l *lastUse) due(id int64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.at[id]; ok && now.Sub(last) < usedEvery && !now.Before(last) {
		return false
	}
	if len(l.at) >= maxBuckets {
		clear(l.at)
	}
	l.at[id] = now
	return true
}

// statusWriter keeps the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets a streamed task log reach the caller line by line.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
