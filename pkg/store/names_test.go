package store

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Names lists live names by prefix, read-only: % and _ in a prefix are
// themselves, not patterns; an unknown kind is an error.
func TestNamesReadOnly(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	for _, n := range []string{"a_b", "axb", "a%c"} {
		if err := s.AddClient(ctx, &entities.Client{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	ro, err := OpenReadOnly(ctx, s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for prefix, want := range map[string][]string{"": {"a%c", "a_b", "acme", "axb"}, "a_": {"a_b"}, "a%": {"a%c"}, "ac": {"acme"}, "z": {}} {
		if got, err := ro.Names(ctx, "client", prefix); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("client names %q: %v %v, want %v", prefix, got, err, want)
		}
	}
	if got, err := ro.Names(ctx, "server", ""); err != nil || !reflect.DeepEqual(got, []string{"web1"}) {
		t.Errorf("server names: %v %v", got, err)
	}
	if _, err := ro.Names(ctx, "nope", ""); err == nil {
		t.Error("unknown kind accepted")
	}
	if err := ro.AddClient(ctx, &entities.Client{Name: "written"}); err == nil {
		t.Error("a read-only store wrote")
	}
}

// GetSite finds a live site by its domain or any alias; a deleted site
// is found by neither (its names are free again).
func TestGetSiteByAnyName(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	v := &entities.Site{Domain: "a.test", Aliases: []string{"www.a.test", "b.test"}, Platform: "p1", DBServer: "web1", HTTPS: "off"}
	if _, err := s.AddSite(ctx, v); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.test", "www.a.test", "b.test"} {
		got, err := s.GetSite(ctx, n)
		if err != nil || got.ID != v.ID || got.Domain != "a.test" || !reflect.DeepEqual(got.Aliases, v.Aliases) {
			t.Fatalf("GetSite(%s): %v %+v", n, err, got)
		}
	}
	if _, err := s.GetSite(ctx, "c.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSite of no site: %v", err)
	}
	if err := s.SetSiteStatus(ctx, v.ID, entities.SiteDeleted); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.test", "www.a.test"} {
		if _, err := s.GetSite(ctx, n); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetSite(%s) of a deleted site: %v", n, err)
		}
	}
}
