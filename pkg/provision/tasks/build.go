package tasks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// BuildTimeout bounds one step of a platform build (a clone, a composer
// run): they fetch code over the network.
const BuildTimeout = 30 * time.Minute

// build is how a platform verify builds the platform's code first (the
// options of platform add's verify task): a git clone of GitURL at Ref
// (empty: the default branch), then composer install in it, or composer
// create-project of Project alone.
type build struct {
	GitURL, Ref     string
	ComposerInstall bool
	Project         string // PKG[:VERSION]
}

// buildOf reads a verify job's build options: nil when it builds nothing.
// Each value is checked as the front end checks it.
func buildOf(c *provision.Job) (*build, error) {
	b := &build{GitURL: c.Opt("git_url", ""), Ref: c.Opt("git_ref", "")}
	switch comp := c.Opt("composer", ""); {
	case comp == entities.ComposerInstall:
		b.ComposerInstall = true
	case strings.HasPrefix(comp, entities.ComposerProject):
		b.Project = strings.TrimPrefix(comp, entities.ComposerProject)
		if err := entities.ValidateComposerPackage("options.composer", b.Project); err != nil {
			return nil, provision.Errorf(provision.ErrInvalidContext, "fix the job's options", "%v", err)
		}
	case comp != "":
		return nil, provision.Errorf(provision.ErrInvalidContext, "fix the job's options", "options.composer %q: must be %s or %sPKG[:VERSION]", comp, entities.ComposerInstall, entities.ComposerProject)
	}
	if b.GitURL == "" && b.Project == "" {
		if b.Ref != "" || b.ComposerInstall {
			return nil, provision.Errorf(provision.ErrInvalidContext, "give options.git_url too", "options.git_ref and composer install build from a git checkout")
		}
		return nil, nil
	}
	if b.GitURL != "" {
		if err := entities.ValidateGitURL("options.git_url", b.GitURL); err != nil {
			return nil, provision.Errorf(provision.ErrInvalidContext, "fix the job's options", "%v", err)
		}
		if b.Project != "" {
			return nil, provision.Errorf(provision.ErrInvalidContext, "give one of them", "options.git_url and a composer create-project both make the tree")
		}
	}
	if b.Ref != "" {
		if err := entities.ValidateGitRef("options.git_ref", b.Ref); err != nil {
			return nil, provision.Errorf(provision.ErrInvalidContext, "fix the job's options", "%v", err)
		}
	}
	return b, nil
}

// buildPlatform makes the platform's root on its server from b: in a
// staging directory beside the root (removed first, should a killed build
// have left it), renamed to the root once every step worked. A root that
// exists already is refused and left alone; a failed step removes the
// staging directory, so a failed build leaves no platform directory. It
// returns the commit checked out (empty for create-project).
func buildPlatform(ctx context.Context, env *engine.Env, ex exec.Executor, job *provision.Job, b *build) (commit string, err error) {
	root := job.Site.Platform.Root
	if _, err := ex.Lstat(ctx, root); err == nil {
		return "", app.PlatformError("give a platform root that does not exist yet (aegir builds the platform there), or add the existing tree as it is, without a git or composer source",
			"platform root %s already exists on %s; a platform aegir builds needs a new directory", root, ex.Host())
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("platform root %s on %s: %w", root, ex.Host(), err)
	}
	parent := path.Dir(root)
	if err := ex.MkdirAll(ctx, parent, 0o755); err != nil {
		return "", fmt.Errorf("making %s on %s: %w", parent, ex.Host(), err)
	}
	stage := path.Join(parent, "."+path.Base(root)+".aegir-build")
	if err := ex.RemoveAll(ctx, stage); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			if rerr := ex.RemoveAll(context.WithoutCancel(ctx), stage); rerr != nil {
				env.Logf(provision.LevelWarning, "could not remove the failed build's %s on %s: %v", stage, ex.Host(), rerr)
			}
		}
	}()
	if b.Project != "" {
		pkg, version, _ := strings.Cut(b.Project, ":")
		args := []string{"create-project", "--no-dev", "--no-interaction", "--no-progress", "--", pkg, stage}
		if version != "" {
			args = append(args, version)
		}
		if err := buildStep(ctx, env, ex, job, exec.Command{Name: "composer", Args: args, Dir: parent}, "composer create-project of "+b.Project); err != nil {
			return "", err
		}
	} else {
		args := []string{"-c", "advice.detachedHead=false", "clone", "--quiet"}
		if b.Ref != "" {
			args = append(args, "--branch", b.Ref)
		}
		args = append(args, "--", b.GitURL, stage)
		if err := buildStep(ctx, env, ex, job, exec.Command{Name: "git", Args: args, Dir: parent}, "git clone of "+b.GitURL+refWords(b.Ref)); err != nil {
			return "", err
		}
		if commit, err = headCommit(ctx, ex, stage); err != nil {
			return "", err
		}
		env.Logf(provision.LevelInfo, "checked out %s%s: commit %s", b.GitURL, refWords(b.Ref), commit)
		if b.ComposerInstall {
			c := exec.Command{Name: "composer", Args: []string{"install", "--no-dev", "--no-interaction", "--no-progress"}, Dir: stage}
			if err := buildStep(ctx, env, ex, job, c, "composer install"); err != nil {
				return "", err
			}
		}
	}
	if err := ex.Rename(ctx, stage, root); err != nil {
		return "", fmt.Errorf("moving the build %s to %s on %s: %w", stage, root, ex.Host(), err)
	}
	env.Logf(provision.LevelInfo, "built platform %s at %s on %s", job.Site.Platform.Name, root, ex.Host())
	return commit, nil
}

