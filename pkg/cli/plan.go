package cli

import (
	"github.com/spf13/pflag"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
)

// dryRunFlag adds --dry-run to a command that changes a site.
func dryRunFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "dry-run", false, "print what would change (files, virtual hosts, databases, users, certificates, the record) and change nothing")
}

// planSiteTask prints what task typ (with opts) on site v would change,
// for --dry-run: nothing is recorded, nothing runs (docs/platforms.md).
func (a *App) planSiteTask(v *entities.Site, typ string, opts map[string]string) error {
	r, err := a.runner()
	if err != nil {
		return err
	}
	pl, err := r.Plan(a.ctx, &entities.Task{Type: typ, TargetKind: entities.TargetSite, TargetID: v.ID, Target: v.Domain, Options: opts})
	if err != nil {
		return err
	}
	return a.showPlan(pl)
}

// showPlan prints a plan: its changes as a table, or the whole plan in
// the other formats (json: {"task", "target", "changes": [...]}).
func (a *App) showPlan(pl *hosting.Plan) error {
	a.infof("dry run: what %s %s would change; nothing was changed", pl.Task, pl.Target)
	if a.format == "table" {
		return a.print(pl.Changes)
	}
	return a.print(pl)
}
