package tasks

import (
	"context"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// discoverPackages lists the packages of a platform for the front end.
func discoverPackages(ctx context.Context, env *provision.Env, ex exec.Executor, p app.Platform) ([]entities.Package, error) {
	return []entities.Package{}, nil
}
