package hosting_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/db"
)

// get asks the private nginx for / as Host host, retrying briefly while a
// reload takes effect, until the answer has status code want.
func (h *hostEnv) get(t *testing.T, host string, want int) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, body := 0, ""
	for i := 0; i < 40 && code != want; i++ {
		if i > 0 {
			time.Sleep(150 * time.Millisecond)
		}
		req, _ := http.NewRequest("GET", h.web.URL()+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			code, body = 0, err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
	}
	return code, body
}

// httpService is server web1's web service as the store has it.
func (h *hostEnv) httpService(t *testing.T) entities.Service {
	t.Helper()
	for _, sv := range h.server(t, "web1").Services {
		if sv.Kind == entities.KindHTTP {
			return sv
		}
	}
	t.Fatal("web1 has no http service")
	return entities.Service{}
}

// setRestartCmd changes the command that reloads web1's nginx.
func (h *hostEnv) setRestartCmd(t *testing.T, cmd string) {
	t.Helper()
	h.editService(t, entities.KindHTTP, func(sv *entities.Service) { sv.RestartCmd = cmd })
}

// install runs the install of a new WordPress site on platform wp and
// checks what the store and MariaDB have of it.
func (h *hostEnv) install(t *testing.T, prefix string) (*entities.Site, *entities.Task) {
	t.Helper()
	domain := testsite.Domain(t, prefix)
	task := h.addSite(t, domain, "wp", entities.HTTPSOff)
	if s := h.site(t, domain); s.Status != entities.SiteQueued {
		t.Fatalf("site before its install: status %s, want %s", s.Status, entities.SiteQueued)
	}
	o, log := h.run(t, task, provision.StatusSuccess)
	s := h.site(t, domain)
	name := db.NameFor(domain, nil)
	if s.Status != entities.SiteInstalled || s.DBName != name || s.DBUser != name {
		t.Fatalf("site after install: status %s, database %q user %q; want %s, %s, %s", s.Status, s.DBName, s.DBUser, entities.SiteInstalled, name, name)
	}
	if s.DBPassword == "" {
		t.Fatal("the site's database password was not kept")
	}
	if err := canLogIn(s.DBUser, s.DBPassword, s.DBName); err != nil {
		t.Fatalf("the kept password does not open the site's database: %v", err)
	}
	res, _ := json.Marshal(o.Result)
	if strings.Contains(log.String(), s.DBPassword) || strings.Contains(string(res), s.DBPassword) || strings.Contains(o.Error+o.Hint, s.DBPassword) {
		t.Error("the site's database password is in the install's log or result")
	}
	return s, task
}

