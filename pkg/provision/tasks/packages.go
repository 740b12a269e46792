package tasks

import (
	"context"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// discoverPackages lists the packages of a platform for the front end.
func discoverPackages(ctx context.Context, env *engine.Env, ex exec.Executor, p app.Platform) ([]entities.Package, error) {
	found, err := app.Discover(ctx, ex, p, env.Logf)
	if err != nil {
		return nil, err
	}
	out := make([]entities.Package, 0, len(found))
	counts := map[string]int{}
	for _, f := range found {
		out = append(out, entities.Package{Name: f.Name, Title: f.Title, Type: f.Type, Project: f.Project, Version: f.Version, Path: f.Path})
		counts[f.Type]++
	}
	env.Logf(provision.LevelInfo, "packages on %s: %d modules, %d themes, %d profiles, %d plugins",
		p.Root, counts[entities.PackageModule], counts[entities.PackageTheme], counts[entities.PackageProfile], counts[entities.PackagePlugin])
	return out, nil
}
