package store

import (
	"context"
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
