// Package acme gets HTTPS certificates for sites from an ACME CA (Let's
// Encrypt by default) with github.com/mholt/acmez.
//
// The master holds one ACME account per CA directory, made on first use,
// in an Accounts: by default the aegir home's files (HomeAccounts:
// HOME/acme/DIRECTORY-KEY/account.json, the account's URL and contact, and
// account.key, its private key, mode 0600, written under an flock), so
// that parallel tasks and overlapping cron runs share one account. A
// caller may keep the accounts elsewhere (Config.Accounts), where several
// masters share them; a home's own account is then imported there on
// first use.
//
// HTTP-01 challenges are answered by the site's own virtual host: HTTPDir
// writes the token file into the challenge directory on the site's web
// server through its exec.Executor (local or SSH), where every vhost aegir
// writes serves /.well-known/acme-challenge/. Certificate keys are ECDSA
// P-256, made on the master, returned PEM-encoded to the caller to be
// written mode 0600 on the web server; they are never logged.
package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mholt/acmez/v3"
	acmeapi "github.com/mholt/acmez/v3/acme"

	"github.com/aegir-project/aegir/pkg/provision"
)

// Well-known directories, selectable by name in the acme_directory setting.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ErrCode is the provision error code of a failure to get a certificate.
const ErrCode = "acme"

// DefaultRenewBefore is how long before expiry a certificate is renewed.
const DefaultRenewBefore = 30 * 24 * time.Hour

// Config is how to reach the CA.
type Config struct {
	// Directory is the CA's directory URL, or "production" / "staging" for
	// Let's Encrypt's. Empty: production.
	Directory string
	// Email is the account's contact address; empty: none.
	Email string
	// CAFile holds extra PEM roots to trust for the directory's own TLS
	// (a private CA such as pebble); the system's roots are trusted too.
	CAFile string
	// Home is the master's aegir home: the account lives under Home/acme
	// unless Accounts is set.
	Home string
	// Accounts is where the account lives; nil: HomeAccounts{Home}.
	Accounts Accounts
	// Logf receives progress lines (nil: none).
	Logf func(level, format string, args ...any)
}

// DirectoryURL resolves the names "production" and "staging" and checks
// that the directory is an https URL (http only on loopback, for tests).
func DirectoryURL(dir string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(dir)) {
	case "", "production", "letsencrypt":
		return LetsEncrypt, nil
	case "staging", "letsencrypt-staging":
		return LetsEncryptStaging, nil
	}
	u, err := url.Parse(dir)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return "", fmt.Errorf("invalid acme_directory %q: want an https:// URL, or production or staging", dir)
	}
	return dir, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Client gets certificates from one CA.
type Client struct {
	cfg Config
	dir string
	ac  *acmez.Client
}

// New checks cfg and makes a Client. Nothing is sent to the CA yet.
func New(cfg Config) (*Client, error) {
	dir, err := DirectoryURL(cfg.Directory)
	if err != nil {
		return nil, provision.Errorf(provision.ErrInvalidContext, "set acme_directory in aegir.yaml to production, staging or your CA's directory URL", "%v", err)
	}
	if cfg.Home == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "this is a bug in aegir", "no aegir home for the ACME account")
	}
	hc, err := httpClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, dir: dir}
	c.ac = &acmez.Client{
		Client: &acmeapi.Client{
			Directory:   dir,
			HTTPClient:  hc,
			UserAgent:   "aegir",
			PollTimeout: 2 * time.Minute,
			Logger:      slog.New(&logHandler{logf: c.logf}),
		},
	}
	return c, nil
}

// Directory is the CA's directory URL.
func (c *Client) Directory() string { return c.dir }

func (c *Client) logf(level, format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(level, format, args...)
	}
}

// httpClient trusts the system's roots and those of caFile.
func httpClient(caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, provision.Errorf(provision.ErrInvalidContext, "fix acme_ca_file in aegir.yaml: a PEM file of the CA's root certificate(s)", "reading acme_ca_file: %v", err)
		}
		if !roots.AppendCertsFromPEM(b) {
			return nil, provision.Errorf(provision.ErrInvalidContext, "fix acme_ca_file in aegir.yaml: a PEM file of the CA's root certificate(s)", "acme_ca_file %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// Register finds or makes the account for the CA and registers it there
// (Obtain does so first); it answers the account's URL at the CA.
func (c *Client) Register(ctx context.Context) (string, error) {
	acct, err := c.account(ctx)
	var pe *provision.Error
	if err != nil && !errors.As(err, &pe) {
		err = provision.Errorf(ErrCode, "check acme_directory in aegir.yaml and that this machine reaches the CA", "registering the ACME account with %s: %v", c.dir, err)
	}
	if err != nil {
		return "", err
	}
	return acct.Location, nil
}

// Issued is a certificate the CA issued, with its key.
type Issued struct {
	ChainPEM []byte // leaf first, then the intermediates
	KeyPEM   []byte // secret: PKCS#8, to be written mode 0600
	Info     Info
}

// Obtain gets a certificate for names (the first is the subject) from the
// CA, answering its challenges with solver (see HTTPDir). It registers the
// home's account on first use. A refusal of the CA comes back as a
// *provision.Error (code ErrCode) that says what the CA said and what to
// do about it.
func (c *Client) Obtain(ctx context.Context, names []string, solver acmez.Solver) (*Issued, error) {
	if len(names) == 0 {
		return nil, provision.Errorf(provision.ErrInvalidContext, "this is a bug in aegir", "no names to certify")
	}
	acct, err := c.account(ctx)
	if err != nil {
		return nil, explain(err, c.dir, names)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c.ac.ChallengeSolvers = map[string]acmez.Solver{acmeapi.ChallengeTypeHTTP01: solver}
	c.logf(provision.LevelInfo, "asking %s for a certificate for %s (HTTP-01 challenge)", c.dir, strings.Join(names, ", "))
	chains, err := c.ac.ObtainCertificateForSANs(ctx, acct, key, names)
	if err != nil {
		return nil, explain(err, c.dir, names)
	}
	if len(chains) == 0 {
		return nil, provision.Errorf(ErrCode, "try again later; if it persists, ask the CA's operator", "the CA at %s issued no certificate chain", c.dir)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := &Issued{ChainPEM: chains[0].ChainPEM, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
	info, err := ParseChain(out.ChainPEM)
	if err != nil {
		return nil, provision.Errorf(ErrCode, "try again; if it persists, ask the CA's operator", "the CA sent a certificate aegir cannot read: %v", err)
	}
	if missing := info.Missing(names); len(missing) > 0 {
		return nil, provision.Errorf(ErrCode, "ask the CA's operator", "the CA's certificate does not cover %s", strings.Join(missing, ", "))
	}
	out.Info = info
	return out, nil
}

// logHandler sends acmez's log records to the task log as debug lines.
type logHandler struct {
	logf  func(level, format string, args ...any)
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return h.logf != nil }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "http request" {
		return nil // every request with its headers: too much even for debug
	}
	var b strings.Builder
	b.WriteString("acme: ")
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.logf(provision.LevelDebug, "%s", b.String())
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{logf: h.logf, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }
