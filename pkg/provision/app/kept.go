package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// A platform's own configuration that aegir replaces (a WordPress tree's
// wp-config.php, with its database password) is kept outside every
// docroot, in the aegir home of the platform's server:
// HOME/kept/PLATFORM-DIR/NAME (0600, its directory 0700), where the web
// server never serves it. PLATFORM-DIR is made of the platform root's last
// element and a hash of the whole root, so that two platforms never share
// one.

// KeptDir is the directory of the kept files under an aegir home.
func KeptDir(home string) string { return path.Join(home, "kept") }

// KeptFile is where the file name of the platform at root is kept.
func KeptFile(keep, root, name string) string {
	sum := sha256.Sum256([]byte(root))
	return path.Join(keep, path.Base(root)+"-"+hex.EncodeToString(sum[:6]), name)
}

// LegacyCopy is a copy of a platform's own configuration that an older
// aegir kept in the docroot, where the web server could serve it, and the
// name it is kept under outside (KeepOutside).
type LegacyCopy struct {
	Path string
	Name string
}

// KeepOutside writes data as the kept copy of the platform's file name
// (0600), unless a kept copy with that content is there already, and
// returns its path. A different kept copy of the same name is not
// overwritten: the new one gets a numbered name beside it.
func KeepOutside(ctx context.Context, ex exec.Executor, keep string, p Platform, name string, data []byte) (string, error) {
	if keep == "" || !path.IsAbs(keep) {
		return "", provision.Errorf(provision.ErrInvalidContext, "give the server's aegir home (site.web.home) in the job",
			"cannot keep the platform's own %s outside its docroot: the aegir home of %s is not known", name, ex.Host())
	}
	base := KeptFile(keep, p.Root, name)
	if err := ex.MkdirAll(ctx, path.Dir(base), 0o700); err != nil {
		return "", fmt.Errorf("create %s on %s: %w", path.Dir(base), ex.Host(), err)
	}
	if err := ex.Chmod(ctx, path.Dir(base), 0o700); err != nil {
		return "", fmt.Errorf("chmod 700 %s on %s: %w", path.Dir(base), ex.Host(), err)
	}
	dst := base
	for i := 1; ; i++ {
		old, err := ex.ReadFile(ctx, dst)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read %s on %s: %w", dst, ex.Host(), err)
		}
		if bytes.Equal(old, data) {
			return dst, nil
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := ex.WriteFile(ctx, dst, data, 0o600); err != nil {
		return "", fmt.Errorf("keep %s as %s on %s: %w", name, dst, ex.Host(), err)
	}
	return dst, nil
}

// MoveOutLegacyCopies moves the copies that an older aegir kept in the
// docroot out to the kept directory, with a warning: the web server may
// have served them as plain text.
func MoveOutLegacyCopies(ctx context.Context, ex exec.Executor, p Platform, keep string, copies []LegacyCopy, log Logf) error {
	for _, c := range copies {
		f := c.Path
		fi, err := ex.Lstat(ctx, f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s on %s: %w", f, ex.Host(), err)
		}
		if !fi.Mode().IsRegular() {
			// A link or a directory: not aegir's copy; only removed from
			// where the web server finds it.
			log.Printf(provision.LevelWarning, "%s on %s is not a regular file; remove it from the docroot by hand", f, ex.Host())
			continue
		}
		data, err := ex.ReadFile(ctx, f)
		if err != nil {
			return fmt.Errorf("read %s on %s: %w", f, ex.Host(), err)
		}
		dst, err := KeepOutside(ctx, ex, keep, p, c.Name, data)
		if err != nil {
			return err
		}
		if err := ex.Remove(ctx, f); err != nil {
			return fmt.Errorf("remove %s on %s (kept as %s): %w", f, ex.Host(), dst, err)
		}
		log.Printf(provision.LevelWarning, "moved %s out of the docroot to %s (0600): in the docroot the web server could serve it as plain text, with the database password it may hold; change that password if the site was reachable", f, dst)
	}
	return nil
}
