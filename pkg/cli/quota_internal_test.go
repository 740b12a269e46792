package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
)

// client edit sets the quotas given (sizes with a unit), keeps those not
// given, and refuses a bad one naming its flag before it writes anything.
func TestRunClientEditQuotas(t *testing.T) {
	a := siteState(t)
	if err := runClientAdd(&ClientAddOptions{App: a, Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		want string
		o    ClientEditOptions
	}{
		{`invalid --quota-sites "-1": must be a whole number`, ClientEditOptions{QuotaSites: s("-1")}},
		{`invalid --quota-sites "five"`, ClientEditOptions{QuotaSites: s("five")}},
		{`invalid --quota-disk "10 potatoes"`, ClientEditOptions{QuotaDisk: s("10 potatoes")}},
		{`invalid --quota-disk "G"`, ClientEditOptions{QuotaDisk: s("G")}},
		{`invalid --quota-backups "1.5"`, ClientEditOptions{QuotaBackups: s("1.5")}},
	} {
		o := c.o
		o.App, o.Name = a, "acme"
		refused(t, a, c.want, func() error { return runClientEdit(&o) })
	}
	if err := runClientEdit(&ClientEditOptions{App: a, Name: "acme", QuotaSites: s("5"), QuotaDisk: s("10G"), QuotaBackups: s("3")}); err != nil {
		t.Fatal(err)
	}
	if err := runClientEdit(&ClientEditOptions{App: a, Name: "acme", QuotaBackups: s("")}); err != nil {
		t.Fatal(err)
	}
	c, err := a.st.GetClient(a.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if c.QuotaSites != 5 || c.QuotaDisk != 10<<30 || c.QuotaBackups != 0 {
		t.Fatalf("quotas: %+v, want 5 sites, 10 GiB, no backup limit", c)
	}
}

// An install or a clone that would take a client over its quota of sites
// or of disk is refused with exit 2, one line naming the quota and the
// usage and a hint, and writes nothing: no site, no task. Another client,
// and a site of no client, are not held back.
func TestQuotaRefusesInstallAndClone(t *testing.T) {
	a := siteState(t)
	for _, n := range []string{"acme", "other"} {
		if err := runClientAdd(&ClientAddOptions{App: a, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	two := "2"
	if err := runClientEdit(&ClientEditOptions{App: a, Name: "acme", QuotaSites: &two}); err != nil {
		t.Fatal(err)
	}
	install := func(domain, client string) error {
		return runSiteInstall(&SiteInstallOptions{App: a, Domain: domain, Platform: "wp", Client: client, Queue: true})
	}
	for _, d := range []string{"a1.test", "a2.test"} {
		if err := install(d, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, a, "client acme: quota of 2 sites reached (2 in use)", func() error { return install("a3.test", "acme") })
	err := install("a3.test", "acme")
	var qe *entities.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, entities.ErrQuota) || qe.Quota != entities.QuotaSites || qe.Used != 2 {
		t.Fatalf("the refusal is not a typed QuotaError: %#v", err)
	}
	if _, errs := exitOf(a, err); !strings.Contains(errs, "hint: raise the quota, or delete one of the client's sites: aegir client edit acme --quota-sites N; aegir site list --client acme\n") {
		t.Fatalf("no hint:\n%s", errs)
	}
	if err := install("o1.test", "other"); err != nil {
		t.Fatalf("another client was held back: %v", err)
	}
	if err := install("n1.test", ""); err != nil {
		t.Fatalf("a site of no client was held back: %v", err)
	}

	// A clone of an installed site of acme counts as a new site of acme.
	v, err := a.st.GetSite(a.ctx, "a1.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.st.SetSiteStatus(a.ctx, v.ID, entities.SiteInstalled); err != nil {
		t.Fatal(err)
	}
	refused(t, a, "client acme: quota of 2 sites reached (2 in use)", func() error {
		return runSiteClone(&SiteMoveOptions{App: a, Domain: "a1.test", NewDomain: "a9.test", Queue: true})
	})

	// A site given to acme by site edit counts as a new site of acme.
	o, err := a.st.GetSite(a.ctx, "o1.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.st.SetSiteStatus(a.ctx, o.ID, entities.SiteInstalled); err != nil {
		t.Fatal(err)
	}
	refused(t, a, "client acme: quota of 2 sites reached (2 in use)", func() error {
		return runSiteEdit(&SiteEditOptions{App: a, Domain: "o1.test", Client: "acme", ClientSet: true, Queue: true})
	})
	if err := runSiteEdit(&SiteEditOptions{App: a, Domain: "a1.test", HTTPS: "on", Queue: true}); err != nil {
		t.Fatalf("an edit of acme's own site was refused: %v", err)
	}

	// Disk: the sites' databases and files as site.stats measured them.
	zero, disk := "0", "1M"
	if err := runClientEdit(&ClientEditOptions{App: a, Name: "acme", QuotaSites: &zero, QuotaDisk: &disk}); err != nil {
		t.Fatal(err)
	}
	if err := a.st.SaveSiteStats(a.ctx, v.ID, entities.SiteStats{DBBytes: 700 << 10, FilesBytes: 400 << 10}); err != nil {
		t.Fatal(err)
	}
	refused(t, a, "client acme: quota of 1M disk reached (1.1M in use)", func() error { return install("a3.test", "acme") })
	c, err := a.st.GetClient(a.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sites != 2 || c.DiskUsed != 1100<<10 {
		t.Fatalf("client show: %d sites, %d bytes in use; want 2 and %d", c.Sites, c.DiskUsed, 1100<<10)
	}
	if err := runClientEdit(&ClientEditOptions{App: a, Name: "acme", QuotaDisk: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := install("a3.test", "acme"); err != nil {
		t.Fatalf("no quota left, still refused: %v", err)
	}
}

// Sizes read with a unit and written back the same way.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "512": 512, "10G": 10 << 30, "10g": 10 << 30, "1GiB": 1 << 30, "2MB": 2 << 20, "3k": 3 << 10, "1T": 1 << 40} {
		if n, err := entities.ParseSize("--quota-disk", in); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	for _, in := range []string{"-1", "1.5G", "G", "10X", "1 G", "99999999999T"} {
		if _, err := entities.ParseSize("--quota-disk", in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	for n, want := range map[int64]string{0: "0B", 512: "512B", 10 << 30: "10G", 1536 << 20: "1.5G"} {
		if got := entities.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
