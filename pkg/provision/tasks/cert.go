package tasks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() {
	// site.cert gets a new certificate now: from the ACME CA (the cert
	// queue's renewals, `aegir site cert DOMAIN`), or the one the
	// administrator brings (options cert_file and key_file, on the master).
	engine.Register("site.cert", siteCert)
}

// certRecord is the changes that record the certificate the site uses
// (s.c.SiteCertFile and SiteKeyFile).
func (s *site) certRecord(info acme.Info, source string) *provision.Changes {
	ch := provision.CertRecord{Names: info.Names, Issuer: info.Issuer, Source: source, NotBefore: info.NotBefore, NotAfter: info.NotAfter,
		CertPath: s.c.Site.HTTPS.CertFile, KeyPath: s.c.Site.HTTPS.KeyFile}
	if source == entities.CertACME {
		at := info.RenewAt(s.renewBefore())
		ch.RenewAt = &at
	}
	return &provision.Changes{Site: &provision.SiteChanges{Cert: &ch}}
}

// certDir is where the site's certificate and key live on its web server:
// CONFIGDIR/ssl/DOMAIN (0700).
func (s *site) certDir() string { return s.c.CertDir() }

// certNames are the names a certificate of the site must cover: its domain
// and aliases. Wildcard aliases cannot be validated over HTTP-01: they are
// left out of ACME orders (with a warning) and need a brought certificate.
func (s *site) certNames(forACME bool) []string {
	names := []string{s.c.Site.Domain}
	for _, a := range s.c.Site.Aliases {
		if forACME && strings.HasPrefix(a, "*.") {
			s.env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("site.cert", s.c.Site.Domain, "cert=FILE", "key=FILE")}, "alias %s is a wildcard, which an ACME CA cannot validate over HTTP: the certificate leaves it out; bring one that covers it", a)
			continue
		}
		names = append(names, a)
	}
	return names
}

// certFile and keyFile are the site's certificate and key for its virtual
// host: only those in its own certificate directory on this web server. A
// site moved to another server or domain (migrate, clone) has none there
// until it gets one (its next verify, or the cert queue).
func (s *site) certFile() string { return s.ownCertPath(s.c.Site.HTTPS.CertFile) }
func (s *site) keyFile() string  { return s.ownCertPath(s.c.Site.HTTPS.KeyFile) }

func (s *site) ownCertPath(p string) string {
	if p == "" || s.c.Site.HTTPS.CertFile == "" || s.c.Site.HTTPS.KeyFile == "" || !strings.HasPrefix(p, s.certDir()+"/") {
		return ""
	}
	return p
}

func (s *site) renewBefore() time.Duration {
	if s.c.ACME.RenewDays > 0 {
		return time.Duration(s.c.ACME.RenewDays) * 24 * time.Hour
	}
	return acme.DefaultRenewBefore
}

