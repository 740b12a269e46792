package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	siteCommands = append(siteCommands, func(a *App) *cobra.Command { return newSiteCertCmd(a, nil) })
	extraCommands = append(extraCommands, (*App).certCmd)
}

// acmeSettings are the acme_* configuration keys, for the back end.
func (a *App) acmeSettings() hosting.ACMESettings {
	return hosting.ACMESettings{
		Directory: a.cfg.GetString("acme_directory"),
		Email:     a.cfg.GetString("acme_email"),
		CAFile:    a.cfg.GetString("acme_ca_file"),
		RenewDays: a.cfg.GetInt("acme_renew_days"),
	}
}

// daysLeft fills the days left of certificates at now (whole days,
// rounded down; negative once expired).
func daysLeft(certs []*store.Certificate, now time.Time) {
	for _, c := range certs {
		if c.NotAfter != nil {
			d := int(c.NotAfter.Sub(now).Hours() / 24)
			if c.NotAfter.Before(now) {
				d = -int(now.Sub(*c.NotAfter).Hours()/24) - 1
			}
			c.DaysLeft = &d
		}
	}
}

func (a *App) certCmd() *cobra.Command {
	c := &cobra.Command{Use: "cert", Short: "HTTPS certificates of sites: issued by the ACME CA, or brought with aegir site cert"}
	list := newListCmd(a, &cobra.Command{
		Use: "list", Short: "List certificates: domain, names, issuer, expiry, days left",
		Long: `List the certificates of every site: the names each covers, its issuer, when
it expires and how many days are left, where it came from (acme or admin),
and failed attempts to get or renew it (with the CA's last answer in json,
yaml or --fields last_error). A row with no not_after is a certificate the
CA has not issued yet; the cert queue retries it.`,
	}, runCertList, nil)
	c.AddCommand(list, a.certAccountCmd())
	return c
}

func (a *App) certAccountCmd() *cobra.Command {
	c := &cobra.Command{Use: "account", Short: "The ACME account every master sharing the state uses, one for each CA directory"}
	c.AddCommand(
		newListCmd(a, &cobra.Command{
			Use: "list", Short: "List the ACME accounts in the state: directory, URL, email, the master that made it",
			Long: `List the ACME accounts the state holds, one for each CA directory (acme_directory):
its URL at the CA, its contact, the master that made or imported it and when.
Every master sharing the state uses that account; the first certificate of a
directory makes it (or imports the account the master's HOME/acme already had).
The account's private key is in the state and is never shown.`,
		}, runCertAccountList, nil),
		newArgCmd(a, &cobra.Command{
			Use: "delete DIRECTORY", Short: "Forget the state's ACME account of a CA directory (production, staging or a URL)",
			Long: `Forget the ACME account of a CA directory (production, staging or its URL),
after asking (-y asks nothing). The certificates it got stay valid. The next
certificate from that directory makes a new account, or imports the one a
master's HOME/acme holds when it is that master that gets it: the way to
replace the account (docs/https.md).`,
		}, runCertAccountDelete, nil),
	)
	return c
}

func runCertAccountList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) { return st.ACMEAccounts(o.ctx) })
}

func runCertAccountDelete(o *ArgOptions) error {
	dir, err := acme.DirectoryURL(o.Arg)
	if err != nil || o.Arg == "" {
		return invalid("DIRECTORY", o.Arg, "production, staging or the CA's https:// directory URL")
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	acct, err := st.ACMEAccount(o.ctx, dir)
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("the state holds no ACME account of %s", dir), Hint: "see those it holds: aegir cert account list"}
	}
	if err != nil {
		return err
	}
	if err := o.confirm(fmt.Sprintf("Forget the ACME account %s of %s (made by %s)? Its key is gone from the state; the next certificate makes or imports another.",
		orNone(acct.Location), dir, orNone(acct.Master))); err != nil {
		return err
	}
	if err := st.DeleteACMEAccount(o.ctx, dir); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	o.infof("the ACME account %s of %s is forgotten", orNone(acct.Location), dir)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func runCertList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) {
		certs, err := st.ListCerts(o.ctx)
		if err != nil {
			return nil, err
		}
		daysLeft(certs, st.Now())
		return certs, nil
	})
}

