package cli_test

import (
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
)

// httpsEnv is a host environment with a private ACME CA (pebble) that
// validates on the web server's HTTP port, configured in aegir.yaml.
type httpsEnv struct {
	*hostEnv
	ca     *testenv.Pebble
	notify string // what the notify command received
}

func newHTTPSEnv(t *testing.T, kind string) *httpsEnv {
	t.Helper()
	h := newHostEnv(t, kind)
	ca := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: h.web.Port})
	notify := filepath.Join(t.TempDir(), "notified")
	cfg := "\nacme_directory: " + ca.Directory + "\nacme_ca_file: " + ca.CAFile + "\nacme_email: admin@example.org\n" +
		"queue:\n  cron: {enabled: false}\n  stats: {enabled: false}\n" +
		"notify:\n  command: cat >> " + notify + "\n"
	f, err := os.OpenFile(filepath.Join(h.home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(cfg); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return &httpsEnv{hostEnv: h, ca: ca, notify: notify}
}

// curl fetches https://DOMAIN:PORT/path once with the real curl,
// trusting pebble's root and resolving DOMAIN to 127.0.0.1 (no retry:
// what a command changed is served when it returns). It returns the body
// (empty on failure) and curl's error output.
func (h *httpsEnv) curl(t *testing.T, domain, path, want string) (string, string) {
	t.Helper()
	port := itoa(h.web.HTTPSPort)
	cmd := exec.Command("curl", "-sS", "--max-time", "10", "--noproxy", "*", "--cacert", h.ca.RootFile,
		"--resolve", domain+":"+port+":127.0.0.1", "https://"+domain+":"+port+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), want) {
		t.Logf("curl https://%s:%s%s: %v, %.200q, want %q", domain, port, path, err, out, want)
	}
	return string(out), stderr.String()
}

// curlAlias checks over HTTPS, once, that the alias's certificate
// verifies and that WordPress answers it (the site, or its canonical
// redirect to the domain).
func (h *httpsEnv) curlAlias(t *testing.T, alias, domain string) {
	t.Helper()
	port := itoa(h.web.HTTPSPort)
	// With HTTPS on (not required), the site's own address is http:// on
	// the HTTP port, and WordPress redirects to its host and port.
	want := "301 https://" + domain + ":"
	out, _ := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--max-time", "10", "--noproxy", "*",
		"--cacert", h.ca.RootFile, "--resolve", alias+":"+port+":127.0.0.1", "https://"+alias+":"+port+"/").CombinedOutput()
	if got := string(out); !strings.HasPrefix(got, want) && got != "200 " {
		t.Fatalf("curl https://%s:%s/: %q, want 200 or %q... (the site, or WordPress's redirect, over a verified TLS connection)", alias, port, got, want)
	}
}

// servedSerial is the serial of the certificate the web server presents
// for domain (not verified: admin certificates are self-signed here).
func (h *httpsEnv) servedSerial(t *testing.T, domain, notSerial string) string {
	t.Helper()
	return servedSerialAt(t, h.web.HTTPSPort, domain, notSerial)
}

