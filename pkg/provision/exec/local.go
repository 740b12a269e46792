package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Local runs commands and handles files on the machine aegir runs on.
//
// A Command with a User other than the current one runs through
// `runuser -u USER --`, which needs root.
type Local struct{}

var _ Executor = (*Local)(nil)

// NewLocal returns the executor for this machine.
func NewLocal() Executor { return &Local{} }

// Host returns "localhost".
func (*Local) Host() string { return "localhost" }

// IsLocal returns true.
func (*Local) IsLocal() bool { return true }

// Close does nothing: a Local executor holds no resources.
func (*Local) Close() error { return nil }

var currentUser = sync.OnceValue(func() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
})

// localArgv returns the program and arguments that run c on this machine,
// and whether they go through runuser.
func localArgv(c Command) (argv []string, wrapped bool) {
	if c.User == "" || c.User == currentUser() {
		return append([]string{c.Name}, c.Args...), false
	}
	// runuser resets parts of the environment (PATH, HOME); env puts
	// the command's own variables back after it.
	argv = []string{"runuser", "-u", c.User, "--"}
	if len(c.Env) > 0 {
		argv = append(append(append(argv, "env"), c.Env...), c.Name)
	} else {
		argv = append(argv, c.Name)
	}
	return append(argv, c.Args...), true
}

// Run runs c on this machine. See Executor.Run.
func (l *Local) Run(ctx context.Context, c Command) (Result, error) {
	if err := checkCommand(c); err != nil {
		return Result{}, err
	}
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err != nil {
			return Result{}, fmt.Errorf("working directory for %s: %w", c.String(), err)
		} else if !fi.IsDir() {
			return Result{}, fmt.Errorf("working directory for %s: %s is not a directory", c.String(), c.Dir)
		}
	}
	// Resolve the program here, also for runuser, whose PATH is not ours.
	prog, err := osexec.LookPath(c.Name)
	if err != nil {
		return Result{}, notFoundError(c, l.Host(), err)
	}
	rc := c
	rc.Name = prog
	argv, wrapped := localArgv(rc)

	timeout := effectiveTimeout(c)
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := osexec.CommandContext(tctx, argv[0], argv[1:]...)
	cmd.Stdin = c.Stdin
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Kill the whole process group on timeout, so that children of the
	// program (or of runuser) die with it, and do not wait for ever for
	// pipes a stray grandchild still holds.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	err = cmd.Start()
	if err == nil {
		// The rescue of a task whose dispatcher died kills the groups
		// the task left running.
		if t := taskOf(ctx); t != nil {
			t.started(cmd.Process.Pid)
			defer t.ended(cmd.Process.Pid)
		}
		err = cmd.Wait()
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s on %s: %w", c.String(), l.Host(), ctx.Err())
	case tctx.Err() != nil:
		return res, timeoutError(c, l.Host(), timeout)
	}
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		xe := exitError(c, res.ExitCode, res.Stdout, res.Stderr)
		if wrapped && res.ExitCode == 127 {
			return res, notFoundError(c, l.Host(), xe)
		}
		return res, xe
	}
	if errors.Is(err, osexec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return res, notFoundError(c, l.Host(), err)
	}
	return res, fmt.Errorf("running %s: %w", c.String(), err)
}

// ReadFile reads a whole file.
func (*Local) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// WriteFile writes data to path atomically with the given mode.
func (l *Local) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	return writeFileVia(ctx, l, path, data, mode)
}

// Open opens a file for reading.
func (*Local) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.Open(path)
}

// Create returns a writer to a temporary file beside path that Close
// moves onto path with the given mode.
func (*Local) Create(ctx context.Context, path string, mode fs.FileMode) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".aegir-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	return &atomicWriter{
		w:    f,
		seal: func() error { return f.Chmod(mode.Perm()) },
		commit: func() error {
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			return nil
		},
		abort: func() { _ = os.Remove(tmp) },
	}, nil
}

// Stat describes path, following symlinks.
func (*Local) Stat(ctx context.Context, path string) (fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.Stat(path)
}

// Lstat describes path itself, not what a symlink points to.
func (*Local) Lstat(ctx context.Context, path string) (fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.Lstat(path)
}

// ReadDir lists a directory, sorted by name.
func (*Local) ReadDir(ctx context.Context, path string) ([]fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	infos := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		} else if err != nil {
			return nil, err
		}
		infos = append(infos, fi)
	}
	return infos, nil
}

// MkdirAll creates path and its missing parents.
func (*Local) MkdirAll(ctx context.Context, path string, mode fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.MkdirAll(path, mode.Perm())
}

// Remove removes a file or an empty directory.
func (*Local) Remove(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Remove(path)
}

// RemoveAll removes path and everything under it.
func (*Local) RemoveAll(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRemoveAll(path); err != nil {
		return err
	}
	return os.RemoveAll(path)
}

// Rename renames oldpath to newpath, replacing a file there.
func (*Local) Rename(ctx context.Context, oldpath, newpath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Rename(oldpath, newpath)
}

// Symlink creates link pointing to target.
func (*Local) Symlink(ctx context.Context, target, link string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Symlink(target, link)
}

// Chmod sets the permission bits of path.
//
// A symbolic link is refused, not followed: a directory that a site's
// code may write could otherwise lend aegir's rights to any path. The
// file is opened without following a link and changed through that open
// file, so a link swapped in meanwhile changes nothing.
func (*Local) Chmod(ctx context.Context, path string, mode fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return errSymlink("chmod", path)
	case errors.Is(err, fs.ErrPermission):
		// Not readable by this user (its owner may still chmod it).
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return errSymlink("chmod", path)
		}
		return os.Chmod(path, mode)
	case err != nil:
		return err
	}
	defer f.Close()
	return f.Chmod(mode)
}

// errSymlink is the refusal to change a path that is a symbolic link.
func errSymlink(op, path string) error {
	return fmt.Errorf("%s %s: it is a symbolic link, which aegir does not follow (the site's code may have put it there): remove it and run the task again", op, path)
}

// Chown sets the owner (and the group, unless empty) of path by name.
func (*Local) Chown(ctx context.Context, path, owner, group string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	uid, gid := -1, -1
	if owner != "" {
		u, err := user.Lookup(owner)
		if err != nil {
			return fmt.Errorf("chown %s: no user %q on localhost: %w", path, owner, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return fmt.Errorf("chown %s: no group %q on localhost: %w", path, group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	// A symbolic link itself, never where it points (see Chmod).
	return os.Lchown(path, uid, gid)
}
