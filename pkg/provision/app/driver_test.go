package app_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	"github.com/aegir-project/aegir/pkg/provision/backup"
)

// TestDrivers checks that every platform type the command line offers has
// a registered driver and that no driver serves a type it does not offer.
func TestDrivers(t *testing.T) {
	want := slices.Sorted(slices.Values(entities.PlatformTypes))
	if got := app.Types(); !slices.Equal(got, want) {
		t.Fatalf("registered drivers %v, platform types %v", got, want)
	}
	for _, typ := range want {
		d, err := app.For(typ)
		if err != nil {
			t.Fatalf("For(%q): %v", typ, err)
		}
		if d.Type() != typ {
			t.Errorf("For(%q) is the driver of %q", typ, d.Type())
		}
	}
}

func TestForUnknownType(t *testing.T) {
	d, err := app.For("joomla")
	var pe *provision.Error
	if d != nil || !errors.As(err, &pe) || pe.Code != provision.ErrPlatform || pe.Hint == "" {
		t.Fatalf("For(joomla) = %v, %#v; want a coded error with a hint", d, err)
	}
	if err := app.RemoveSite(apptest.Ctx(t), nil, app.Platform{Type: "joomla", Root: "/srv/j"}, "a.test"); !errors.As(err, &pe) || pe.Code != provision.ErrPlatform {
		t.Fatalf("RemoveSite on an unknown type: %v; want a coded error", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a second driver of drupal was registered")
		}
	}()
	d, _ := app.For(entities.PlatformDrupal)
	app.Register(d)
}

// TestBackupMembers checks that the archive members each driver names
// (those the web server writes, the settings) lie in its backup parts.
func TestBackupMembers(t *testing.T) {
	for _, typ := range app.Types() {
		d, _ := app.For(typ)
		parts := d.BackupParts(app.Platform{Type: typ, Root: "/srv/p", Docroot: "/srv/p/web"}, "a.test")
		web, settings := d.BackupMembers()
		if len(web) == 0 || settings == "" {
			t.Errorf("%s: web-writable members %q, settings %q", typ, web, settings)
		}
		for _, m := range append(web, settings) {
			if !slices.ContainsFunc(parts, func(p backup.Part) bool { return m == p.Name || strings.HasPrefix(m, p.Name+"/") }) {
				t.Errorf("%s: member %q is in none of the backup parts %+v", typ, m, parts)
			}
		}
	}
}