// A WordPress site through the Runner: the install moves it from queued
// to installed with its database recorded; a verify records its health;
// a reload that failed is remembered on the web service and forgotten
// once a later one served; a delete marks it deleted, its database gone.
func TestSiteLifecycle(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t)
	h.wpPlatform(t, "wp")
	s, _ := h.install(t, "life")
	if code, body := h.get(t, s.Domain, 200); code != 200 || !strings.Contains(body, "<title>"+s.Domain+"</title>") {
		t.Fatalf("GET %s after install: %d %.200q", s.Domain, code, body)
	}

	// Verify: what its health check found replaces what was recorded.
	if err := h.st.SaveSiteHealth(h.ctx, s.ID, entities.SiteHealth{Status: entities.HealthError, Error: "recorded by the test", Checked: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.run(t, h.siteTask(t, s.Domain, entities.TaskSiteVerify, nil), provision.StatusSuccess)
	if hl := h.site(t, s.Domain).Health; hl == nil || hl.Status != entities.HealthOK || hl.HTTPCode != 200 || hl.Error != "" {
		t.Errorf("health after verify: %+v, want ok 200", hl)
	}

	// A disable whose reload fails: the reload is pending on web1.
	h.setRestartCmd(t, "echo cannot reload >&2; false")
	if o := h.r.Run(h.ctx, h.siteTask(t, s.Domain, entities.TaskSiteDisable, nil), &taskLog{}); o.Status == provision.StatusSuccess {
		t.Fatalf("disable with a failing reload: status %s", o.Status)
	}
	if !h.httpService(t).ReloadPending {
		t.Fatal("the failed reload is not recorded as pending")
	}
	// Fixed, the enable reloads: nothing is pending, the site answers.
	h.setRestartCmd(t, h.web.ReloadCmd)
	h.run(t, h.siteTask(t, s.Domain, entities.TaskSiteEnable, nil), provision.StatusSuccess)
	if h.httpService(t).ReloadPending {
		t.Error("the reload is still pending after the enable reloaded")
	}
	if code, _ := h.get(t, s.Domain, 200); code != 200 {
		t.Errorf("GET %s after enable: %d", s.Domain, code)
	}

	h.run(t, h.siteTask(t, s.Domain, entities.TaskSiteDelete, map[string]string{"no_backup": "1"}), provision.StatusSuccess)
	// A deleted site is no longer found by its name; by its id it is.
	if d, err := h.st.GetSiteByID(h.ctx, s.ID); err != nil || d.Status != entities.SiteDeleted {
		t.Errorf("site after delete: %+v, %v; want status %s", d, err, entities.SiteDeleted)
	}
	if _, err := h.st.GetSite(h.ctx, s.Domain); err == nil {
		t.Errorf("a deleted site is still found by its domain")
	}
	if mariadbHas(t, "database", s.DBName) || mariadbHas(t, "user", s.DBUser) {
		t.Error("database or user left after delete")
	}
}

// An install whose certificate cannot be had fails, but the site is
// installed and answers on HTTP: the back end marks its changes
// committed, and they are saved.
func TestFailedInstallSavesCommittedChanges(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t)
	h.wpPlatform(t, "wp")
	// A directory no ACME client accepts: no certificate, at once.
	h.r.Settings.ACME = hosting.ACMESettings{Directory: "ftp://127.0.0.1/directory"}
	domain := testsite.Domain(t, "cmt")
	o, log := h.run(t, h.addSite(t, domain, "wp", entities.HTTPSOn), provision.StatusError)
	if !strings.Contains(o.Error, "HTTPS is not set up") {
		t.Fatalf("install without a certificate: %s\n%s", o.Error, log)
	}
	s := h.site(t, domain)
	if name := db.NameFor(domain, nil); s.Status != entities.SiteInstalled || s.DBName != name {
		t.Errorf("site after an install committed but for its certificate: status %s database %q; want %s, %s", s.Status, s.DBName, entities.SiteInstalled, name)
	}
	if !mariadbHas(t, "database", s.DBName) {
		t.Errorf("database %s is not there", s.DBName)
	}
}

// Cleanup after a dispatcher that died during an install: while the site
// is installed nothing is touched; an install whose end was never saved
// (the site still queued) is undone on the servers, its database, user
// and virtual host gone, and the site stays queued for a retry.
func TestCleanupUndoesAnUnfinishedInstall(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t)
	h.wpPlatform(t, "wp")
	s, task := h.install(t, "cln")
	vhost := filepath.Join(h.web.ConfigDir, "vhost.d", s.Domain+".conf")
	if _, err := os.Stat(vhost); err != nil {
		t.Fatalf("no virtual host after install: %v", err)
	}

	log := &taskLog{}
	if finished, err := h.r.Cleanup(h.ctx, task, log); err != nil || finished {
		t.Fatalf("cleanup of a finished install: finished %v, %v\n%s", finished, err, log)
	}
	if !mariadbHas(t, "database", s.DBName) || h.site(t, s.Domain).Status != entities.SiteInstalled {
		t.Fatal("cleanup undid an install whose end was saved")
	}

	// The dispatcher died before saving the install's end.
	if err := h.st.SetSiteStatus(h.ctx, s.ID, entities.SiteQueued); err != nil {
		t.Fatal(err)
	}
	log = &taskLog{}
	if finished, err := h.r.Cleanup(h.ctx, task, log); err != nil || finished {
		t.Fatalf("cleanup of an unfinished install: finished %v, %v\n%s", finished, err, log)
	}
	if mariadbHas(t, "database", s.DBName) || mariadbHas(t, "user", s.DBUser) {
		t.Errorf("database or user %s left by the cleanup\n%s", s.DBName, log)
	}
	if _, err := os.Stat(vhost); !os.IsNotExist(err) {
		t.Errorf("virtual host left by the cleanup: %v", err)
	}
	if st := h.site(t, s.Domain).Status; st != entities.SiteQueued {
		t.Errorf("site after the cleanup: status %s, want %s", st, entities.SiteQueued)
	}
	if strings.Contains(log.String(), "backup of") {
		t.Errorf("the cleanup took a backup of what never worked:\n%s", log)
	}
}