// currentCert reads the certificate the site uses, from its web server; nil
// when it has none (or it is unreadable, which is logged).
func (s *site) currentCert(ctx context.Context) *acme.Info {
	if s.c.Site.HTTPS.CertFile == "" {
		return nil
	}
	b, err := s.ex.ReadFile(ctx, s.c.Site.HTTPS.CertFile)
	if err == nil {
		var info acme.Info
		if info, err = acme.ParseChain(b); err == nil {
			return &info
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		s.env.Logf(provision.LevelWarning, "the certificate file %s of %s is missing on %s; getting a new certificate", s.c.Site.HTTPS.CertFile, s.c.Site.Domain, s.ex.Host())
	} else {
		s.env.Logf(provision.LevelWarning, "cannot read the certificate %s of %s on %s: %v", s.c.Site.HTTPS.CertFile, s.c.Site.Domain, s.ex.Host(), err)
	}
	s.c.Site.HTTPS.CertFile, s.c.Site.HTTPS.KeyFile = "", ""
	return nil
}

// ensureCert is the HTTPS step of site install and verify, run once the
// site answers on HTTP: with HTTPS on or required, a certificate that
// covers the domain and every alias and is not due for renewal stays;
// otherwise the ACME CA issues one. A certificate the administrator brought
// is kept as it is, with a warning when it no longer fits. On failure the
// site's virtual host stays as it was (HTTP keeps working) and the changes
// carry the failure for the cert queue to retry.
func ensureCert(ctx context.Context, s *site) (*provision.Changes, error) {
	if s.c.Site.HTTPS.Mode == "" || s.c.Site.HTTPS.Mode == entities.HTTPSOff {
		return nil, nil
	}
	cur := s.currentCert(ctx)
	if cur != nil && s.c.Site.HTTPS.CertSource == entities.CertAdmin {
		if missing := cur.Missing(s.certNames(false)); len(missing) > 0 {
			s.env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("site.cert", s.c.Site.Domain, "cert=FILE", "key=FILE")}, "the certificate you brought for %s does not cover %s: browsers will refuse those names over HTTPS; bring one that does",
				s.c.Site.Domain, strings.Join(missing, ", "))
		}
		if left := time.Until(cur.NotAfter); left < s.renewBefore() {
			s.env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("site.cert", s.c.Site.Domain, "cert=FILE", "key=FILE"), entities.Do("site.cert", s.c.Site.Domain)},
				"the certificate you brought for %s expires on %s (%d days left): bring a new one, or let ACME issue one",
				s.c.Site.Domain, cur.NotAfter.Format("2006-01-02"), int(left.Hours()/24))
		}
		return s.certRecord(*cur, entities.CertAdmin), nil
	}
	names := s.certNames(true)
	if cur != nil {
		missing := cur.Missing(names)
		renewAt := cur.RenewAt(s.renewBefore())
		switch {
		case len(missing) == 0 && time.Now().Before(renewAt):
			s.env.Logf(provision.LevelInfo, "certificate of %s covers %s until %s", s.c.Site.Domain, strings.Join(names, ", "), cur.NotAfter.Format("2006-01-02"))
			// Recorded again as it is: this clears earlier failures.
			return s.certRecord(*cur, entities.CertACME), nil
		case len(missing) > 0:
			s.env.Logf(provision.LevelInfo, "the certificate of %s does not cover %s: getting a new one", s.c.Site.Domain, strings.Join(missing, ", "))
		default:
			s.env.Logf(provision.LevelInfo, "the certificate of %s expires on %s: renewing it", s.c.Site.Domain, cur.NotAfter.Format("2006-01-02"))
		}
	}
	return s.issueCert(ctx, names)
}

// issueCert gets a certificate for names from the ACME CA and installs it.
func (s *site) issueCert(ctx context.Context, names []string) (*provision.Changes, error) {
	client, err := acme.New(acme.Config{Directory: s.c.ACME.Directory, Email: s.c.ACME.Email, CAFile: s.c.ACME.CAFile, Home: s.env.Home, Accounts: s.env.ACMEAccounts, Logf: s.env.Logf})
	if err == nil {
		var iss *acme.Issued
		iss, err = client.Obtain(ctx, names, &acme.HTTPDir{Ex: s.ex, Dir: s.ws.ACMEChallengeDir(), CheckAddr: s.httpAddr(), Logf: s.env.Logf})
		if err == nil {
			return s.installCert(ctx, iss.ChainPEM, iss.KeyPEM, iss.Info, entities.CertACME)
		}
	}
	if s.c.Site.HTTPS.CertFile != "" {
		s.env.Logf(provision.LevelWarning, "%s keeps its current certificate (%s)", s.c.Site.Domain, s.c.Site.HTTPS.CertFile)
	} else {
		s.env.Logf(provision.LevelWarning, "%s keeps answering on HTTP only until it has a certificate", s.c.Site.Domain)
	}
	return &provision.Changes{Site: &provision.SiteChanges{CertFailed: &provision.CertFailure{Error: err.Error(), Names: names}}}, err
}

// httpAddr is where the site's web server answers HTTP, as seen from here.
func (s *site) httpAddr() string {
	cfg := s.ws.Config()
	host := cfg.ListenIP
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if !s.ex.IsLocal() {
			host = s.c.Site.Web.Host
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(cfg.HTTPPort))
}

