package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// toolTimeout bounds a dump or load; the caller's context may end it sooner.
const toolTimeout = 6 * time.Hour

// shortTimeout bounds the helper commands around a dump or load.
const shortTimeout = 30 * time.Second

// workDir is a private temporary directory (mode 0700, from mktemp -d) on
// the database server that holds the admin's credentials file and the dump
// FIFO for one dump or load, and is removed afterwards. It is made in the
// task's directory on that server (exec.TempDir), which the rescue of a
// task whose dispatcher died removes; without a task, in the system's.
type workDir struct {
	ex  exec.Executor
	dir string
}

// newWorkDir makes the directory and writes the credentials file name in
// it (mode 0600) with content.
func newWorkDir(ctx context.Context, ex exec.Executor, name string, content []byte) (*workDir, error) {
	args := []string{"-d", "-t", "aegir-db.XXXXXXXXXX"}
	if base, err := exec.TempDir(ctx, ex); err != nil {
		return nil, err
	} else if base != "" {
		args = []string{"-d", "-p", base, "aegir-db.XXXXXXXXXX"}
	}
	res, err := ex.Run(ctx, exec.Command{Name: "mktemp", Args: args, Timeout: shortTimeout})
	if err != nil {
		return nil, fmt.Errorf("making a temporary directory on %s: %w", ex.Host(), err)
	}
	dir := strings.TrimSpace(string(res.Stdout))
	if !path.IsAbs(dir) || strings.ContainsAny(dir, "\n\x00") || path.Clean(dir) != dir {
		return nil, fmt.Errorf("mktemp on %s printed %q, not a directory path", ex.Host(), dir)
	}
	w := &workDir{ex: ex, dir: dir}
	if err := ex.WriteFile(ctx, w.path(name), content, 0o600); err != nil {
		w.remove(ctx)
		return nil, fmt.Errorf("writing the credentials file on %s: %w", ex.Host(), err)
	}
	return w, nil
}

func (w *workDir) path(name string) string { return path.Join(w.dir, name) }

// remove deletes the directory, also when ctx has been cancelled.
func (w *workDir) remove(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shortTimeout)
	defer cancel()
	_ = w.ex.RemoveAll(rctx, w.dir)
}

// streamOut runs c, which writes its output to the FIFO fifo (made here),
// and copies what it writes to w as it comes: a dump is never stored on the
// server's disk nor held in memory whole. The executor's Open reads the
// FIFO, locally or over SFTP.
func (w *workDir) streamOut(ctx context.Context, fifo string, c exec.Command, out io.Writer) error {
	if _, err := w.ex.Run(ctx, exec.Command{Name: "mkfifo", Args: []string{"-m", "600", fifo}, Timeout: shortTimeout}); err != nil {
		return fmt.Errorf("making a FIFO on %s: %w", w.ex.Host(), err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opened := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := w.ex.Run(rctx, c)
		// If the tool ended without opening the FIFO (it failed to
		// connect, say), the reader below still waits in Open.
		w.releaseReader(ctx, fifo, opened)
		done <- err
	}()
	rc, err := w.ex.Open(ctx, fifo)
	close(opened)
	if err != nil {
		cancel()
		<-done
		return fmt.Errorf("reading the FIFO on %s: %w", w.ex.Host(), err)
	}
	_, copyErr := io.Copy(out, rc)
	_ = rc.Close()
	if copyErr != nil {
		cancel() // the tool would block on a FIFO nobody reads
	}
	runErr := <-done
	switch {
	case runErr != nil:
		return runErr // explains a short copy too
	case copyErr != nil:
		return fmt.Errorf("copying the output of %s: %w", c.Name, copyErr)
	}
	return nil
}

// releaseReader opens the FIFO for writing without blocking and closes it
// again, until the reader's Open has returned: the reader then sees end of
// file. When no reader waits, the open fails at once (ENXIO), harmlessly.
func (w *workDir) releaseReader(ctx context.Context, fifo string, opened <-chan struct{}) {
	ctx = context.WithoutCancel(ctx)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-opened:
			return
		default:
		}
		_, _ = w.ex.Run(ctx, exec.Command{
			Name:    "dd",
			Args:    []string{"of=" + fifo, "oflag=nonblock", "count=0", "status=none"},
			Stdin:   strings.NewReader(""),
			Timeout: 5 * time.Second,
		})
		select {
		case <-opened:
			return
		case <-tick.C:
		}
	}
}

// findProgram returns the path of the first of names on ex, for servers
// that have mariadb-dump or only mysqldump.
func findProgram(ctx context.Context, ex exec.Executor, names ...string) (string, error) {
	p, err := exec.FindProgram(ctx, ex, names...)
	if errors.Is(err, exec.ErrNotFound) {
		return "", &provision.Error{Code: provision.ErrMissingBinary,
			Hint: "install the database client tools on that server (Debian: apt install mariadb-client, or postgresql-client for PostgreSQL)",
			Msg:  fmt.Sprintf("%s: not installed on %s", strings.Join(names, " or "), ex.Host()), Err: err}
	}
	return p, err
}

// toolError explains a failed dump or load.
func toolError(ctx context.Context, c Config, what string, err error) error {
	if e := cancelled(ctx, err); e != nil {
		return e
	}
	var pe *provision.Error
	if errors.As(err, &pe) {
		return err
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		return &provision.Error{
			Code: provision.ErrDatabase,
			Msg:  fmt.Sprintf("%s on the %s server at %s failed", what, c.Type, c.Addr()),
			Hint: "read the tool's message; check that the database exists and that the admin login works by verifying the server",
			Fix:  []entities.Action{entities.Do("server.verify", c.serverName())},
			Err:  err,
		}
	}
	return &provision.Error{Code: provision.ErrCommand, Msg: what + " failed", Err: err}
}

// optionValue quotes a value for a MySQL option file: in double quotes,
// with backslash and double quote escaped. Line breaks cannot be written.
func optionValue(s string) (string, error) {
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", errors.New("a line break or NUL in a credential")
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`, nil
}

// pgpassField escapes a field of a .pgpass line.
func pgpassField(s string) (string, error) {
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", errors.New("a line break or NUL in a credential")
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, ":", `\:`), nil
}

func errBadCredential(c Config, err error) error {
	return &provision.Error{
		Code: provision.ErrInvalidContext,
		Msg:  fmt.Sprintf("the admin credentials of the %s server at %s cannot be passed to its client tools", c.Type, c.Addr()),
		Hint: "use an admin user name and password without line breaks",
		Err:  err,
	}
}
