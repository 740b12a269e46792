package app_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
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