// installCert writes a certificate and its key (0600) beside the site's
// previous ones, points the virtual host at them (the web server's config
// test checks that they match), and then removes the previous ones. When
// the web server refuses them, the new files go and the site keeps its
// previous virtual host and certificate.
func (s *site) installCert(ctx context.Context, chainPEM, keyPEM []byte, info acme.Info, source string) (*provision.Changes, error) {
	dir := s.certDir()
	certPath, keyPath := path.Join(dir, "cert-"+info.ID+".pem"), path.Join(dir, "key-"+info.ID+".pem")
	fail := func(err error, what string) error {
		return &provision.Error{Code: provision.ErrCommand, Err: err, Msg: fmt.Sprintf("%s on %s", what, s.ex.Host()),
			Hint: "check that aegir may write in " + dir + "; the site keeps its previous certificate"}
	}
	if err := s.ex.MkdirAll(ctx, dir, 0o700); err != nil {
		return nil, fail(err, "making "+dir)
	}
	if err := s.ex.Chmod(ctx, dir, 0o700); err != nil {
		return nil, fail(err, "securing "+dir)
	}
	if err := s.ex.WriteFile(ctx, keyPath, keyPEM, 0o600); err != nil {
		return nil, fail(err, "writing the key "+keyPath)
	}
	if err := s.ex.WriteFile(ctx, certPath, chainPEM, 0o644); err != nil {
		return nil, fail(err, "writing the certificate "+certPath)
	}
	// The virtual host keeps the site's own pool and logs.
	if err := s.locateRuntime(ctx); err != nil {
		return nil, err
	}
	oldCert, oldKey, oldSource := s.c.Site.HTTPS.CertFile, s.c.Site.HTTPS.KeyFile, s.c.Site.HTTPS.CertSource
	s.c.Site.HTTPS.CertFile, s.c.Site.HTTPS.KeyFile, s.c.Site.HTTPS.CertSource = certPath, keyPath, source
	if _, err := s.ws.WriteSite(ctx, s.vhost(s.c.Site.Status == entities.SiteDisabled)); err != nil {
		s.c.Site.HTTPS.CertFile, s.c.Site.HTTPS.KeyFile, s.c.Site.HTTPS.CertSource = oldCert, oldKey, oldSource
		if certPath != oldCert {
			_ = s.ex.RemoveAll(context.WithoutCancel(ctx), certPath)
			_ = s.ex.RemoveAll(context.WithoutCancel(ctx), keyPath)
		}
		return nil, err
	}
	// The previous certificate and key go, now that nothing uses them.
	if entries, err := s.ex.ReadDir(ctx, dir); err == nil {
		for _, e := range entries {
			if p := path.Join(dir, e.Name()); p != certPath && p != keyPath {
				_ = s.ex.RemoveAll(ctx, p)
			}
		}
	}
	s.env.Logf(provision.LevelInfo, "installed the certificate of %s for %s, issued by %s, valid until %s: %s",
		s.c.Site.Domain, strings.Join(info.Names, ", "), info.Issuer, info.NotAfter.Format(time.RFC3339), certPath)
	changes := s.certRecord(info, source)
	switch s.c.Site.HTTPS.Mode {
	case "", entities.HTTPSOff:
		s.env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("site.edit", s.c.Site.Domain, "https=on")}, "HTTPS is off for %s, so the certificate waits; turn it on", s.c.Site.Domain)
	case entities.HTTPSRequired, entities.HTTPSOn:
		if oldCert == "" {
			// The site's own address becomes https:// (required), or
			// gets its https:// twin (on; see url and httpsURL).
			if _, err := s.writeSettings(ctx); err != nil {
				return changes, err
			}
		}
	}
	return changes, nil
}

// removeCert removes the site's certificates and keys from its web server.
func removeCert(ctx context.Context, s *site) (*provision.Changes, error) {
	dir := s.certDir()
	if _, err := s.ex.Stat(ctx, dir); errors.Is(err, fs.ErrNotExist) {
		return &provision.Changes{Site: &provision.SiteChanges{CertRemoved: true}}, nil
	}
	if err := s.ex.RemoveAll(ctx, dir); err != nil {
		return nil, &provision.Error{Code: provision.ErrCommand, Err: err, Msg: "removing the certificates of " + s.c.Site.Domain,
			Hint: "remove " + dir + " on " + s.ex.Host() + " by hand"}
	}
	s.env.Logf(provision.LevelInfo, "removed the certificate and key of %s (%s)", s.c.Site.Domain, dir)
	return &provision.Changes{Site: &provision.SiteChanges{CertRemoved: true}}, nil
}

