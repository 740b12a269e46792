package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// A move (restore, migrate, clone) carries the site's runtime: an
// isolated site's user, pool and runtime directory, a shared site's log
// directory.
//
//   - Where the runtime stays the same (sameRuntime: the same domain on
//     the same machine: a restore, a migrate to another platform or
//     database server), the site keeps its user; its pool lets PHP open
//     both platforms while the move runs (the old one still serves), and
//     only the new one once it is done. The undo writes the pool as the
//     site's record says (opSrcRuntime).
//   - Elsewhere (a clone, a migrate under a new domain or to another
//     server), the runtime is made new for the domain where the site goes
//     (a clone's user is named after its own domain) before the files are
//     unpacked for that user; the undo removes it (opDstRuntime). Once a
//     migrate is done, the old logs are copied into the new log
//     directory (carryLogs) and the old pool, user and runtime directory
//     go.

// filesOwner is who owns what the site's PHP writes (its uploads, its
// files directories): an isolated site's own user with the web server's
// group, which serves the static files; else as the site's other files
// (owner).
func (s *site) filesOwner() app.Owner {
	if !s.isolated() {
		return s.owner()
	}
	g := s.c.System.WebGroup
	if g == "" {
		g = s.c.System.WebUser
	}
	return app.Owner{WebUser: entities.SiteUnixUser(s.c.Site.Domain), WebGroup: g}
}

// sameRuntime reports whether the site's runtime stays where it is: the
// same domain on the same machine (one web server, or two servers that
// are one machine: the same /etc/machine-id).
func (m *move) sameRuntime(ctx context.Context) bool {
	if m.same == nil {
		v := m.src.c.Site.Domain == m.dst.c.Site.Domain && (sameWeb(m.src, m.dst) || sameMachine(ctx, m.src.ex, m.dst.ex))
		m.same = &v
	}
	return *m.same
}

// sameMachine reports whether two executors reach one machine.
func sameMachine(ctx context.Context, a, b exec.Executor) bool {
	ia, err := a.ReadFile(ctx, "/etc/machine-id")
	if err != nil || len(bytes.TrimSpace(ia)) == 0 {
		return false
	}
	ib, err := b.ReadFile(ctx, "/etc/machine-id")
	return err == nil && bytes.Equal(bytes.TrimSpace(ia), bytes.TrimSpace(ib))
}

// prepareRuntime readies the site's runtime where it goes, before its
// files are unpacked (they are its user's), each step journaled first.
func (m *move) prepareRuntime(ctx context.Context) error {
	src, dst := m.src, m.dst
	if err := src.locateRuntime(ctx); err != nil {
		return err
	}
	rt, err := dst.runtime()
	if err != nil {
		return err
	}
	existed := false
	if _, err := dst.ex.Lstat(ctx, rt.SiteDir(dst.c.Site.Domain)); err == nil {
		existed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check %s on %s: %w", rt.SiteDir(dst.c.Site.Domain), dst.ex.Host(), err)
	}
	if dst.isolated() && !existed {
		if existed, err = rt.HasUser(ctx, dst.fpmSite("")); err != nil {
			return err
		}
	}
	same := m.sameRuntime(ctx)
	switch {
	case !same || !existed:
		if err := m.push(moveOp{Op: opDstRuntime}); err != nil {
			return err
		}
	case dst.isolated():
		if src.p.Root != dst.p.Root {
			dst.alsoRoots = []string{src.p.Root}
		}
		if err := m.push(moveOp{Op: opSrcRuntime}); err != nil {
			return err
		}
	}
	_, err = dst.prepareRuntime(ctx, nil)
	return err
}

// cleanupRuntime finishes a migrate's runtime once it is done: the pool
// opens the new platform only; or, where the runtime changed, the old
// logs go along (carryLogs) and the old pool, user and runtime directory
// go.
func (m *move) cleanupRuntime(ctx context.Context, warn func(string, error)) {
	src, dst := m.src, m.dst
	if m.sameRuntime(ctx) {
		if dst.isolated() && src.p.Root != dst.p.Root {
			dst.alsoRoots = nil
			_, err := dst.prepareRuntime(ctx, nil)
			warn("write the php-fpm pool of "+dst.c.Site.Domain+" for platform "+dst.c.Site.Platform.Name+" alone", err)
		}
		return
	}
	if err := src.locateRuntime(ctx); err != nil {
		warn("find the runtime of "+src.c.Site.Domain+" on "+src.c.Site.Web.Name, err)
		return
	}
	warn("copy the logs of "+src.c.Site.Domain+" from "+src.c.Site.Web.Name, m.carryLogs(ctx))
	_, err := src.dropRuntime(ctx, true)
	warn("remove the php-fpm pool, Unix user and runtime directory of "+src.c.Site.Domain+" on "+src.c.Site.Web.Name, err)
}

// carryLogs copies the files of the site's old log directory into
// moved-TIMESTAMP/ in its new one (not rotated: logrotate takes the
// directory's own *.log; deleting the site removes them).
func (m *move) carryLogs(ctx context.Context) error {
	src, dst := m.src, m.dst
	if src.logDir == "" {
		return nil
	}
	entries, err := src.ex.ReadDir(ctx, src.logDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if dst.logDir == "" {
		m.env.Logf(provision.LevelWarning, "%s has no log directory on %s: its old logs (%s on %s) go with its old place", dst.c.Site.Domain, dst.ex.Host(), src.logDir, src.ex.Host())
		return nil
	}
	into := path.Join(dst.logDir, "moved-"+time.Now().UTC().Format("20060102-150405"))
	n := 0
	for _, e := range entries {
		if !e.Mode().IsRegular() {
			continue
		}
		if n == 0 {
			if err := dst.ex.MkdirAll(ctx, into, 0o750); err != nil {
				return err
			}
		}
		if err := copyFile(ctx, src.ex, path.Join(src.logDir, e.Name()), dst.ex, path.Join(into, e.Name())); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		m.env.Logf(provision.LevelInfo, "copied the %d logs of %s from %s on %s into %s on %s", n, src.c.Site.Domain, src.logDir, src.ex.Host(), into, dst.ex.Host())
	}
	return nil
}

// copyFile streams a file from one server to another (0640).
func copyFile(ctx context.Context, from exec.Executor, src string, to exec.Executor, dst string) error {
	r, err := from.Open(ctx, src)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := to.Create(ctx, dst, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("copy %s on %s to %s on %s: %w", src, from.Host(), dst, to.Host(), err)
	}
	return w.Close()
}
