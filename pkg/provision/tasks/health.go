package tasks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/web"
)

func init() {
	engine.Register(entities.TaskSiteHealth, siteHealth)
}

// checkHealth checks that the site works as its record says: its own
// database user logs in to its database, the way the site connects (made
// again with its grants when it cannot); php-fpm answers where the
// virtual hosts send PHP; and the site, requested through its web server
// on the address the virtual hosts listen on with its Host header (and
// over HTTPS when on), answers as its status says (installed: 200 or a
// redirect; disabled: 503). A site that does not is an error that names
// the reason and the fix; the health is reported either way.
//
// An unexpected answer is asked again for a moment (settleRetry).
//
// alongside, if not nil, runs beside the php-fpm and HTTP checks once the
// database login works (a verify reads the site's packages meanwhile);
// checkHealth returns when it is done.
func (s *site) checkHealth(ctx context.Context, svc db.Service, svcErr error, alongside func()) (*entities.SiteHealth, error) {
	h := &entities.SiteHealth{Status: entities.HealthOK, Checked: time.Now().UTC()}
	dbErr := s.checkDBLogin(ctx, svc, svcErr)
	var wg sync.WaitGroup
	defer wg.Wait()
	if dbErr == nil && alongside != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			alongside()
		}()
	}

	phpErr := error(nil)
	addr, err := s.ws.CheckPHP(ctx)
	if s.phpAddr != "" {
		addr, err = s.phpAddr, s.ws.CheckPHPAt(ctx, s.phpAddr)
	}
	if errors.Is(err, web.ErrNotChecked) {
		s.env.Logf(provision.LevelDebug, "%v", err)
	} else if err != nil {
		phpErr = err
	} else {
		s.env.Logf(provision.LevelInfo, "php-fpm answers at %s", addr)
	}

	disabled := s.c.Site.Status == entities.SiteDisabled
	var httpErr error
	for _, scheme := range s.healthSchemes() {
		code, took, err := s.checkAnswer(ctx, scheme, disabled, addr)
		// An answer that is not the expected one (or none: a connection
		// an old worker dropped) is asked again for a moment.
		for end := time.Now().Add(settleRetry); err != nil && time.Now().Before(end) && ctx.Err() == nil; {
			sleep(ctx, 200*time.Millisecond)
			code, took, err = s.checkAnswer(ctx, scheme, disabled, addr)
		}
		if h.HTTPCode == 0 || err != nil || scheme == s.urlScheme() {
			h.HTTPCode, h.TimeMS = code, took.Milliseconds()
		}
		if err != nil {
			httpErr = err
			break
		}
	}
	// The answer is the judge of php-fpm: a site that answers as it should
	// reaches it (aegir may see it otherwise, from another user).
	if phpErr != nil && httpErr == nil {
		s.env.Logf(provision.LevelWarning, "%v; the site answers all the same", phpErr)
		phpErr = nil
	}
	var pe *provision.Error
	if phpErr != nil && errors.As(phpErr, &pe) {
		e := *pe
		e.Msg += fmt.Sprintf(", so %s answers HTTP %d", s.c.Site.Domain, h.HTTPCode)
		phpErr = &e
	}
	for _, err := range []error{dbErr, phpErr, httpErr} {
		if err != nil {
			h.Status, h.Error = entities.HealthError, errorLine(err)
			return h, err
		}
	}
	return h, nil
}

// settleRetry is how long an unexpected answer is asked again (a reload
// waits for the new configuration, but an old worker may still drop a
// connection it had accepted).
const settleRetry = time.Second

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// errorLine is an error's message without its hint.
func errorLine(err error) string {
	var pe *provision.Error
	if errors.As(err, &pe) {
		e := *pe
		e.Hint = ""
		return e.Error()
	}
	return err.Error()
}

