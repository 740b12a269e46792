package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// me is who the token signs in as.
type me struct {
	Name    string     `json:"name"`
	Role    string     `json:"role"`
	Client  string     `json:"client"`
	TokenID int64      `json:"token_id"`
	Scope   string     `json:"scope"`
	Expires *time.Time `json:"expires"`
}

func (s *Server) me(r *request) (int, any, error) {
	c := r.caller
	return http.StatusOK, me{c.User.Name, c.User.Role, c.User.Client, c.Token.ID, c.Token.Scope, c.Token.Expires}, nil
}

// forCaller is site v as the caller may see it: a client's user sees
// nothing of servers (which ones hold its site's files and database).
func forCaller(c *Caller, v *entities.Site) *entities.Site {
	if c.Admin() {
		return v
	}
	cp := *v
	cp.Server, cp.DBServer, cp.DBGrantHost = "", "", ""
	return &cp
}

// logForCaller is a task's log lines as the caller may see them: a
// client's user gets no debug lines, no commands and no command output,
// which name servers, addresses and paths of the hosting.
func logForCaller(c *Caller, lines []entities.LogLine) []entities.LogLine {
	if c.Admin() {
		return lines
	}
	out := make([]entities.LogLine, 0, len(lines))
	for _, l := range lines {
		switch l.Level {
		case entities.LevelDebug, entities.LevelCommand, entities.LevelOutput:
			continue
		}
		out = append(out, l)
	}
	return out
}

func (s *Server) listSites(r *request) (int, any, error) {
	q := r.URL.Query()
	f := store.SiteFilter{Status: q.Get("status"), Platform: q.Get("platform"), Client: q.Get("client")}
	if f.Status != "" {
		if err := entities.ValidateOneOf("status", f.Status, entities.SiteStatuses...); err != nil {
			return 0, nil, err
		}
	}
	for _, p := range [][2]string{{"platform", f.Platform}, {"client", f.Client}} {
		if p[1] != "" {
			if err := entities.ValidateName(p[0], p[1]); err != nil {
				return 0, nil, err
			}
		}
	}
	if !r.caller.Admin() {
		if f.Client != "" && f.Client != r.caller.User.Client {
			return http.StatusOK, []*entities.Site{}, nil // another client's: none it may see
		}
		f.Client = r.caller.User.Client
	}
	sites, err := s.cfg.Store.ListSites(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	for i, v := range sites {
		sites[i] = forCaller(r.caller, v)
	}
	return http.StatusOK, siteList(sites), nil
}

// site finds the live site of the {domain} in r's path that the caller
// may see; one it may not see is not found, as one that does not exist.
func (s *Server) site(r *request) (*entities.Site, error) {
	return s.siteNamed(r, "domain", r.PathValue("domain"))
}

// siteNamed is the site of domain (field: what names it in the request)
// if the caller may see it; else not found, as one that does not exist.
func (s *Server) siteNamed(r *request, field, name string) (*entities.Site, error) {
	return s.visibleSite(r.Context(), r.caller, field, name)
}

// visibleSite finds the live site of domain (or an alias; field names it
// in the request) that c may see; one it may not see is not found, as one
// that does not exist.
func (s *Server) visibleSite(ctx context.Context, c *Caller, field, domain string) (*entities.Site, error) {
	domain, err := entities.NormalizeDomain(field, domain)
	if err != nil {
		return nil, err
	}
	v, err := s.cfg.Store.GetSite(ctx, domain)
	if errors.Is(err, store.ErrNotFound) || err == nil && !c.Sees(v) {
		return nil, notFound("site", domain)
	}
	return v, err
}

func (s *Server) showSite(r *request) (int, any, error) {
	v, err := s.site(r)
	if err != nil {
		return 0, nil, err
	}
	if err := s.cfg.Ops.Details(r.Context(), v); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, forCaller(r.caller, v), nil
}

func (s *Server) siteBackups(r *request) (int, any, error) {
	v, err := s.site(r)
	if err != nil {
		return 0, nil, err
	}
	bs, err := s.cfg.Store.ListBackups(r.Context(), v.Domain)
	if err != nil {
		return 0, nil, err
	}
	if !r.caller.Admin() {
		for _, b := range bs {
			b.Path = "" // a path on the master
		}
	}
	return http.StatusOK, bs, nil
}

// siteTasks are a site's newest tasks (100, as aegir task list --site
// shows them), newest first.
func (s *Server) siteTasks(r *request) (int, any, error) {
	v, err := s.site(r)
	if err != nil {
		return 0, nil, err
	}
	ts, err := s.cfg.Store.ListTasks(r.Context(), store.TaskFilter{TargetKind: entities.TargetSite, TargetID: v.ID, Limit: 100})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ts, nil
}

// decode reads r's JSON body into v: an empty body leaves v as it is; a
// body that is not v's JSON is bad input.
func decode(r *request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return &apiError{status: http.StatusBadRequest, code: 2, msg: "invalid request body: " + err.Error(), hint: "see the request's schema in /api/openapi.json"}
	}
	return nil
}