// siteCert installs the certificate the administrator brings (options
// cert_file and key_file: files on the master, checked again here), or
// gets a new one from the ACME CA now.
func siteCert(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	certFile, keyFile := c.Opt("cert_file", ""), c.Opt("key_file", "")
	if certFile == "" && keyFile == "" {
		if s.currentCert(ctx) != nil {
			env.Logf(provision.LevelInfo, "renewing the certificate of %s", c.Site.Domain)
		}
		return s.issueCert(ctx, s.certNames(true))
	}
	if certFile == "" || keyFile == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give both cert_file and key_file", "a brought certificate needs both its certificate and its key file")
	}
	chain, err := os.ReadFile(certFile)
	if err != nil {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give a readable certificate file", "reading the certificate: %v", err).
			With(entities.Do("site.cert", c.Site.Domain, "cert=FILE", "key=FILE"))
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give a readable key file", "reading the key: %v", err).
			With(entities.Do("site.cert", c.Site.Domain, "cert=FILE", "key=FILE"))
	}
	info, err := acme.CheckPair(chain, key, s.certNames(false), time.Now())
	if err != nil {
		return nil, provision.Errorf(provision.ErrInvalidContext, "bring a certificate and key that pass these checks", "certificate for %s refused: %v", c.Site.Domain, err)
	}
	return s.installCert(ctx, chain, key, info, entities.CertAdmin)
}

// withCert runs the HTTPS step after a task's work and merges its changes
// into ch. A failure to get a certificate fails the task, but what the task
// did stays: the changes are marked committed so that the front end saves
// them, and the error says that the site answers on HTTP.
func withCert(ctx context.Context, s *site, ch *provision.Changes, what string) (*provision.Changes, error) {
	certCh, err := ensureCert(ctx, s)
	ch = ch.Merge(certCh)
	if err == nil {
		return ch, nil
	}
	ch = ch.Merge(&provision.Changes{Committed: true})
	var pe *provision.Error
	if errors.As(err, &pe) {
		e := *pe
		e.Msg = fmt.Sprintf("%s, and answers on HTTP, but HTTPS is not set up: %s", what, pe.Msg)
		return ch, &e
	}
	return ch, err
}

// backupCert decides which certificate the site has once a move is done.
// A restore, or a migrate to another web server under the same domain,
// puts the backup's certificate and key back (placeCert, m.certCh) when they
// are still good: the key matches, the domain is covered, not expired.
// Otherwise a restore keeps the site's current certificate, and a site at
// a new place has none there until the cert queue gets it one. A move to
// another domain never takes the old domain's certificate; a migrate to
// another platform on the same web server keeps the site's certificate
// directory as it is.
func (m *move) backupCert(ctx context.Context) error {
	src, dst, env := m.src, m.dst, m.env
	none := func() { dst.c.Site.HTTPS.CertFile, dst.c.Site.HTTPS.KeyFile, dst.c.Site.HTTPS.CertSource = "", "", "" }
	if !m.certs {
		if src.c.Site.Domain != dst.c.Site.Domain {
			none()
		}
		return nil
	}
	var staged string
	for _, pl := range m.placed {
		if pl.Name == sslPart {
			staged = pl.staged
		}
	}
	keep := func(why string) error {
		if err := dst.ex.RemoveAll(ctx, staged); err != nil {
			return fmt.Errorf("remove %s on %s: %w", staged, dst.ex.Host(), err)
		}
		switch {
		case !m.inPlace:
			none()
			if dst.c.Site.HTTPS.Mode != "" && dst.c.Site.HTTPS.Mode != entities.HTTPSOff {
				env.LogFixf(provision.LevelInfo, []entities.Action{entities.Do("site.cert", dst.c.Site.Domain)}, "%s; %s answers on HTTP at its new place until the cert queue gets it a certificate, or at once", why, dst.c.Site.Domain)
			}
		case dst.c.Site.HTTPS.CertFile != "":
			env.Logf(provision.LevelInfo, "%s; %s keeps its current certificate", why, dst.c.Site.Domain)
		}
		return nil
	}
	info, id, err := findCert(ctx, dst.ex, staged, dst.c.Site.Domain, m.manifest.CertFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return keep("the backup holds no certificate")
	case err != nil:
		env.Logf(provision.LevelWarning, "the certificate in the backup is not put back: %v", err)
		return keep("the certificate in the backup is not put back")
	}
	if err := m.placeCert(ctx, staged, id); err != nil {
		return err
	}
	source := m.manifest.CertSource
	if source == "" {
		source = entities.CertACME
	}
	dir := dst.certDir()
	dst.c.Site.HTTPS.CertFile, dst.c.Site.HTTPS.KeyFile, dst.c.Site.HTTPS.CertSource = path.Join(dir, "cert-"+id+".pem"), path.Join(dir, "key-"+id+".pem"), source
	rec := provision.CertRecord{Names: info.Names, Issuer: info.Issuer, Source: source, NotBefore: info.NotBefore, NotAfter: info.NotAfter,
		CertPath: dst.c.Site.HTTPS.CertFile, KeyPath: dst.c.Site.HTTPS.KeyFile}
	env.Logf(provision.LevelInfo, "the certificate of %s from the backup is put back: %s, issued by %s, valid until %s",
		dst.c.Site.Domain, strings.Join(info.Names, ", "), info.Issuer, info.NotAfter.Format("2006-01-02"))
	missing := info.Missing(dst.certNames(source == entities.CertACME))
	if source == entities.CertACME {
		at := info.RenewAt(dst.renewBefore())
		if len(missing) > 0 {
			at = time.Now()
			env.Logf(provision.LevelWarning, "the certificate from the backup does not cover %s: the cert queue's next run gets one that does", strings.Join(missing, ", "))
		}
		rec.RenewAt = &at
	} else if len(missing) > 0 {
		env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("site.cert", dst.c.Site.Domain, "cert=FILE", "key=FILE")}, "the certificate from the backup does not cover %s: bring one that does",
			strings.Join(missing, ", "))
	}
	m.cert = &rec
	return nil
}

