package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/api"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	extraCommands = append(extraCommands, func(a *App) *cobra.Command { return newServeCmd(a, nil) })
}

// serveMounts let other files of this package mount handlers on the
// API's server from their init functions (the dashboard at "GET /"):
// each gets the invocation and the server, whose Mux it adds to, with
// Protect around what needs a user.
var serveMounts []func(*App, *api.Server) error

// ServeOptions are serve's: where to listen, the TLS certificate and key
// files (none: plain HTTP, on loopback only) and each token's rate.
type ServeOptions struct {
	*App
	Listen, TLSCert, TLSKey string
	Rate                    float64
	Burst                   int
}

func newServeCmd(a *App, runF func(*ServeOptions) error) *cobra.Command {
	o := &ServeOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "serve [--listen ADDR] [--tls-cert F --tls-key F]",
		Short: "Serve the HTTP API (/api/...), its OpenAPI document at /api/openapi.json and the dashboard at /",
		Long: `Serve the JSON API over the operations of the command line (docs/api.md):
sites, their tasks, logs and backups, installs and the site verbs (backup,
restore, login-reset, verify, cron, disable, enable ...). Every request
needs a token (aegir token create) as Authorization: Bearer TOKEN, is
limited to --rate requests a second per token, and is written to the audit
log. Every change is a task, queued as the command line's --queue queues it,
for the dispatcher (aegir hosting dispatch from cron, or aegir hosting
queued) to run; a site that has a task queued or running is refused (409).
An address whose refused tokens pass 10 (then one every 10 seconds) gets
429 for every request until then.

The dashboard at / is a web page where a user signs in with its token and
sees its sites (status, health, certificate, last backup), starts a backup
or gets a one-time login link (docs/api.md).

Plain HTTP is served only on a loopback address; any other needs
--tls-cert and --tls-key (PEM files).`,
	}, o, runF, runServe)
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8443", "the address to listen on, HOST:PORT")
	f.StringVar(&o.TLSCert, "tls-cert", "", "the TLS certificate (PEM, with its chain)")
	f.StringVar(&o.TLSKey, "tls-key", "", "the TLS certificate's private key (PEM)")
	f.Float64Var(&o.Rate, "rate", 10, "requests a second each token may make (a token bucket)")
	intFlag(f, &o.Burst, "burst", 20, "requests a token may make at once, above its rate")
	return cmd
}