// checkDBLogin logs in as the site's own database user, from its web
// server, and makes the user and its grants again when it cannot (not
// for a check that changes nothing: checkOnly).
func (s *site) checkDBLogin(ctx context.Context, svc db.Service, svcErr error) error {
	c := s.c
	if c.Site.DB.Name == "" || c.Site.DB.User == "" || c.Site.DB.Password == "" {
		s.env.Logf(provision.LevelWarning, "the record of %s lacks its database, user or password: its database login is not checked", c.Site.Domain)
		return nil
	}
	if svcErr != nil {
		return svcErr
	}
	dial := s.ws.DialFunc()
	err := svc.CheckLogin(ctx, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.Password, dial)
	var pe *provision.Error
	if err == nil {
		s.env.Logf(provision.LevelInfo, "database user %s logs in to %s on %s", c.Site.DB.User, c.Site.DB.Name, c.Site.DBServer.Machine.Name)
		return nil
	}
	if !errors.As(err, &pe) || pe.Code != provision.ErrAuth || s.checkOnly {
		return err
	}
	s.env.Logf(provision.LevelWarning, "%s; making user %s (for connections from %s) and its grants on %s again from the site's record", errorLine(err), c.Site.DB.User, c.Site.DB.GrantHost, c.Site.DB.Name)
	if err := svc.RepairUser(ctx, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.Password, c.Site.DB.GrantHost); err != nil {
		return err
	}
	if err := svc.CheckLogin(ctx, c.Site.DB.Name, c.Site.DB.User, c.Site.DB.Password, dial); err != nil {
		return &provision.Error{Code: provision.ErrAuth, Err: err,
			Msg:  fmt.Sprintf("database user %s was made again for connections from %s, and still cannot log in to %s from %s", c.Site.DB.User, c.Site.DB.GrantHost, c.Site.DB.Name, c.Site.Web.Name),
			Hint: fmt.Sprintf("the database server sees %s's connections come from another address: check which (SELECT USER() there) and that no other account of %s shadows it", c.Site.Web.Name, c.Site.DB.User)}
	}
	s.env.Logf(provision.LevelInfo, "database user %s logs in to %s on %s again", c.Site.DB.User, c.Site.DB.Name, c.Site.DBServer.Machine.Name)
	return nil
}

// urlScheme is the scheme of the site's address (url).
func (s *site) urlScheme() string {
	if s.c.Site.HTTPS.Mode == entities.HTTPSRequired && s.c.Site.HTTPS.CertFile != "" {
		return "https"
	}
	return "http"
}

// healthSchemes are the schemes the site answers on: HTTP, and HTTPS
// once it is on and the site has a certificate.
func (s *site) healthSchemes() []string {
	if (s.c.Site.HTTPS.Mode == entities.HTTPSOn || s.c.Site.HTTPS.Mode == entities.HTTPSRequired) && s.c.Site.HTTPS.CertFile != "" {
		return []string{"http", "https"}
	}
	return []string{"http"}
}

// checkAnswer requests the site's front page on one scheme and checks
// the status against what the site's status says it should answer.
func (s *site) checkAnswer(ctx context.Context, scheme string, disabled bool, php string) (int, time.Duration, error) {
	host := s.hostHeader(scheme)
	where := fmt.Sprintf("%s://%s/ (through %s on %s)", scheme, host, s.ws.ListenAddr(scheme), s.ex.Host())
	a, err := s.ws.Request(ctx, scheme, host, "/", "aegir-verify", web.ProbeTimeout)
	if err != nil {
		return 0, 0, provision.Errorf(provision.ErrUnreachable,
			fmt.Sprintf("start %s on %s and check that it listens there by verifying the server", s.c.Site.Web.Type, s.ex.Host()),
			"%s does not answer: %v", where, err).With(entities.Do("server.verify", s.c.Site.Web.Name))
	}
	code := a.Code
	took := a.Duration.Round(time.Millisecond)
	if scheme == s.urlScheme() {
		s.front = frontPage(s, a)
	}
	ok := code == 503
	if !disabled {
		ok = code == 200 || code >= 300 && code < 400
	}
	if ok {
		s.env.Logf(provision.LevelInfo, "%s answers HTTP %d in %s", where, code, took)
		return code, a.Duration, nil
	}
	page := ""
	if sum := app.PageSummary(string(a.Body)); sum != "" {
		page = " (" + sum + ")"
	}
	msg := fmt.Sprintf("%s answers HTTP %d%s", where, code, page)
	var hint string
	var fix []entities.Action
	switch {
	case disabled:
		msg += ", not the \"site disabled\" page (503)"
		hint = "the web server serves an old virtual host: reload it, or disable the site again"
		fix = []entities.Action{entities.Do("site.disable", s.c.Site.Domain)}
	case code == 502 || code == 504:
		msg += ": the web server gets no answer from php-fpm at " + php
		hint = fmt.Sprintf("start php-fpm on %s, or set where it listens; then verify the site again", s.ex.Host())
		fix = []entities.Action{entities.Do("server.edit", s.c.Site.Web.Name, "php-fpm=SOCKET|HOST:PORT"), entities.Do("site.verify", s.c.Site.Domain)}
	case code == 503:
		hint = "the site is served as disabled: enable it"
		fix = []entities.Action{entities.Do("site.enable", s.c.Site.Domain)}
	case code == 404 || code == 421:
		hint = "the web server serves no site of that name there: check that it includes aegir's file (verifying the server prints the line)"
		fix = []entities.Action{entities.Do("server.verify", s.c.Site.Web.Name)}
	default:
		hint = "the application fails: read the web server's error log and the application's, fix the cause, then verify the site again"
		fix = []entities.Action{entities.Do("site.verify", s.c.Site.Domain)}
	}
	return code, a.Duration, &provision.Error{Code: provision.ErrCommand, Msg: msg, Hint: hint, Fix: fix}
}

