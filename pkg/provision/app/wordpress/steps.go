package wordpress

import (
	"context"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Upgrade is what UpdateDB did: the database's
// db_version before and after, and the platform's WordPress version.
type Upgrade struct {
	From    int    `json:"from"`
	To      int    `json:"to"`
	Version string `json:"version"`
}

// UpdateDB brings a WordPress site's database up to the platform's
// WordPress with its own wp_upgrade(), as wp-admin/upgrade.php does. A
// database newer than the platform's WordPress is refused.
func UpdateDB(ctx context.Context, ex exec.Executor, p app.Platform, o app.SiteStep) (Upgrade, error) {
	var out Upgrade
	if err := scripts.RunStep(ctx, ex, p, ScriptUpgrade, o, app.UpdateTimeout, nil, &out); err != nil {
		return out, app.AsTaskError(err, provision.ErrCommand, "database upgrade of "+o.Domain)
	}
	return out, nil
}
