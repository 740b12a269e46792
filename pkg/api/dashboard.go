package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// The dashboard is a server-rendered page at / where a user signs in with
// a token and sees its sites (a client's user its client's only, as the
// API shows them), starts a backup of one or gets a one-time login link.
//
// Signing in posts the token in a form (never in a URL); the server keeps
// it in memory in a session named by a random cookie (HttpOnly,
// SameSite=Strict, Secure over TLS), checks it again on every request (a
// revoked token ends its sessions) and takes every request from its
// rate, as the API does. Every form carries the session's CSRF token (the
// sign-in form a cookie's, double-submitted), and a POST from another
// origin is refused. Every request goes to the audit log.

//go:embed dashboard/*.html
var dashboardFiles embed.FS

var dashboardPage = template.Must(template.ParseFS(dashboardFiles, "dashboard/page.html"))

const (
	sessionCookie = "aegir_session"
	loginCookie   = "aegir_login" // the sign-in form's CSRF token
	// sessionTTL is how long a session lasts after sign-in (less when its
	// token expires sooner).
	sessionTTL = 8 * time.Hour
	// dashboardSites is how many sites the page lists at most.
	dashboardSites = 500
	maxSessions    = 10000
)

// session is one signed-in browser.
type session struct {
	secret  string // the token's, kept only here, in memory
	csrf    string
	expires time.Time
	flash   string // said once, on the next page
}

type dashboard struct {
	mu       sync.Mutex
	sessions map[string]*session // by the cookie's value
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// mountDashboard mounts the dashboard's page and forms on s's mux.
func (s *Server) mountDashboard() {
	s.dash = &dashboard{sessions: map[string]*session{}}
	s.mux.Handle("GET /{$}", s.audited(http.HandlerFunc(s.dashHome)))
	s.mux.Handle("POST /login", s.audited(http.HandlerFunc(s.dashLogin)))
	s.mux.Handle("POST /logout", s.audited(http.HandlerFunc(s.dashLogout)))
	s.mux.Handle("POST /sites/{domain}/{action}", s.audited(http.HandlerFunc(s.dashAction)))
}

// page is what the template renders: the sign-in form (no User) or the
// caller's sites.
type page struct {
	User      *entities.User
	Write     bool
	CSRF      string
	Flash     string
	Error     string
	Hint      string
	Link      *loginLink
	Sites     []siteRow
	More      int // sites left out
	Refresh   bool
	TokenID   int64
	ExpiresAt *time.Time
}

// siteRow is one site on the page.
type siteRow struct {
	Domain, Status       string
	Health, HealthClass  string
	Cert, CertClass      string
	LastBackup           *time.Time
	BackupAgo            string
	LastTask, TaskStatus string
	Busy                 bool
}

func setSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Not no-referrer: with it a browser sends Origin: null on the forms.
	h.Set("Referrer-Policy", "same-origin")
}

func (s *Server) render(w http.ResponseWriter, status int, p *page) {
	setSecurityHeaders(w)
	w.WriteHeader(status)
	_ = dashboardPage.Execute(w, p)
}

// cookie is a cookie of the dashboard: HttpOnly, SameSite=Strict, Secure
// when served over TLS; maxAge < 0 deletes it.
func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

// loginPage renders the sign-in form with a fresh CSRF token in its
// cookie and its field.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	csrf := randomString()
	http.SetCookie(w, cookie(r, loginCookie, csrf, 3600))
	p.CSRF, p.User = csrf, nil
	s.render(w, status, p)
}

// current is r's session and its key; nil when it has none that lasts.
func (s *Server) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	s.dash.mu.Lock()
	defer s.dash.mu.Unlock()
	ss := s.dash.sessions[c.Value]
	if ss == nil {
		return "", nil
	}
	if !s.cfg.Now().Before(ss.expires) {
		delete(s.dash.sessions, c.Value)
		return "", nil
	}
	return c.Value, ss
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request, key string) {
	s.dash.mu.Lock()
	delete(s.dash.sessions, key)
	s.dash.mu.Unlock()
	http.SetCookie(w, cookie(r, sessionCookie, "", -1))
}

// signedIn is r's caller through its session, its token checked again
// and the request taken from its rate; else it has answered (the sign-in
// form, or a refusal) and returns nil.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) (*Caller, *session, string) {
	key, ss := s.current(r)
	if ss == nil {
		s.loginPage(w, r, http.StatusOK, &page{})
		return nil, nil, ""
	}
	c, err := s.admit(r, func() (string, error) { return ss.secret, nil })
	if err != nil {
		st, b := s.status(err)
		retryAfter(w, err)
		if st == http.StatusUnauthorized {
			s.endSession(w, r, key)
			s.loginPage(w, r, st, &page{Error: "Signed out: " + b.Error + "."})
			return nil, nil, ""
		}
		s.render(w, st, &page{Error: b.Error, Hint: b.Hint})
		return nil, nil, ""
	}
	return c, ss, key
}