// SiteCertOptions are site cert's: the site, and the certificate and key
// files brought (neither: get one from the ACME CA).
type SiteCertOptions struct {
	*App
	Domain, CertFile, KeyFile string
	Queue                     bool
}

func newSiteCertCmd(a *App, runF func(*SiteCertOptions) error) *cobra.Command {
	o := &SiteCertOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "cert DOMAIN [--cert FILE --key FILE]",
		Short: "Install a certificate you bring, or get one from the ACME CA now",
		Long: `With --cert and --key: check the certificate (its key matches, it covers the
domain and every alias, it has not expired) and install it on the site's web
server; a certificate that fails a check exits 2 and changes nothing.
Certificates you bring are not renewed by aegir: bring the next one the same way.

Without them: get a new certificate for the domain and its aliases from the
ACME CA now (the cert queue renews ACME certificates by itself; see
docs/https.md).`,
	}, o, runF, runSiteCert, &o.Domain)
	cmd.Flags().StringVar(&o.CertFile, "cert", "", "PEM file of the certificate, then its intermediates")
	cmd.Flags().StringVar(&o.KeyFile, "key", "", "PEM file of its private key (read by aegir, never printed)")
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "only queue the task; print its id")
	return cmd
}

func runSiteCert(o *SiteCertOptions) error {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return invalid("--key", o.KeyFile, "and --cert go together: give both, or neither to get a certificate from the ACME CA")
	}
	st, v, err := o.site(o.Domain)
	if err != nil {
		return err
	}
	if err := notInstalled(v); err != nil {
		return err
	}
	var opts map[string]string
	if o.CertFile != "" {
		if opts, err = checkBroughtCert(v, o.CertFile, o.KeyFile, st.Now()); err != nil {
			return err
		}
	}
	if v.HTTPS == entities.HTTPSOff {
		o.infof("note: HTTPS is off for %s; the certificate is used once you run: aegir site edit %s --https on", v.Domain, v.Domain)
	}
	return o.queueSiteTask(st, v, queue.TaskSiteCert, opts, o.Queue, func() (any, error) {
		c, err := st.GetCert(o.ctx, v.ID)
		if err != nil {
			return nil, err
		}
		daysLeft([]*store.Certificate{c}, st.Now())
		return c, nil
	})
}

// checkBroughtCert checks an administrator's certificate before anything
// is written, and returns the task options that name the files.
func checkBroughtCert(v *entities.Site, certFile, keyFile string, now time.Time) (map[string]string, error) {
	paths := map[string]string{}
	data := map[string][]byte{}
	for flag, f := range map[string]string{"--cert": certFile, "--key": keyFile} {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, invalid(flag, f, err.Error())
		}
		b, err := os.ReadFile(abs)
		if err != nil {
			return nil, invalid(flag, f, "cannot be read: "+err.Error())
		}
		paths[flag], data[flag] = abs, b
	}
	names := append([]string{v.Domain}, v.Aliases...)
	if _, err := acme.CheckPair(data["--cert"], data["--key"], names, now); err != nil {
		return nil, &Error{Code: ExitUsage, Err: fmt.Errorf("certificate for %s refused, nothing changed: %v", v.Domain, err),
			Hint: "bring a certificate that covers " + fmt.Sprint(names) + ", is valid now, with its own key (PEM files)"}
	}
	return map[string]string{"cert_file": paths["--cert"], "key_file": paths["--key"]}, nil
}

// siteCert is the site's certificate for site show; nil when it has none.
func siteCert(a *App, st *store.Store, v *entities.Site) (*entities.Certificate, error) {
	c, err := st.GetCert(a.ctx, v.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	daysLeft([]*store.Certificate{c}, st.Now())
	return c, nil
}
