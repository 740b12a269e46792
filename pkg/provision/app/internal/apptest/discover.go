package apptest

import (
	"reflect"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// DiscoverBoth runs Discover on the platform the local way and the remote
// way (one find command), checks that both find the same, and returns the
// packages by path.
func DiscoverBoth(t *testing.T, root string) (app.Platform, map[string]app.Package) {
	t.Helper()
	ctx := Ctx(t)
	p, err := app.Detect(ctx, aexec.NewLocal(), root)
	if err != nil {
		t.Fatal(err)
	}
	local, err := app.Discover(ctx, aexec.NewLocal(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log Log
	remote, err := app.Discover(ctx, Remoteish{aexec.NewLocal()}, p, log.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, remote) {
		t.Errorf("local and remote discovery differ:\nlocal:  %+v\nremote: %+v", local, remote)
	}
	if log.String() != "" {
		t.Errorf("remote discovery logged: %s", log.String())
	}
	byPath := map[string]app.Package{}
	for _, pk := range local {
		if _, dup := byPath[pk.Path]; dup {
			t.Errorf("two packages at %q", pk.Path)
		}
		byPath[pk.Path] = pk
	}
	return p, byPath
}

func CheckPackages(t *testing.T, got map[string]app.Package, want []app.Package) {
	t.Helper()
	for _, w := range want {
		g, ok := got[w.Path]
		if !ok {
			t.Errorf("no package at %s (want %s)", w.Path, w.Name)
			continue
		}
		if g != w {
			t.Errorf("package at %s:\n got %+v\nwant %+v", w.Path, g, w)
		}
	}
	if len(got) != len(want) {
		var paths []string
		for p := range got {
			paths = append(paths, p)
		}
		t.Errorf("found %d packages, want %d: %v", len(got), len(want), paths)
	}
}
