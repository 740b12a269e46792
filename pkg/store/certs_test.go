package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// A site's certificate: a first failure leaves a row to retry with backoff;
// saving clears failures; another failure keeps the certificate; deleted
// sites are not listed; DeleteCert forgets it.
func TestCertificates(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if _, err := s.AddSite(ctx, &entities.Site{Domain: "a.test", Aliases: []string{"www.a.test"}, Platform: "p1", DBServer: "web1", HTTPS: "on"}); err != nil {
		t.Fatal(err)
	}
	site, _ := s.GetSite(ctx, "a.test")
	if _, err := s.GetCert(ctx, site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no certificate yet: %v", err)
	}
	backoff := func(n int) time.Duration { return time.Duration(n) * time.Hour }

	n, err := s.CertFailed(ctx, site.ID, []string{"a.test", "www.a.test"}, "the CA said no", backoff)
	if err != nil || n != 1 {
		t.Fatalf("first failure: %d %v", n, err)
	}
	c, err := s.GetCert(ctx, site.ID)
	if err != nil || c.NotAfter != nil || c.Failures != 1 || c.LastError != "the CA said no" || c.Source != CertACME ||
		!c.RenewAfter.Equal(now.Add(time.Hour)) || len(c.Names) != 2 || c.Domain != "a.test" {
		t.Fatalf("pending row: %+v %v", c, err)
	}

	nb, na, ra := now, now.Add(90*24*time.Hour), now.Add(60*24*time.Hour)
	want := &Certificate{SiteID: site.ID, Names: []string{"a.test", "www.a.test"}, Issuer: "Pebble", Source: CertACME,
		NotBefore: &nb, NotAfter: &na, RenewAfter: &ra, CertPath: "/x/cert.pem", KeyPath: "/x/key.pem"}
	if err := s.SaveCert(ctx, want); err != nil {
		t.Fatal(err)
	}
	c, _ = s.GetCert(ctx, site.ID)
	if c.Failures != 0 || c.LastError != "" || !c.NotAfter.Equal(na) || !c.RenewAfter.Equal(ra) || c.CertPath != "/x/cert.pem" || c.Issuer != "Pebble" {
		t.Fatalf("saved: %+v", c)
	}

	// A failed renewal: the certificate stays, the retry backs off.
	for i := 1; i <= 2; i++ {
		if n, _ = s.CertFailed(ctx, site.ID, nil, "down", backoff); n != i {
			t.Fatalf("failure %d counted as %d", i, n)
		}
	}
	c, _ = s.GetCert(ctx, site.ID)
	if c.Failures != 2 || !c.NotAfter.Equal(na) || c.CertPath != "/x/cert.pem" || !c.RenewAfter.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("after failed renewals: %+v", c)
	}

	list, err := s.ListCerts(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := s.SetSiteStatus(ctx, site.ID, entities.SiteDeleted); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.ListCerts(ctx); len(list) != 0 {
		t.Fatalf("deleted site's certificate listed: %+v", list[0])
	}
	if err := s.DeleteCert(ctx, site.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCert(ctx, site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