// servedSerialAt is servedSerial for the web server on port.
func servedSerialAt(t *testing.T, port int, domain, notSerial string) string {
	t.Helper()
	var serial string
	for i := 0; i < 40; i++ {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+itoa(port),
			&tls.Config{ServerName: domain, InsecureSkipVerify: true})
		if err == nil {
			serial = c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
			c.Close()
			if serial != notSerial {
				return serial
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	return serial
}

type certRow struct {
	Domain    string
	Names     []string
	Issuer    string
	Source    string
	NotAfter  *time.Time `json:"not_after"`
	DaysLeft  *int       `json:"days_left"`
	CertPath  string     `json:"cert_path"`
	KeyPath   string     `json:"key_path"`
	Failures  int
	LastError string `json:"last_error"`
}

func certOf(t *testing.T, home, domain string) *certRow {
	t.Helper()
	var rows []certRow
	if err := json.Unmarshal([]byte(must(t, home, "cert", "list", "--format", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if rows[i].Domain == domain {
			return &rows[i]
		}
	}
	return nil
}

// stateExec runs a statement on the state file: the tests' way to let time
// pass.
func stateExec(t *testing.T, home, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(home, "aegir.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// makeDue sets a certificate's renewal time to now, as when 30 days
// before its expiry have come.
func makeDue(t *testing.T, home, domain string) {
	t.Helper()
	stateExec(t, home, `UPDATE certificates SET renew_after = 0 WHERE site_id = (SELECT id FROM sites WHERE domain = ? AND status <> 'deleted')`, domain)
	nextRun(t, home)
}

// nextRun makes the cert queue due, as when its next run (a minute after
// the last) has come.
func nextRun(t *testing.T, home string) {
	t.Helper()
	stateExec(t, home, `UPDATE queue_runs SET last_run = NULL WHERE name = 'cert'`)
}

// HTTPS end to end on nginx and apache, with a real ACME CA: a WordPress
// site gets a certificate for its domain and alias and answers over HTTPS
// (curl --cacert pebble's root); with required, HTTP answers 301 (but ACME
// challenges) and HTTPS sends HSTS; a new alias is covered after verify;
// the cert queue renews a due certificate, and a failed renewal keeps the
// current one, notifies and backs off; a challenge that cannot be
// answered fails the install but the site answers on HTTP; a brought
// certificate is checked, then installed; delete removes certificate and key.
func TestSiteHTTPS(t *testing.T) {
	for _, kind := range []string{"nginx", "apache"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			h := newHTTPSEnv(t, kind)
			h.wpPlatform(t, "wp")
			domain := testsite.Domain(t, "tls-"+kind)
			title := "<title>" + domain + "</title>"

			_, errs, code := aegir(t, h.home, "site", "install", domain, "--platform", "wp", "--alias", "www."+domain, "--https", "required")
			if code != 0 {
				t.Fatalf("install: exit %d\n%s", code, errs)
			}
			t.Logf("%s: install with a certificate: %v", kind, time.Since(start).Round(time.Millisecond))
			c := certOf(t, h.home, domain)
			if c == nil || c.Source != "acme" || !strings.Contains(c.Issuer, "Pebble") || c.DaysLeft == nil || *c.DaysLeft < 1 ||
				strings.Join(c.Names, " ") != domain+" www."+domain {
				t.Fatalf("cert list after install: %+v", c)
			}
			if sc, _ := siteRecord(t, h.home, domain)["cert"].(map[string]any); sc == nil || sc["source"] != "acme" || sc["days_left"] == nil {
				t.Fatalf("site show's cert: %v", sc)
			}
			if out := must(t, h.home, "site", "show", domain); !regexp.MustCompile(`│ cert +│ ` + regexp.QuoteMeta(domain+" www."+domain) + `, Pebble[^,]*, until \d{4}-\d\d-\d\d \(\d+ days\)`).MatchString(out) {
				t.Fatalf("site show's table has no cert row with names, issuer and days left:\n%s", out)
			}
			if st, err := os.Stat(c.KeyPath); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file %s: %v %v, want 0600", c.KeyPath, err, st)
			}
			if strings.Contains(errs, "PRIVATE KEY") {
				t.Fatal("the task log shows key material")
			}
			if body, cerr := h.curl(t, domain, "/", title); !strings.Contains(body, title) {
				t.Fatalf("curl https://%s: want the site's title; curl said %s; body %.300s", domain, cerr, body)
			}
			h.curlAlias(t, "www."+domain, domain)

			// required: HTTP redirects (ACME challenges excepted); HSTS.
			wantLoc := "https://" + domain + ":" + itoa(h.web.HTTPSPort) + "/a?b=1"
			redirects := func(code int, _ string, hdr http.Header) bool { return code == 301 && hdr.Get("Location") == wantLoc }
			if code, _, hdr := h.get(t, domain, "/a?b=1", redirects); !redirects(code, "", hdr) {
				t.Fatalf("HTTP with required: %d %q, want 301 %s", code, hdr.Get("Location"), wantLoc)
			}
			if code, _, _ := h.get(t, domain, "/.well-known/acme-challenge/none", func(c int, _ string, _ http.Header) bool { return c == 404 }); code != 404 {
				t.Fatalf("ACME path on HTTP with required: %d, want 404 (served, not redirected)", code)
			}
			out, err := exec.Command("curl", "-sS", "-o", "/dev/null", "-D", "-", "--noproxy", "*", "--cacert", h.ca.RootFile, "--resolve",
				domain+":"+itoa(h.web.HTTPSPort)+":127.0.0.1", "https://"+domain+":"+itoa(h.web.HTTPSPort)+"/").CombinedOutput()
			if err != nil || !strings.Contains(strings.ToLower(string(out)), "strict-transport-security: max-age=") {
				t.Fatalf("no HSTS over HTTPS: %v\n%s", err, out)
			}

			// A new alias: the next verify gets a certificate that covers it.
			must(t, h.home, "site", "edit", domain, "--add-alias", "new."+domain, "-q")
			if c2 := certOf(t, h.home, domain); len(c2.Names) != 3 || c2.CertPath == c.CertPath {
				t.Fatalf("after adding an alias: %+v", c2)
			}
			if _, err := os.Stat(c.CertPath); !os.IsNotExist(err) {
				t.Errorf("the previous certificate file is left: %v", err)
			}
			h.curlAlias(t, "new."+domain, domain)
			// That verify checked the site over HTTP (301) and HTTPS, where
			// its visitors land (200).
			if hl := siteHealth(t, h.home, domain); hl.Status != "ok" || hl.HTTPCode != 200 {
				t.Fatalf("health of the HTTPS site after verify: %+v", hl)
			}

			// Renewal by the cert queue once the certificate is due.
			serial := h.servedSerial(t, domain, "")
			makeDue(t, h.home, domain)
			must(t, h.home, "hosting", "dispatch", "-q")
			renewed := h.servedSerial(t, domain, serial)
			if renewed == serial {
				t.Fatalf("the cert queue did not renew: still serving %s", serial)
			}
			if body, _ := h.curl(t, domain, "/", title); !strings.Contains(body, title) {
				t.Fatal("site not served after renewal")
			}

			// A name that does not point here: a new alias whose DNS points
			// elsewhere (a fresh name, so that no earlier validation of the
			// CA's can stand in for it). The verify after the edit fails and
			// says why; the certificate in service stays; the cert queue's
			// retry fails too, is notified, and the next waits for its backoff.
			fresh := "fresh." + domain
			h.ca.SetA(t, fresh, "127.0.0.2")
			_, errs, code = aegir(t, h.home, "site", "edit", domain, "--add-alias", fresh)
			if code != cli.ExitFailed || !strings.Contains(errs, "127.0.0.2") || !strings.Contains(errs, "hint: ") {
				t.Fatalf("an alias that does not point here: exit %d\n%s", code, errs)
			}
			c3 := certOf(t, h.home, domain)
			if c3.Failures != 1 || !strings.Contains(c3.LastError, "127.0.0.2") || c3.CertPath == "" {
				t.Fatalf("after a failed verify: %+v", c3)
			}
			if s := h.servedSerial(t, domain, ""); s != renewed {
				t.Fatalf("serving %s after a failed challenge, want the current %s", s, renewed)
			}
			makeDue(t, h.home, domain)
			_, errs, _ = aegir(t, h.home, "hosting", "dispatch")
			if c := certOf(t, h.home, domain); c.Failures != 2 || c.CertPath != c3.CertPath {
				t.Fatalf("after a failed renewal: %+v\n%s", c, errs)
			}
			if s := h.servedSerial(t, domain, ""); s != renewed {
				t.Fatalf("serving %s after a failed renewal, want the current %s", s, renewed)
			}
			if b, _ := os.ReadFile(h.notify); !strings.Contains(string(b), `"site.cert"`) {
				t.Fatalf("no failure notice for the renewal: %q", b)
			}
			nextRun(t, h.home)
			must(t, h.home, "hosting", "dispatch", "-q")
			if c := certOf(t, h.home, domain); c.Failures != 2 {
				t.Fatalf("retried before its backoff: %+v", c)
			}
			// The alias goes again: the certificate covers the site, which
			// clears the failures.
			must(t, h.home, "site", "edit", domain, "--remove-alias", fresh, "-q")
			if c := certOf(t, h.home, domain); c.Failures != 0 || c.CertPath != c3.CertPath {
				t.Fatalf("after removing the alias: %+v", c)
			}

			// A CA that is down: the same, and the message says so.
			cfgFile := filepath.Join(h.home, "aegir.yaml")
			good, _ := os.ReadFile(cfgFile)
			down := strings.Replace(string(good), h.ca.Directory, "https://127.0.0.1:"+itoa(testenv.FreePort(t))+"/dir", 1)
			if err := os.WriteFile(cfgFile, []byte(down), 0o600); err != nil {
				t.Fatal(err)
			}
			makeDue(t, h.home, domain)
			aegir(t, h.home, "hosting", "dispatch", "-q")
			if c := certOf(t, h.home, domain); c.Failures != 1 || !strings.Contains(c.LastError, "did not answer") {
				t.Fatalf("after a renewal with the CA down: %+v", c)
			}
			if s := h.servedSerial(t, domain, ""); s != renewed {
				t.Fatalf("serving %s with the CA down, want the current %s", s, renewed)
			}
			if err := os.WriteFile(cfgFile, good, 0o600); err != nil {
				t.Fatal(err)
			}

			// A brought certificate: refused when it does not cover every
			// name (exit 2, nothing changed), installed when it does.
			dir := t.TempDir()
			writeSelfSigned(t, dir, "short", []string{domain})
			_, errs, code = aegir(t, h.home, "site", "cert", domain, "--cert", filepath.Join(dir, "short.crt"), "--key", filepath.Join(dir, "short.key"))
			if code != cli.ExitUsage || !strings.Contains(errs, "does not cover www."+domain) {
				t.Fatalf("a certificate missing aliases: exit %d\n%s", code, errs)
			}
			if c5 := certOf(t, h.home, domain); c5.CertPath != c3.CertPath || c5.Source != "acme" {
				t.Fatalf("a refused certificate changed the record: %+v", c5)
			}
			adminSerial := writeSelfSigned(t, dir, "all", []string{domain, "www." + domain, "new." + domain})
			must(t, h.home, "site", "cert", domain, "--cert", filepath.Join(dir, "all.crt"), "--key", filepath.Join(dir, "all.key"), "-q")
			if c6 := certOf(t, h.home, domain); c6.Source != "admin" || c6.Issuer != domain {
				t.Fatalf("brought certificate: %+v", c6)
			}
			if s := h.servedSerial(t, domain, renewed); s != adminSerial {
				t.Fatalf("serving %s, want the brought certificate %s", s, adminSerial)
			}

			// A challenge that cannot be answered fails the install, which
			// keeps the site answering on HTTP.
			bad := testsite.Domain(t, "away-"+kind)
			h.ca.SetA(t, bad, "127.0.0.2")
			_, errs, code = aegir(t, h.home, "site", "install", bad, "--platform", "wp", "--https", "on")
			if code != cli.ExitFailed || !strings.Contains(errs, "answers on HTTP") || !strings.Contains(errs, "connection refused") || !strings.Contains(errs, "hint: ") {
				t.Fatalf("install with an unreachable challenge: exit %d\n%s", code, errs)
			}
			if rec := siteRecord(t, h.home, bad); rec["status"] != "installed" {
				t.Fatalf("site after the failed challenge: %v", rec["status"])
			}
			badTitle := "<title>" + bad + "</title>"
			ok := func(code int, body string, _ http.Header) bool {
				return code == 200 && strings.Contains(body, badTitle)
			}
			if code, body, _ := h.get(t, bad, "/", ok); !ok(code, body, nil) {
				t.Fatalf("the site does not answer on HTTP after the failed challenge: %d %.200s", code, body)
			}
			if c := certOf(t, h.home, bad); c == nil || c.NotAfter != nil || c.Failures != 1 {
				t.Fatalf("pending certificate of %s: %+v", bad, c)
			}

			// Migrated to a new domain (its DNS right), the site gets a
			// certificate for it from the cert queue's next run.
			moved := testsite.Domain(t, "moved-"+kind)
			must(t, h.home, "site", "migrate", bad, "--platform", "wp", "--domain", moved, "-q")
			if c := certOf(t, h.home, moved); c != nil {
				t.Fatalf("the migrated site kept the old certificate record: %+v", c)
			}
			nextRun(t, h.home)
			must(t, h.home, "hosting", "dispatch", "-q")
			if c := certOf(t, h.home, moved); c == nil || c.NotAfter == nil || strings.Join(c.Names, " ") != moved {
				t.Fatalf("certificate after the migrate and a dispatch: %+v", c)
			}
			h.curlAlias(t, moved, moved)

			// Delete removes the certificate and key.
			must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
			if _, err := os.Stat(filepath.Dir(c3.CertPath)); !os.IsNotExist(err) {
				t.Fatalf("certificate directory left after delete: %v", err)
			}
			if c := certOf(t, h.home, domain); c != nil {
				t.Fatalf("deleted site still listed: %+v", c)
			}
			movedCert := certOf(t, h.home, moved)
			must(t, h.home, "site", "delete", moved, "--no-backup", "-q")
			if _, err := os.Stat(filepath.Dir(movedCert.CertPath)); !os.IsNotExist(err) {
				t.Fatalf("certificate directory of %s left after delete: %v", moved, err)
			}
			t.Logf("%s: whole test %v", kind, time.Since(start).Round(time.Millisecond))
		})
	}
}

// writeSelfSigned writes NAME.crt and NAME.key covering names, valid now,
// and returns the serial (hex).
func writeSelfSigned(t *testing.T, dir, name string, names []string) string {
	t.Helper()
	cert, key, serial := testenv.SelfSigned(t, names, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return serial
}

// archiveList is `tar tvzf` of a backup: one line a member, with its mode.
func archiveList(t *testing.T, archive string) string {
	t.Helper()
	out, err := exec.Command("tar", "tvzf", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("tar tvzf %s: %v\n%s", archive, err, out)
	}
	return string(out)
}

// A site's certificate and key go into its backups, and a restore puts
// them back: after a renewal, restoring the backup serves the backed-up
// certificate again and records it (the newer one stays on disk); the key
// stays 0600 in the archive and on the server. A backup from before the
// site had a certificate restores its content and keeps the certificate
// in service.
func TestBackupRestoreHTTPS(t *testing.T) {
	t.Parallel()
	h := newHTTPSEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "bk-tls")
	must(t, h.home, "site", "install", domain, "--platform", "wp", "--alias", "www."+domain, "--https", "off", "-q")
	title := "<title>" + domain + "</title>"
	backup := func() backupRec {
		t.Helper()
		var b backupRec
		if err := json.Unmarshal([]byte(must(t, h.home, "site", "backup", domain, "--format", "json", "-q")), &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := backup()
	if l := archiveList(t, plain.Path); strings.Contains(l, " ssl/") {
		t.Fatalf("a site without a certificate has ssl/ in its backup:\n%s", l)
	}

	must(t, h.home, "site", "edit", domain, "--https", "required", "-q")
	c1 := certOf(t, h.home, domain)
	if c1 == nil || c1.CertPath == "" {
		t.Fatalf("no certificate after --https required: %+v", c1)
	}
	serial1 := h.servedSerial(t, domain, "")
	withCert := backup()
	list := archiveList(t, withCert.Path)
	keyMember := "ssl/" + filepath.Base(c1.KeyPath)
	if !strings.Contains(list, "ssl/"+filepath.Base(c1.CertPath)) || !regexp.MustCompile(`(?m)^-rw------- .* `+regexp.QuoteMeta(keyMember)+`$`).MatchString(list) {
		t.Fatalf("the backup lacks the certificate, or its key is not 0600:\n%s", list)
	}

	// A new certificate, then the restore: the backed-up one is served again.
	must(t, h.home, "site", "cert", domain, "-q")
	c2 := certOf(t, h.home, domain)
	serial2 := h.servedSerial(t, domain, serial1)
	if c2.CertPath == c1.CertPath || serial2 == serial1 {
		t.Fatalf("site cert did not renew: %+v, serving %s", c2, serial2)
	}
	_, errs, code := aegir(t, h.home, "site", "restore", domain, "--backup", itoa(int(withCert.ID)))
	if code != 0 || !strings.Contains(errs, "from the backup is put back") {
		t.Fatalf("restore: exit %d\n%s", code, errs)
	}
	if s := h.servedSerial(t, domain, serial2); s != serial1 {
		t.Fatalf("after the restore serving %s, want the backed-up certificate %s", s, serial1)
	}
	if c := certOf(t, h.home, domain); c.CertPath != c1.CertPath || c.KeyPath != c1.KeyPath || !c.NotAfter.Equal(*c1.NotAfter) || c.Source != "acme" {
		t.Fatalf("record after the restore: %+v, want %+v", c, c1)
	}
	if st, err := os.Stat(c1.KeyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("restored key %s: %v %v, want 0600", c1.KeyPath, err, st)
	}
	// Nothing beside the site's directory; the newer certificate stays
	// in it, out of service.
	sslDir := filepath.Dir(filepath.Dir(c1.CertPath))
	if names, _ := filepath.Glob(filepath.Join(sslDir, "*")); len(names) != 1 || !exists(c2.CertPath) || !exists(c2.KeyPath) {
		t.Fatalf("left in %s after the restore: %v (the newer certificate there: %v)", sslDir, names, exists(c2.CertPath))
	}
	if body, cerr := h.curl(t, domain, "/", title); !strings.Contains(body, title) {
		t.Fatalf("curl https://%s after the restore: %s %.300s", domain, cerr, body)
	}

	// A backup without a certificate: the content comes back, the
	// certificate in service stays.
	_, errs, code = aegir(t, h.home, "site", "restore", domain, "--backup", itoa(int(plain.ID)))
	if code != 0 || !strings.Contains(errs, "the backup holds no certificate; "+domain+" keeps its current certificate") {
		t.Fatalf("restore of a backup without a certificate: exit %d\n%s", code, errs)
	}
	if c := certOf(t, h.home, domain); c.CertPath != c1.CertPath {
		t.Fatalf("record after restoring a backup without a certificate: %+v", c)
	}
	if s := h.servedSerial(t, domain, ""); s != serial1 {
		t.Fatalf("serving %s after restoring a backup without a certificate, want %s", s, serial1)
	}
	if body, cerr := h.curl(t, domain, "/", title); !strings.Contains(body, title) {
		t.Fatalf("curl https://%s after restoring a backup without a certificate: %s %.300s", domain, cerr, body)
	}

	// A backup whose certificate directory holds the one in service (c1)
	// and a newer one (c2): its restore puts back the one in service.
	both := backup()
	must(t, h.home, "site", "cert", domain, "-q")
	h.servedSerial(t, domain, serial1)
	must(t, h.home, "-y", "site", "restore", domain, "--backup", itoa(int(both.ID)), "-q")
	if s := h.servedSerial(t, domain, ""); s != serial1 || certOf(t, h.home, domain).CertPath != c1.CertPath {
		t.Fatalf("after restoring a backup with two certificates: serving %s (c2 is %s), want the one in service then, %s", s, serial2, serial1)
	}

	// A restore that fails once the backup's certificate is in the
	// directory (the web server refuses its configuration): the
	// certificate in service and its files stay, the backup's go.
	must(t, h.home, "site", "cert", domain, "-q")
	c3 := certOf(t, h.home, domain)
	serial3 := h.servedSerial(t, domain, serial1)
	broken := filepath.Join(h.home, "config", "web1", "vhost.d", "zz-broken.conf")
	if err := os.WriteFile(broken, []byte("this is not nginx;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code = aegir(t, h.home, "site", "restore", domain, "--backup", itoa(int(withCert.ID)))
	os.Remove(broken)
	if code != cli.ExitFailed || !strings.Contains(errs, "rollback: remove "+c1.CertPath) {
		t.Fatalf("restore refused by the web server: exit %d\n%s", code, errs)
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(c3.CertPath), "*")); len(names) != 2 || !exists(c3.CertPath) || !exists(c3.KeyPath) {
		t.Fatalf("certificate directory after the failed restore: %v, want only %s and its key", names, c3.CertPath)
	}
	if c := certOf(t, h.home, domain); c.CertPath != c3.CertPath {
		t.Fatalf("record after the failed restore: %+v", c)
	}
	if out, err := exec.Command("sh", "-c", h.web.TestCmd).CombinedOutput(); err != nil {
		t.Fatalf("the web server's configuration after the failed restore: %v\n%s", err, out)
	}
	if s := h.servedSerial(t, domain, ""); s != serial3 {
		t.Fatalf("serving %s after the failed restore, want %s", s, serial3)
	}
	must(t, h.home, "site", "delete", domain, "--no-backup", "-q")
}