// hostHeader is the Host header the site is asked with on scheme: its
// domain, and the port when it is not the scheme's own.
func (s *site) hostHeader(scheme string) string {
	if scheme == "https" {
		return s.c.Site.Domain + httpsPortSuffix(s.c.Site.Web.HTTPSPort)
	}
	return s.c.Site.Domain + portSuffix(s.c.Site.Web.Port)
}

// pageProbe is what the site's front page showed: its status and title.
type pageProbe struct {
	code  int
	title string
}

// probePage asks the site's front page through its web server, on the
// scheme of its address, for its status and title (the content probe of
// a platform migrate's health gate). No answer, or one that is not what
// the site's status says, is asked again for a moment (settleRetry: an
// old worker of a reload that another task's move made may drop the
// connection).
func (s *site) probePage(ctx context.Context) (pageProbe, error) {
	p, err := s.probePageOnce(ctx)
	for end := time.Now().Add(settleRetry); (err != nil || !p.answers(s)) && time.Now().Before(end) && ctx.Err() == nil; {
		sleep(ctx, 200*time.Millisecond)
		p, err = s.probePageOnce(ctx)
	}
	return p, err
}

func (s *site) probePageOnce(ctx context.Context) (pageProbe, error) {
	scheme := s.urlScheme()
	host := s.hostHeader(scheme)
	a, err := s.ws.Request(ctx, scheme, host, "/", "aegir-verify", web.ProbeTimeout)
	if err != nil {
		return pageProbe{}, provision.Errorf(provision.ErrUnreachable, "start "+s.c.Site.Web.Type+" on "+s.ex.Host()+" and verify the site",
			"%s://%s/ does not answer (through %s on %s): %v", scheme, host, s.ws.ListenAddr(scheme), s.ex.Host(), err)
	}
	return *frontPage(s, a), nil
}

// frontPage is what answer a of the site's front page showed.
func frontPage(s *site, a *web.Answer) *pageProbe {
	p := &pageProbe{code: a.Code}
	if a.Code == 200 && s.c.Site.Status != entities.SiteDisabled {
		p.title = app.PageTitle(string(a.Body))
	}
	return p
}

// answers says whether a front page answered as the site's status says:
// installed, 200 or a redirect; disabled, 503 (the "site disabled" page).
func (p pageProbe) answers(s *site) bool {
	if s.c.Site.Status == entities.SiteDisabled {
		return p.code == 503
	}
	return p.code == 200 || p.code >= 300 && p.code < 400
}

