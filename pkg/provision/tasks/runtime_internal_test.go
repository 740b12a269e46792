package tasks

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// countingEx counts the commands and file look-ups an executor is asked
// for: each is a round trip on a remote server.
type countingEx struct {
	exec.Executor
	n atomic.Int32
}

func (c *countingEx) Run(ctx context.Context, cmd exec.Command) (exec.Result, error) {
	c.n.Add(1)
	return c.Executor.Run(ctx, cmd)
}

func (c *countingEx) ReadFile(ctx context.Context, p string) ([]byte, error) {
	c.n.Add(1)
	return c.Executor.ReadFile(ctx, p)
}

func (c *countingEx) Lstat(ctx context.Context, p string) (fs.FileInfo, error) {
	c.n.Add(1)
	return c.Executor.Lstat(ctx, p)
}

func (c *countingEx) ReadDir(ctx context.Context, p string) ([]fs.FileInfo, error) {
	c.n.Add(1)
	return c.Executor.ReadDir(ctx, p)
}

// The clean-up of what a site had when it was isolated costs a shared
// site that never was one look-up (its user), not one per PHP version's
// pool.
func TestSharedSiteRuntimeCleanupIsOneLookup(t *testing.T) {
	dir := t.TempDir()
	ex := &countingEx{Executor: exec.NewLocal()}
	c := &provision.Job{Site: provision.SiteSpec{Domain: "never-isolated.test", Platform: provision.PlatformSpec{Root: "/srv/wp"}},
		System: provision.SystemSpec{FPM: provision.FPMSpec{PoolDir: filepath.Join(dir, "pool"), RuntimeDir: filepath.Join(dir, "runtime"), TestCmd: "true", ReloadCmd: "true"}}}
	s := &site{c: c, env: &engine.Env{}, ex: ex}
	dropped, err := s.dropRuntime(context.Background(), false)
	if err != nil || dropped {
		t.Fatalf("dropRuntime: %v %v", dropped, err)
	}
	if n := ex.n.Load(); n != 1 {
		t.Errorf("the clean-up of a shared site took %d round trips, want 1", n)
	}
}