// sameOrigin refuses a POST that a page of another origin made, as the
// browser tells: Sec-Fetch-Site when it sends it, else Origin (which a
// browser leaves out of no form POST; an old one may send neither).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return origin == scheme+r.Host
}

// form parses r's form, at most 64 KiB, and checks that it came from this
// origin with the CSRF token want.
func form(w http.ResponseWriter, r *http.Request, want string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || !sameOrigin(r) || want == "" {
		return false
	}
	got := r.PostForm.Get("csrf")
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) refuseForm(w http.ResponseWriter) {
	s.render(w, http.StatusForbidden, &page{Error: "This form is out of date or came from another site.", Hint: "Open the dashboard again and sign in."})
}

func (s *Server) dashHome(w http.ResponseWriter, r *http.Request) {
	c, ss, _ := s.signedIn(w, r)
	if c == nil {
		return
	}
	s.dash.mu.Lock()
	flash := ss.flash
	ss.flash = ""
	s.dash.mu.Unlock()
	s.sitesPage(w, r, http.StatusOK, c, ss, &page{Flash: flash})
}

// sitesPage renders the caller's sites, with p's messages.
func (s *Server) sitesPage(w http.ResponseWriter, r *http.Request, status int, c *Caller, ss *session, p *page) {
	p.User, p.CSRF, p.Write = c.User, ss.csrf, c.Token.Scope == entities.ScopeWrite
	p.TokenID, p.ExpiresAt = c.Token.ID, c.Token.Expires
	rows, more, err := s.siteRows(r.Context(), c)
	if err != nil {
		_, b := s.status(err)
		p.Error, p.Hint = b.Error, b.Hint
		status = http.StatusInternalServerError
	}
	p.Sites, p.More = rows, more
	for _, row := range rows {
		p.Refresh = p.Refresh || row.Busy
	}
	p.Refresh = p.Refresh && p.Link == nil
	s.render(w, status, p)
}

