package tasks

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
)

// siteSync copies the database and files (options db and files, both by
// default) of one site (the job's site, the source) over another (the
// job's target, the task's own site): a backup of the target first, kept
// and recorded (restorable), then a fresh snapshot of the source, which
// the target takes in place as a restore would (a new database, the
// files swapped in), keeping its own settings, certificate, aliases and
// virtual host; the source's address is rewritten to the target's as a
// clone does, the update step runs when asked (option updatedb) or when
// the core versions differ, and the target must pass the health check of
// a verify before its old copy goes; any failure puts it back as it was.
func siteSync(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	if !c.HasTarget() {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give the site to sync onto as target (and the source as site) in the job", "no target given for %s", c.Task)
	}
	source, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	src, dst, err := openInPlace(ctx, env, c.AtTarget())
	if err != nil {
		return nil, err
	}
	m := &move{env: env, kind: "sync", src: src, dst: dst, from: c.Site.Domain,
		noDB: c.Opt("db", "1") == "0", noFiles: c.Opt("files", "1") == "0", updateDB: c.Opt("updatedb", "") == "1"}
	to := dst.c.Site.Domain
	switch {
	case m.noDB && m.noFiles:
		return nil, provision.Errorf(provision.ErrInvalidContext, "sync the database, the files or both", "a sync of %s to %s with neither its database nor its files does nothing", m.from, to)
	case source.c.Site.Domain == to:
		return nil, provision.Errorf(provision.ErrInvalidContext, "give two sites", "%s cannot be synced onto itself", to)
	case source.p.Type != dst.p.Type:
		return nil, provision.Errorf(provision.ErrInvalidContext, "sync between sites of the same kind",
			"%s is a %s site, %s a %s site", m.from, source.p.Type, to, dst.p.Type)
	case (source.c.Site.DBServer.Type == entities.TypePostgreSQL) != (dst.c.Site.DBServer.Type == entities.TypePostgreSQL):
		return nil, provision.Errorf(provision.ErrInvalidContext, "sync between sites on database servers of the same kind",
			"the database of %s is on %s; a dump of it does not load into %s (server %s)", m.from, source.c.Site.DBServer.Type, dst.c.Site.DBServer.Type, dst.c.Site.DBServer.Machine.Name)
	}
	if dst.c.Site.Status != entities.SiteDisabled {
		m.gate = &pageProbe{} // its health check, with no title to keep: its content changes
	}
	what := "database and files"
	if m.noDB {
		what = "files"
	} else if m.noFiles {
		what = "database"
	}
	env.Logf(provision.LevelInfo, "syncing the %s of %s onto %s; first a backup of %s", what, m.from, to, to)
	pre, err := takeBackup(ctx, src)
	if err != nil {
		return nil, err
	}
	m.backupCh = backupChange(pre, "")
	env.LogFixf(provision.LevelInfo, []entities.Action{entities.Do("site.restore", to)}, "the backup of %s taken before the sync is %s; a restore brings it back", to, pre.Path)
	snap, err := takeSnapshot(ctx, source)
	if err != nil {
		return &provision.Changes{Backup: m.backupCh}, err
	}
	// The snapshot is the sync's own: not a backup of the source to keep.
	defer func() {
		if err := os.Remove(snap.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			env.Logf(provision.LevelWarning, "could not remove the snapshot %s of %s: %v; remove it by hand", snap.Path, m.from, err)
		}
	}()
	m.archive = snap.Path
	ch, err := m.run(ctx)
	if m.lost {
		return nil, err // the new holder plays the journal back
	}
	return ch.Merge(&provision.Changes{Backup: m.backupCh}), err
}

// openInPlace opens the site of c twice: as it is, and as it will be
// once a move in its own place (restore, sync) is done.
func openInPlace(ctx context.Context, env *engine.Env, c *provision.Job) (*site, *site, error) {
	src, err := openSite(ctx, env, c)
	if err != nil {
		return nil, nil, err
	}
	dc := *c
	dst, err := openSite(ctx, env, &dc)
	if err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}