func refWords(ref string) string {
	if ref == "" {
		return ""
	}
	return " at " + ref
}

// buildStep runs one command of a build, with its output in the task's
// log; a failure is a platform error that says what failed and how to
// go on.
func buildStep(ctx context.Context, env *engine.Env, ex exec.Executor, job *provision.Job, c exec.Command, what string) error {
	c.Timeout = BuildTimeout
	c.Env = append(c.Env, "GIT_TERMINAL_PROMPT=0") // fail rather than wait for a password no one types
	env.Logf(provision.LevelCommand, "%s: %s", ex.Host(), c.String())
	res, err := ex.Run(ctx, c)
	if out := strings.TrimSpace(string(res.Stdout) + "\n" + string(res.Stderr)); out != "" {
		env.Logf(provision.LevelOutput, "%s", app.LastLines(out, 60))
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return provision.Errorf(provision.ErrMissingBinary, fmt.Sprintf("install it on %s (Debian: apt-get install %s), then retry the task", ex.Host(), c.Name),
			"%s: %s is not installed on %s", what, c.Name, ex.Host()).With(entities.Do("task.retry", job.TaskRef()))
	}
	var xe *exec.ExitError
	msg := err.Error()
	if errors.As(err, &xe) {
		msg = failureLine(xe.Stderr)
		if msg == "" {
			msg = failureLine(string(res.Stdout))
		}
	}
	return &provision.Error{Code: provision.ErrPlatform, Err: err,
		Msg:  fmt.Sprintf("%s on %s failed: %s; nothing was left at the platform's root", what, ex.Host(), msg),
		Hint: "read the build's output in the log, fix the repository, ref or package (or the server's access to it), then retry the task",
		Fix:  []entities.Action{entities.Do("task.retry", job.TaskRef())}}
}

// failureLine is the line of a command's output that says why it failed:
// git's first "fatal:" or "error:" line, else the last line.
func failureLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "fatal: ") || strings.HasPrefix(l, "error: ") {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// headCommit is the commit checked out in the git work tree dir; empty
// when dir is not one.
func headCommit(ctx context.Context, ex exec.Executor, dir string) (string, error) {
	if _, err := ex.Lstat(ctx, path.Join(dir, ".git")); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	res, err := ex.Run(ctx, exec.Command{Name: "git", Args: []string{"-C", dir, "rev-parse", "--verify", "HEAD"}, Timeout: app.CheckTimeout})
	if err != nil {
		return "", fmt.Errorf("reading the commit of %s on %s: %w", dir, ex.Host(), err)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}