// gateBefore reads the front page of a site that a migrate with a health
// gate (option health_gate) is about to move: it must answer as an
// installed site does, and its title is what the site must show on its
// new platform (healthGate).
func gateBefore(ctx context.Context, src *site) (pageProbe, error) {
	start := time.Now()
	before, err := src.probePage(ctx)
	if err != nil {
		return before, err
	}
	if !before.answers(src) {
		d := src.c.Site.Domain
		return before, &provision.Error{Code: provision.ErrCommand, Hint: "make it answer where it is first (a verify of the site says why it does not), then migrate it",
			Fix: []entities.Action{entities.Do("site.verify", d)},
			Msg: fmt.Sprintf("%s answers HTTP %d on platform %s before the move, so the health gate has nothing to compare with; nothing was changed", d, before.code, src.c.Site.Platform.Name)}
	}
	title := "no title"
	if before.title != "" {
		title = fmt.Sprintf("title %q", before.title)
	}
	src.env.Logf(provision.LevelInfo, "health gate: %s answers HTTP %d with %s on platform %s before the move (read in %s)", src.c.Site.Domain, before.code, title,
		src.c.Site.Platform.Name, time.Since(start).Round(time.Millisecond))
	return before, nil
}

// healthGate checks the site at its new place before the move is
// committed (its old copy is still there): the health check of a verify
// (checkHealth: its database login, php-fpm, its answer) and the content
// probe, its front page's title as gateBefore read it. A failure is the
// move's error, so the move is rolled back.
func (m *move) healthGate(ctx context.Context, before pageProbe) (*entities.SiteHealth, error) {
	dst := m.dst
	start := time.Now()
	fail := func(why string) error {
		if m.kind == "sync" {
			return &provision.Error{Code: provision.ErrCommand,
				Msg:  fmt.Sprintf("%s fails its health check after the sync from %s: %s; it was put back as it was", dst.c.Site.Domain, m.from, why),
				Hint: "find what makes it fail with the content of " + m.from + " (the answer above; its error log), fix it, then sync again",
				Fix:  []entities.Action{entities.Do("site.logs", dst.c.Site.Domain, "error")}}
		}
		return &provision.Error{Code: provision.ErrCommand,
			Msg:  fmt.Sprintf("%s fails its health gate on platform %s: %s; it goes back to platform %s", dst.c.Site.Domain, dst.c.Site.Platform.Name, why, m.src.c.Site.Platform.Name),
			Hint: "find what makes it fail on the new platform (the answer above; its error log), fix it, then migrate it again",
			Fix:  []entities.Action{entities.Do("site.logs", m.src.c.Site.Domain, "error")}}
	}
	dst.front = nil
	h, err := dst.checkHealth(ctx, m.svc, nil, nil)
	if err != nil {
		return h, fail(errorLine(err))
	}
	// The page the health check got, if it asked on the address's scheme.
	var after pageProbe
	if dst.front != nil {
		after = *dst.front
	} else {
		after, err = dst.probePage(ctx)
	}
	switch {
	case err != nil:
		return h, fail(errorLine(err))
	case !after.answers(dst):
		return h, fail(fmt.Sprintf("its front page answers HTTP %d", after.code))
	case before.title != "" && after.title != before.title:
		return h, fail(fmt.Sprintf("its front page's title is %q, and was %q before the move", after.title, before.title))
	}
	if before.title == "" {
		m.env.Logf(provision.LevelInfo, "health check passed in %s: %s answers HTTP %d", time.Since(start).Round(time.Millisecond), dst.c.Site.Domain, after.code)
		return h, nil
	}
	m.env.Logf(provision.LevelInfo, "health gate passed on platform %s in %s: %s answers HTTP %d with the title it had", dst.c.Site.Platform.Name,
		time.Since(start).Round(time.Millisecond), dst.c.Site.Domain, after.code)
	return h, nil
}

// siteHealth runs only the health check of a verify (checkHealth: the
// site's database login, php-fpm, its answer as its status says), and
// changes nothing on the servers: a database user that cannot log in is
// not made again, and the site's PHP is found where its last install or
// verify put it. It ends in error with the reason when the site fails;
// the health is reported either way.
func siteHealth(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	s.checkOnly = true
	if err := s.locateRuntime(ctx); err != nil {
		return nil, err
	}
	svc, svcErr := s.db(ctx)
	if svcErr == nil {
		defer svc.Close()
	}
	h, err := s.checkHealth(ctx, svc, svcErr, nil)
	return &provision.Changes{Site: &provision.SiteChanges{Health: h}}, err
}
