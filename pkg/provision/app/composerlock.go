package app

import (
	"context"
	"encoding/json"
	"path"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// corePackages are the packages whose version in a composer.lock is the
// platform's core version, in the order they are looked for.
var corePackages = []string{
	"drupal/core", "drupal/core-recommended", "drupal/drupal",
	"johnpbloch/wordpress-core", "johnpbloch/wordpress", "roots/wordpress", "roots/wordpress-no-content",
}

// LockedCore reads the composer.lock at the platform's root (p.Root) and
// returns the core package it names and its version (without a leading
// "v"); empty when there is no lock file, it is not JSON, or it names no
// core package.
func LockedCore(ctx context.Context, ex exec.Executor, root string) (pkg, version string, err error) {
	b, err := ReadOptional(ctx, ex, path.Join(root, "composer.lock"))
	if err != nil || b == nil {
		return "", "", err
	}
	var lock struct {
		Packages []struct{ Name, Version string } `json:"packages"`
	}
	if json.Unmarshal(b, &lock) != nil {
		return "", "", nil
	}
	for _, want := range corePackages {
		for _, p := range lock.Packages {
			if p.Name == want && p.Version != "" {
				return p.Name, strings.TrimPrefix(p.Version, "v"), nil
			}
		}
	}
	return "", "", nil
}
