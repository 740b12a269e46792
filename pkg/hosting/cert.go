package hosting

import (
	"context"
	"errors"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// ACMESettings are the ACME CA settings (config keys acme_*).
type ACMESettings struct {
	Directory string // production, staging or a directory URL
	Email     string
	CAFile    string // extra roots for the directory's TLS
	RenewDays int    // renew this many days before expiry
}

// fillCert puts the ACME settings and the site's certificate in the job.
func (r *Runner) fillCert(ctx context.Context, c *provision.Job, site *entities.Site) error {
	a := r.Settings.ACME
	c.ACME.Directory, c.ACME.Email, c.ACME.CAFile, c.ACME.RenewDays = a.Directory, a.Email, a.CAFile, a.RenewDays
	cert, err := r.Store.GetCert(ctx, site.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cert.NotAfter != nil { // not a pending first issuance
		c.Site.HTTPS.CertFile, c.Site.HTTPS.KeyFile, c.Site.HTTPS.CertSource = cert.CertPath, cert.KeyPath, cert.Source
	}
	return nil
}

// applyCert saves what a task did to the site's certificate: a new one, a
// failed attempt (counted, retried later with backoff by the cert queue;
// the current certificate stays), or its removal.
func (r *Runner) applyCert(ctx context.Context, site *entities.Site, ch *provision.SiteChanges) error {
	switch {
	case ch.CertRemoved:
		return r.Store.DeleteCert(ctx, site.ID)
	case ch.Cert != nil:
		c := ch.Cert
		return r.Store.SaveCert(ctx, &store.Certificate{SiteID: site.ID, Names: c.Names, Issuer: c.Issuer, Source: c.Source,
			NotBefore: &c.NotBefore, NotAfter: &c.NotAfter, RenewAfter: c.RenewAt, CertPath: c.CertPath, KeyPath: c.KeyPath})
	case ch.CertFailed != nil:
		names := ch.CertFailed.Names
		if len(names) == 0 {
			names = append([]string{site.Domain}, site.Aliases...)
		}
		_, err := r.Store.CertFailed(ctx, site.ID, names, ch.CertFailed.Error, queue.CertRetryDelay)
		return err
	}
	return nil
}

// certMoved forgets the certificate of a site that moved to another web
// server or domain (migrate): its files stay behind and its names may not
// fit. The cert queue gets the site a new certificate at its new place on
// its next run (as for any site with HTTPS and no certificate).
func (r *Runner) certMoved(ctx context.Context, site *entities.Site, ch *provision.SiteChanges) error {
	if ch.Cert != nil {
		return nil // the task installed one at the new place
	}
	moved := ch.Domain != "" && ch.Domain != site.Domain
	if ch.Platform != "" && ch.Platform != site.Platform {
		p, err := r.Store.GetPlatform(ctx, ch.Platform)
		if err != nil {
			return err
		}
		moved = moved || p.Server != site.Server
	}
	if !moved {
		return nil
	}
	return r.Store.DeleteCert(ctx, site.ID)
}