// check checks serve's flags and loads the certificate: nil when plain
// HTTP.
func (o *ServeOptions) check() (*tls.Config, error) {
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil || port == "" {
		return nil, invalid("--listen", o.Listen, "must be HOST:PORT, such as 127.0.0.1:8443")
	}
	if o.Rate <= 0 || o.Rate > 1e6 {
		return nil, invalid("--rate", fmt.Sprint(o.Rate), "must be a number of requests a second above 0")
	}
	if o.Burst < 1 {
		return nil, invalid("--burst", fmt.Sprint(o.Burst), "must be at least 1")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		field := "--tls-key"
		if o.TLSCert == "" {
			field = "--tls-cert"
		}
		return nil, invalid(field, "", "is required with "+map[string]string{"--tls-key": "--tls-cert", "--tls-cert": "--tls-key"}[field])
	}
	if o.TLSCert == "" {
		// A loopback address or localhost; not every address (an empty host).
		if !entities.IsLoopbackHost(host) || strings.HasPrefix(host, "/") {
			return nil, &Error{Code: ExitUsage, Err: entities.Invalid("--listen", o.Listen, "is not a loopback address: plain HTTP is served only on 127.0.0.1, ::1 or localhost"),
				Hint: "give --tls-cert FILE --tls-key FILE to serve HTTPS on it"}
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, invalid("--tls-cert", o.TLSCert, "with --tls-key must be a PEM certificate and its key: "+err.Error())
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func runServe(o *ServeOptions) error {
	tc, err := o.check()
	if err != nil {
		return err
	}
	srv, err := o.apiServer(o.Rate, o.Burst)
	if err != nil {
		return err
	}
	for _, mount := range serveMounts {
		if err := mount(o.App, srv); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("listen on %s: %w", o.Listen, err), Hint: "pick a free port with --listen HOST:PORT"}
	}
	scheme := "http"
	if tc != nil {
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return o.ctx }}
	o.infof("serving the API at %s://%s/api/ (its OpenAPI document: /api/openapi.json) and the dashboard at /; stop with Ctrl-C", scheme, ln.Addr())
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	wctx, stopWatch := context.WithCancel(o.ctx)
	defer stopWatch()
	moved := o.watchMoved(wctx)
	var movedTo *store.MovedError
	select {
	case err := <-done:
		return err
	case <-o.ctx.Done():
	case movedTo = <-moved:
		o.warnf("%v; serving no more requests from it", movedTo)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(o.ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if movedTo != nil {
		return o.movedErr(movedTo) // exit 2: serve the new state
	}
	o.infof("stopped")
	return nil
}

// servedMovedEvery is how often aegir serve looks whether state migrate
// marked its state moved.
const servedMovedEvery = 2 * time.Second

// watchMoved tells, once, that the state was marked moved (state migrate)
// while aegir serve ran on it: what it would read and write there is no
// longer the state in use.
func (a *App) watchMoved(ctx context.Context) <-chan *store.MovedError {
	out := make(chan *store.MovedError, 1)
	st, err := a.Store()
	if err != nil {
		return out
	}
	go func() {
		t := time.NewTicker(servedMovedEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if m, err := st.Moved(ctx); err == nil && m != nil {
					out <- m
					return
				}
			}
		}
	}()
	return out
}

// apiServer is the API over this invocation's state, with rate and burst
// per token (0: the API's defaults).
func (a *App) apiServer(rate float64, burst int) (*api.Server, error) {
	st, err := a.Store()
	if err != nil {
		return nil, err
	}
	return api.New(api.Config{Store: st, Ops: apiOps{a}, Rate: rate, Burst: burst,
		Classify: func(err error) (int, string, []entities.Action) { return classify(impossibleName(err)) }}), nil
}

// apiOps are the API's changes, made by the code the commands run.
type apiOps struct{ a *App }

var _ api.Ops = apiOps{}

// request is the invocation one API request acts as: its context, no
// streams (the task log keeps every line), no prompt, and exclusive, so
// that a site with a task queued or running is refused.
func (p apiOps) request(ctx context.Context) *App {
	b := *p.a
	b.ctx = ctx
	b.IO = IOStreams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	b.yes, b.quiet, b.verbose, b.exclusive = true, true, false, true
	b.format, b.fields, b.field = "json", nil, ""
	return &b
}

func (p apiOps) Details(ctx context.Context, v *entities.Site) error {
	a := p.request(ctx)
	st, err := a.Store()
	if err != nil {
		return err
	}
	return a.siteDetails(st, v)
}

func (p apiOps) Install(ctx context.Context, r *api.InstallRequest) (*entities.Task, error) {
	o := &SiteInstallOptions{App: p.request(ctx), Domain: r.Domain, Platform: r.Platform, DBServer: r.DBServer, Client: r.Client,
		Profile: r.Profile, Language: r.Language, HTTPS: r.HTTPS, Aliases: r.Aliases, Redirect: r.Redirect, Queue: true,
		Account: siteAccount{title: r.Title, user: r.AdminUser, email: r.AdminEmail}}
	_, t, err := o.record()
	return t, err
}

func (p apiOps) Queue(ctx context.Context, v *entities.Site, verb string, r *api.VerbRequest) (*entities.Task, error) {
	a := p.request(ctx)
	st, err := a.Store()
	if err != nil {
		return nil, err
	}
	switch verb {
	case "sync":
		return a.apiSync(st, v, r)
	case "delete":
		// As site delete --queue: a backup first unless no_backup.
		var opts map[string]string
		if r.NoBackup {
			opts = map[string]string{"no_backup": "1"}
		}
		return a.queueOn(st, v, entities.TaskSiteDelete, opts)
	}
	return a.siteTask(st, v, "site."+verb, r.Backup)
}

// apiSync queues a site.sync of r.Source onto dst as site sync --queue
// does, its refusals' hints in the API's words.
func (a *App) apiSync(st *store.Store, dst *entities.Site, r *api.VerbRequest) (*entities.Task, error) {
	source, err := st.GetSite(a.ctx, r.Source)
	if err != nil {
		return nil, err
	}
	opts, err := a.syncOptions(st, source, dst, r.DB, r.Files, r.UpdateDB, r.Force)
	var cf *store.ConflictError
	if errors.As(err, &cf) && cf.Field == "dst" {
		cf.Hint = `give "force": true to sync onto it anyway (it stays disabled), or enable it first`
	}
	if err != nil {
		return nil, err
	}
	return a.queueOn(st, dst, entities.TaskSiteSync, opts)
}

func (p apiOps) LoginReset(ctx context.Context, v *entities.Site) (*entities.Task, string, error) {
	// The task runs to its end even if the caller hangs up.
	a := p.request(context.WithoutCancel(ctx))
	st, err := a.Store()
	if err != nil {
		return nil, "", err
	}
	return a.loginReset(st, v)
}
