package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/mholt/acmez/v3"
	acmeapi "github.com/mholt/acmez/v3/acme"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// HTTPDir answers HTTP-01 challenges with files in Dir on the web server
// that Ex reaches: the directory every aegir vhost serves at
// /.well-known/acme-challenge/.
type HTTPDir struct {
	Ex  exec.Executor
	Dir string
	// CheckAddr (HOST:PORT), if set, is where the web server answers HTTP:
	// before the CA is told to look, Wait fetches the challenge there (with
	// the name as Host) until the web server serves it, for a few seconds,
	// so that a reload still in progress does not fail the validation.
	CheckAddr string
	Logf      func(level, format string, args ...any)
}

var (
	_ acmez.Solver = (*HTTPDir)(nil)
	_ acmez.Waiter = (*HTTPDir)(nil)
)

// waitFor bounds Wait; unreachableAfter is how long it keeps asking a
// web server that has not answered at all.
const (
	waitFor          = 10 * time.Second
	unreachableAfter = 2 * time.Second
	wantOK           = 5
)

// Wait fetches the challenge from the web server until it is served (a
// reload in progress still answers from the previous configuration), for
// up to 10 s; when the web server cannot be reached from here at all it
// does not wait. It never fails: the CA's own check decides, and says why.
func (h *HTTPDir) Wait(ctx context.Context, chal acmeapi.Challenge) error {
	if h.CheckAddr == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	url := "http://" + h.CheckAddr + chal.HTTP01ResourcePath()
	var last string
	start := time.Now()
	ok := 0
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil
		}
		req.Host = chal.Identifier.Value
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == chal.KeyAuthorization {
				// Several answers in a row: right after a reload the old
				// workers still take a connection now and then (and the CA
				// asks from several places at once).
				if ok++; ok >= wantOK {
					return nil
				}
			} else {
				ok = 0
			}
			last = resp.Status
		} else if time.Since(start) > unreachableAfter && last == "" {
			// Not reachable from here at all (a firewall, NAT): only the
			// CA's view counts, so do not wait longer. (A web server in
			// the middle of a reload refuses or resets for a moment: that
			// is why it is asked again for a little while.)
			if h.Logf != nil {
				h.Logf(provision.LevelDebug, "cannot fetch the challenge for %s from %s: %v", chal.Identifier.Value, h.CheckAddr, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if h.Logf != nil {
				h.Logf(provision.LevelWarning, "the web server at %s does not serve the challenge for %s yet (%s); asking the CA anyway", h.CheckAddr, chal.Identifier.Value, last)
			}
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tokenRe is what RFC 8555 allows in a token (base64url).
var tokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (h *HTTPDir) file(chal acmeapi.Challenge) (string, error) {
	if !tokenRe.MatchString(chal.Token) {
		return "", fmt.Errorf("the CA sent a challenge token that is not base64url: %q", chal.Token)
	}
	return path.Join(h.Dir, chal.Token), nil
}

// Present writes the key authorization where the CA will fetch it.
func (h *HTTPDir) Present(ctx context.Context, chal acmeapi.Challenge) error {
	p, err := h.file(chal)
	if err != nil {
		return err
	}
	if err := h.Ex.MkdirAll(ctx, h.Dir, 0o755); err != nil {
		return fmt.Errorf("making the challenge directory %s on %s: %w", h.Dir, h.Ex.Host(), err)
	}
	if err := h.Ex.WriteFile(ctx, p, []byte(chal.KeyAuthorization), 0o644); err != nil {
		return fmt.Errorf("writing the challenge file %s on %s: %w", p, h.Ex.Host(), err)
	}
	if h.Logf != nil {
		h.Logf(provision.LevelInfo, "HTTP-01 challenge for %s: wrote %s on %s", chal.Identifier.Value, p, h.Ex.Host())
	}
	return nil
}

// CleanUp removes the challenge file.
func (h *HTTPDir) CleanUp(ctx context.Context, chal acmeapi.Challenge) error {
	p, err := h.file(chal)
	if err != nil {
		return err
	}
	if err := h.Ex.Remove(context.WithoutCancel(ctx), p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// explain turns an error of the ACME exchange into a *provision.Error that
// says what the CA said and what the administrator can do.
func explain(err error, dir string, names []string) error {
	var pe *provision.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &provision.Error{Code: provision.ErrCancelled, Msg: "getting a certificate was interrupted", Err: err,
			Hint: "run the task again; the current certificate (if any) stays in place"}
	}
	domain := names[0]
	var prob acmeapi.Problem
	if errors.As(err, &prob) {
		what := prob.Detail
		if what == "" {
			what = prob.Title
		}
		for _, sp := range prob.Subproblems {
			if sp.Detail != "" && !strings.Contains(what, sp.Detail) {
				what += "; " + sp.Detail
			}
		}
		typ := strings.TrimPrefix(prob.Type, acmeapi.ProblemTypeNamespace)
		msg := fmt.Sprintf("the ACME CA refused the certificate for %s: %s (%s)", strings.Join(names, ", "), what, typ)
		var hint string
		var fix []entities.Action
		switch prob.Type {
		case acmeapi.ProblemTypeConnection, acmeapi.ProblemTypeDNS, acmeapi.ProblemTypeUnauthorized,
			acmeapi.ProblemTypeIncorrectResponse, acmeapi.ProblemTypeTLS:
			hint = fmt.Sprintf("the CA must reach http://NAME/.well-known/acme-challenge/ on this web server for every name: "+
				"point the DNS (A/AAAA records) of %s at the server's public address, open port 80 to the internet, "+
				"check that the web server includes aegir's configuration, then verify the site again "+
				"(it keeps answering on HTTP meanwhile)", strings.Join(names, ", "))
			fix = []entities.Action{entities.Do("site.verify", domain)}
		case acmeapi.ProblemTypeRateLimited:
			hint = "the CA's rate limit was reached: wait for the time it names before trying again, and test with acme_directory: staging meanwhile (docs/https.md)"
		case acmeapi.ProblemTypeRejectedIdentifier, acmeapi.ProblemTypeUnsupportedIdentifier, acmeapi.ProblemTypeCAA:
			hint = "the CA will not certify these names: check their spelling and CAA DNS records, or bring a certificate"
			fix = []entities.Action{entities.Do("site.cert", domain, "cert=FILE", "key=FILE")}
		case acmeapi.ProblemTypeInvalidContact, acmeapi.ProblemTypeUnsupportedContact:
			hint = "set a working acme_email in aegir.yaml, then try again"
		case acmeapi.ProblemTypeExternalAccountRequired:
			hint = "this CA needs an external account binding, which aegir does not support; use another acme_directory"
		default:
			hint = "read the CA's message above; fix the cause, then verify the site again"
			fix = []entities.Action{entities.Do("site.verify", domain)}
		}
		return &provision.Error{Code: ErrCode, Msg: msg, Hint: hint, Fix: fix}
	}
	var ua x509.UnknownAuthorityError
	var ce *x509.CertificateInvalidError
	if errors.As(err, &ua) || errors.As(err, &ce) || strings.Contains(err.Error(), "certificate signed by unknown authority") {
		return &provision.Error{Code: ErrCode, Err: err, Msg: "the ACME CA's own TLS certificate is not trusted (" + dir + ")",
			Hint: "if it is a private CA (pebble, step-ca), set acme_ca_file in aegir.yaml to its root certificate; existing certificates are untouched"}
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "performing request") {
		return &provision.Error{Code: ErrCode, Err: err, Msg: "the ACME CA at " + dir + " did not answer",
			Hint: "check acme_directory in aegir.yaml and that this machine reaches the CA (firewall, proxy, DNS); existing certificates are untouched and the renewal is retried"}
	}
	return &provision.Error{Code: ErrCode, Err: err, Msg: "getting a certificate for " + strings.Join(names, ", ") + " from " + dir,
		Hint: "read the log above (its debug lines show the exchange); fix the cause, then verify the site again",
		Fix:  []entities.Action{entities.Do("site.verify", domain)}}
}