// placeCert moves the backup's certificate and key (cert-ID.pem,
// key-ID.pem, from the staged directory) into the site's certificate
// directory beside those there, which stay: the virtual host in service
// names them until it is written again, and a rollback only removes what
// came. Nothing there is removed afterwards either (a newer certificate
// stays on disk, out of service).
func (m *move) placeCert(ctx context.Context, staged, id string) error {
	ex := m.dst.ex
	live := m.dst.certDir()
	if _, err := ex.Lstat(ctx, live); errors.Is(err, fs.ErrNotExist) {
		if err := m.push(moveOp{Op: opRemove, Path: live}); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("check %s on %s: %w", live, ex.Host(), err)
	}
	if err := ex.MkdirAll(ctx, live, 0o700); err != nil {
		return fmt.Errorf("create %s on %s: %w", live, ex.Host(), err)
	}
	for _, name := range []string{"cert-" + id + ".pem", "key-" + id + ".pem"} {
		target := path.Join(live, name)
		if _, err := ex.Lstat(ctx, target); err == nil {
			continue // the site has this certificate already
		}
		if err := m.push(moveOp{Op: opRemove, Path: target}); err != nil {
			return err
		}
		if err := ex.Rename(ctx, path.Join(staged, name), target); err != nil {
			return fmt.Errorf("move %s into %s on %s: %w", name, live, ex.Host(), err)
		}
	}
	return ex.RemoveAll(ctx, staged)
}

// findCert finds in dir (a certificate directory unpacked from a backup)
// the certificate and key (cert-ID.pem, key-ID.pem) that are good for
// domain now: the one named inService (the one the site used), else the
// one valid the longest; and its ID. fs.ErrNotExist when dir holds none,
// else why none is good.
func findCert(ctx context.Context, ex exec.Executor, dir, domain, inService string) (acme.Info, string, error) {
	entries, err := ex.ReadDir(ctx, dir)
	if err != nil {
		return acme.Info{}, "", err
	}
	var best acme.Info
	var bestID string
	var why []string
	for _, e := range entries {
		id, ok := strings.CutPrefix(e.Name(), "cert-")
		if id, ok = strings.CutSuffix(id, ".pem"); !ok || id == "" {
			continue
		}
		chain, err := ex.ReadFile(ctx, path.Join(dir, e.Name()))
		var key []byte
		if err == nil {
			key, err = ex.ReadFile(ctx, path.Join(dir, "key-"+id+".pem"))
		}
		var info acme.Info
		if err == nil {
			info, err = acme.CheckPair(chain, key, []string{domain}, time.Now())
		}
		if err != nil {
			why = append(why, e.Name()+": "+err.Error())
			continue
		}
		if e.Name() == inService {
			return info, id, nil
		}
		if info.NotAfter.After(best.NotAfter) {
			best, bestID = info, id
		}
	}
	switch {
	case bestID != "":
		return best, bestID, nil
	case len(why) == 0:
		return best, "", fs.ErrNotExist
	}
	return best, "", errors.New(strings.Join(why, "; "))
}
