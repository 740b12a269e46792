package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

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
		c, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, err)
			return
		}
		rec := recordFrom(r.Context())
		rec.user, rec.tokenID = c.User.Name, c.Token.ID
		if ok, wait := s.limits.allow(c.Token.ID, s.cfg.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.writeError(w, &apiError{status: http.StatusTooManyRequests, code: 4,
				msg:  fmt.Sprintf("too many requests with token %d: at most %g a second", c.Token.ID, s.cfg.Rate),
				hint: "wait " + wait.Round(1e6).String() + " and try again"})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
	}))
}

// authenticate finds the caller of r from its Authorization: Bearer
// header. Every failure is 401; none says more than the caller knows.
func (s *Server) authenticate(r *http.Request) (*Caller, error) {
	unauth := func(msg string) error {
		return &apiError{status: http.StatusUnauthorized, code: 2, msg: msg, hint: "give a live token as Authorization: Bearer TOKEN (aegir token create --user NAME)"}
	}
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return nil, unauth("no token: this request needs Authorization: Bearer TOKEN")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, unauth("the Authorization header is not Bearer TOKEN")
	}
	t, u, err := s.cfg.Store.Authenticate(r.Context(), strings.TrimSpace(secret))
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauth("the token is not valid")
	}
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	switch {
	case t.Revoked != nil:
		return nil, unauth(fmt.Sprintf("token %d was revoked", t.ID))
	case !t.Live(now):
		return nil, unauth(fmt.Sprintf("token %d expired", t.ID))
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
		_ = s.cfg.Store.RecordRequest(context.WithoutCancel(r.Context()), &entities.AuditEntry{
			Time: at, User: rec.user, TokenID: rec.tokenID, Method: r.Method, Path: r.URL.Path, Status: sw.status, TaskID: rec.taskID,
		})
	})
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