func (s *Server) installSite(r *request) (int, any, error) {
	var in InstallRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if !r.caller.Admin() {
		// A client's user installs for its client, onto a platform it
		// may use, on the database server aegir picks.
		in.Client = r.caller.User.Client
		in.DBServer = ""
		if in.Platform != "" {
			if err := s.usablePlatform(r, in.Platform); err != nil {
				return 0, nil, err
			}
		}
	}
	t, err := s.cfg.Ops.Install(r.Context(), &in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, t, nil
}

// usablePlatform refuses a platform a client's user may not install
// onto: a locked one as a conflict (409, as a quota), one not enabled yet
// (queued) as not found.
func (s *Server) usablePlatform(r *request, name string) error {
	if err := entities.ValidateName("platform", name); err != nil {
		return err
	}
	p, err := s.cfg.Store.GetPlatform(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) || err == nil && !usable(p) {
		// One it may not use is not found, as one that does not exist,
		// locked or not: its name does not leak.
		return notFound("platform", name)
	}
	if err != nil {
		return err
	}
	var cf *store.ConflictError
	if errors.As(store.OpenForSites(p), &cf) {
		// One it may use, locked: 409 as a quota refuses; the hint in
		// the client's words (an admin unlocks it).
		cf.Hint, cf.Fix = "choose another platform: GET /api/platforms lists those open to you", nil
		return cf
	}
	return nil
}

// loginLink is login-reset's answer: the one-time link, given only here.
type loginLink struct {
	Domain string `json:"domain"`
	Link   string `json:"login_link"`
	TaskID int64  `json:"task_id"`
}

func (s *Server) siteVerb(r *request) (int, any, error) {
	verb := r.PathValue("verb")
	if !slices.Contains(Verbs, verb) {
		return 0, nil, &apiError{status: http.StatusNotFound, code: 3, msg: fmt.Sprintf("no such site verb: %q", verb), hint: "POST /api/sites/{domain}/VERB, VERB one of: " + fmt.Sprint(Verbs)}
	}
	var in VerbRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if (in.Source != "" || in.DB || in.Files || in.UpdateDB || in.Force) != (verb == "sync") {
		if verb == "sync" {
			return 0, nil, entities.Invalid("source", "", "is required: the site whose database and files are copied onto this one")
		}
		return 0, nil, entities.Invalid("source", in.Source, "source, db, files, updatedb and force are sync's; "+verb+" takes none")
	}
	v, err := s.site(r)
	if err != nil {
		return 0, nil, err
	}
	if verb == "sync" {
		// The source is a site the caller sees, else not found as one
		// that does not exist.
		src, err := s.siteNamed(r, "source", in.Source)
		if err != nil {
			return 0, nil, err
		}
		in.Source = src.Domain
	}
	if verb == "login-reset" {
		t, link, err := s.cfg.Ops.LoginReset(r.Context(), v)
		if t != nil {
			r.rec.taskID = t.ID
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, loginLink{v.Domain, link, t.ID}, nil
	}
	t, err := s.cfg.Ops.Queue(r.Context(), v, verb, &in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, t, nil
}

// deleteSite queues the site's delete (site delete --queue): a backup
// first, unless an admin asks for none.
func (s *Server) deleteSite(r *request) (int, any, error) {
	var in DeleteRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	v, err := s.site(r)
	if err != nil {
		return 0, nil, err
	}
	if in.NoBackup && !r.caller.Admin() {
		return 0, nil, &apiError{status: http.StatusForbidden, code: 2, msg: "only an admin deletes a site without a backup (no_backup)",
			hint: "delete it with a backup first: leave out no_backup"}
	}
	t, err := s.cfg.Ops.Queue(r.Context(), v, "delete", &VerbRequest{NoBackup: in.NoBackup})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, t, nil
}

// task finds the task of the {id} in r's path that the caller may see:
// a client's user only those of its client's sites.
func (s *Server) task(r *request) (*entities.Task, error) {
	id, err := taskID(r)
	if err != nil {
		return nil, err
	}
	t, err := s.cfg.Store.GetTask(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("task", r.PathValue("id"))
	}
	if err != nil {
		return nil, err
	}
	if r.caller.Admin() {
		return t, nil
	}
	if t.TargetKind == entities.TargetSite {
		if v, err := s.cfg.Store.GetSiteByID(r.Context(), t.TargetID); err == nil && r.caller.Sees(v) {
			return t, nil
		}
	}
	return nil, notFound("task", r.PathValue("id"))
}

func (s *Server) showTask(r *request) (int, any, error) {
	t, err := s.task(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, t, nil
}

// finished says whether a task of status st has ended.
func finished(st string) bool { return st != entities.TaskQueued && st != entities.TaskProcessing }

// taskLog is a task's log: a JSON array, or with ?follow=1 one JSON line
// a log line (application/x-ndjson) as they come, until the task ends.
func (s *Server) taskLog(r *request) (int, any, error) {
	t, err := s.task(r)
	if err != nil {
		return 0, nil, err
	}
	ctx := r.Context()
	if f := r.URL.Query().Get("follow"); f != "1" && f != "true" {
		lines, _, err := s.cfg.Store.TaskLog(ctx, t.ID, 0)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, logForCaller(r.caller, lines), nil
	}
	w := r.w
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	var after int64
	for {
		// The status first: lines written before it ended are all read.
		cur, err := s.cfg.Store.GetTask(ctx, t.ID)
		if err != nil {
			return 0, nil, nil
		}
		lines, last, err := s.cfg.Store.TaskLog(ctx, t.ID, after)
		if err != nil {
			return 0, nil, nil
		}
		after = last
		for _, l := range logForCaller(r.caller, lines) {
			if enc.Encode(l) != nil {
				return 0, nil, nil
			}
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if finished(cur.Status) {
			return 0, nil, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, nil
		case <-time.After(s.cfg.Poll):
		}
	}
}

// platformName is what a client's user sees of a platform it may use:
// locked, it takes no new site for now (an install onto it is 409).
type platformName struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Locked bool   `json:"locked"`
}

// usable says whether a client's user may use platform p (install onto
// it when it is not locked): every enabled platform, locked or not (its
// status reads locked then). One queued or deleted is not.
func usable(p *entities.Platform) bool {
	return p.Status == entities.StatusEnabled || p.Status == entities.StatusLocked
}

func (s *Server) listPlatforms(r *request) (int, any, error) {
	ps, err := s.cfg.Store.ListPlatforms(r.Context(), "")
	if err != nil {
		return 0, nil, err
	}
	if r.caller.Admin() {
		return http.StatusOK, ps, nil
	}
	out := []platformName{}
	for _, p := range ps {
		if usable(p) {
			out = append(out, platformName{p.Name, p.Type, p.Locked})
		}
	}
	return http.StatusOK, out, nil
}

func (s *Server) listServers(r *request) (int, any, error) {
	if !r.caller.Admin() {
		return 0, nil, &apiError{status: http.StatusForbidden, code: 2, msg: "only an admin sees servers", hint: "a client's user sees its sites: GET /api/sites"}
	}
	v, err := s.cfg.Store.ListServers(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}