// siteRows are the caller's sites as the page shows them: status, health,
// certificate, last backup and last task.
func (s *Server) siteRows(ctx context.Context, c *Caller) ([]siteRow, int, error) {
	f := store.SiteFilter{}
	if !c.Admin() {
		f.Client = c.User.Client
	}
	sites, err := s.cfg.Store.ListSites(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	more := 0
	if len(sites) > dashboardSites {
		more, sites = len(sites)-dashboardSites, sites[:dashboardSites]
	}
	now := s.cfg.Now()
	rows := make([]siteRow, 0, len(sites))
	for _, v := range sites {
		if !c.Sees(v) {
			continue
		}
		if err := s.cfg.Ops.Details(ctx, v); err != nil {
			return nil, 0, err
		}
		row := siteRow{Domain: v.Domain, Status: v.Status, Health: "not checked", HealthClass: "none", Cert: "none", CertClass: "none"}
		if v.HTTPS == entities.HTTPSOff {
			row.Cert = "HTTPS off"
		}
		if h := v.Health; h != nil {
			row.Health, row.HealthClass = h.ListCell(), "bad"
			if h.Status == "ok" {
				row.HealthClass = "ok"
			} else if h.Error != "" {
				row.Health += ": " + h.Error
			}
		}
		if ct := v.Cert; ct != nil && ct.NotAfter != nil {
			days := int(ct.NotAfter.Sub(now).Hours() / 24)
			if ct.DaysLeft != nil {
				days = *ct.DaysLeft
			}
			row.Cert, row.CertClass = fmt.Sprintf("%d days left", days), "ok"
			switch {
			case days < 0:
				row.Cert, row.CertClass = "expired", "bad"
			case days < 14:
				row.CertClass = "warn"
			}
		}
		b, err := s.cfg.Store.LatestBackup(ctx, v.ID)
		switch {
		case err == nil:
			row.LastBackup, row.BackupAgo = &b.Created, ago(now.Sub(b.Created))
		case !errors.Is(err, store.ErrNotFound):
			return nil, 0, err
		}
		ts, err := s.cfg.Store.ListTasks(ctx, store.TaskFilter{TargetKind: entities.TargetSite, TargetID: v.ID, Limit: 1})
		if err != nil {
			return nil, 0, err
		}
		if len(ts) == 1 {
			row.LastTask = fmt.Sprintf("%s #%d", ts[0].Type, ts[0].ID)
			row.TaskStatus = ts[0].Status
			row.Busy = !finished(ts[0].Status)
		}
		rows = append(rows, row)
	}
	return rows, more, nil
}

func (s *Server) dashLogin(w http.ResponseWriter, r *http.Request) {
	lc, err := r.Cookie(loginCookie)
	if err != nil || !form(w, r, lc.Value) {
		s.loginPage(w, r, http.StatusForbidden, &page{Error: "The sign-in form is out of date or came from another site: sign in again."})
		return
	}
	tok := r.PostForm.Get("token")
	c, err := s.admit(r, func() (string, error) {
		if tok == "" {
			return "", unauthorized("no token given")
		}
		return tok, nil
	})
	if err != nil {
		st, b := s.status(err)
		retryAfter(w, err)
		if st == http.StatusUnauthorized {
			b.Hint = "Sign in with a live token: an admin makes one with aegir token create --user NAME."
		}
		s.loginPage(w, r, st, &page{Error: b.Error, Hint: b.Hint})
		return
	}
	expires := s.cfg.Now().Add(sessionTTL)
	if c.Token.Expires != nil && c.Token.Expires.Before(expires) {
		expires = *c.Token.Expires
	}
	key := randomString()
	s.dash.mu.Lock()
	if len(s.dash.sessions) >= maxSessions {
		now := s.cfg.Now()
		for k, o := range s.dash.sessions {
			if !now.Before(o.expires) {
				delete(s.dash.sessions, k)
			}
		}
	}
	full := len(s.dash.sessions) >= maxSessions
	if !full {
		s.dash.sessions[key] = &session{secret: tok, csrf: randomString(), expires: expires}
	}
	s.dash.mu.Unlock()
	if full {
		s.loginPage(w, r, http.StatusServiceUnavailable, &page{Error: "Too many people are signed in: try again later."})
		return
	}
	http.SetCookie(w, cookie(r, loginCookie, "", -1))
	http.SetCookie(w, cookie(r, sessionCookie, key, int(time.Until(expires).Seconds())))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) dashLogout(w http.ResponseWriter, r *http.Request) {
	key, ss := s.current(r)
	if ss == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !form(w, r, ss.csrf) {
		s.refuseForm(w)
		return
	}
	s.endSession(w, r, key)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// dashAction is a site's button: backup (queued, as POST
// /api/sites/{domain}/backup) or login-link (run now; the link shown on
// the page that answers, and kept nowhere).
func (s *Server) dashAction(w http.ResponseWriter, r *http.Request) {
	_, ss := s.current(r)
	if ss == nil {
		s.loginPage(w, r, http.StatusUnauthorized, &page{Error: "Signed out: sign in again."})
		return
	}
	if !form(w, r, ss.csrf) {
		s.refuseForm(w)
		return
	}
	c, ss, _ := s.signedIn(w, r)
	if c == nil {
		return
	}
	rec := recordFrom(r.Context())
	fail := func(err error) {
		st, b := s.status(err)
		s.sitesPage(w, r, st, c, ss, &page{Error: b.Error, Hint: b.Hint})
	}
	action := r.PathValue("action")
	if action != "backup" && action != "login-link" {
		fail(&apiError{status: http.StatusNotFound, code: 3, msg: "no such action: " + strconv.Quote(action)})
		return
	}
	if c.Token.Scope != entities.ScopeWrite {
		fail(&apiError{status: http.StatusForbidden, code: 2, msg: "this token may only read (scope read)", hint: "sign in with a write token"})
		return
	}
	v, err := s.visibleSite(r.Context(), c, "domain", r.PathValue("domain"))
	if err != nil {
		fail(err)
		return
	}
	if action == "login-link" {
		t, link, err := s.cfg.Ops.LoginReset(r.Context(), v)
		if t != nil {
			rec.taskID = t.ID
		}
		if err != nil {
			fail(err)
			return
		}
		s.sitesPage(w, r, http.StatusOK, c, ss, &page{Link: &loginLink{v.Domain, link, t.ID}})
		return
	}
	t, err := s.cfg.Ops.Queue(r.Context(), v, "backup", &VerbRequest{})
	if err != nil {
		fail(err)
		return
	}
	rec.taskID = t.ID
	s.dash.mu.Lock()
	ss.flash = fmt.Sprintf("The backup of %s is queued as task %d.", v.Domain, t.ID)
	s.dash.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ago says how long d is, roughly, as a page says it.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
