package exec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// tailMax bounds the part of a command's output that goes into an ExitError.
const (
	tailMaxBytes = 2000
	tailMaxLines = 20
)

// tail returns the last lines of out, at most tailMaxLines lines and about
// tailMaxBytes bytes, for error messages.
func tail(out []byte) string {
	out = bytes.TrimRight(out, "\n\r\t ")
	if len(out) > tailMaxBytes {
		out = out[len(out)-tailMaxBytes:]
		if i := bytes.IndexByte(out, '\n'); i >= 0 && i < len(out)-1 {
			out = out[i+1:]
		}
	}
	lines := bytes.Split(out, []byte("\n"))
	if len(lines) > tailMaxLines {
		lines = lines[len(lines)-tailMaxLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// exitError builds the *ExitError of a command that exited non-zero.
func exitError(c Command, code int, stdout, stderr []byte) *ExitError {
	out := stderr
	if len(bytes.TrimSpace(out)) == 0 {
		out = stdout
	}
	return &ExitError{Command: c.String(), ExitCode: code, Stderr: tail(out)}
}

// effectiveTimeout is c.Timeout, or DefaultTimeout when unset.
func effectiveTimeout(c Command) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func timeoutError(c Command, host string, d time.Duration) error {
	return fmt.Errorf("%w on %s after %s (killed): %s", ErrTimeout, host, d, c.String())
}

func notFoundError(c Command, host string, cause error) error {
	if cause != nil {
		return fmt.Errorf("%w on %s: %s: %w", ErrNotFound, host, c.Name, cause)
	}
	return fmt.Errorf("%w on %s: %s", ErrNotFound, host, c.Name)
}

// checkCommand rejects commands that cannot be run as an argument vector.
func checkCommand(c Command) error {
	if c.Name == "" {
		return errors.New("exec: empty program name")
	}
	if strings.ContainsAny(c.Name, "=\x00") || strings.HasPrefix(c.Name, "-") {
		return fmt.Errorf("exec: invalid program name %q", c.Name)
	}
	for _, kv := range c.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !validEnvName(k) {
			return fmt.Errorf("exec: invalid environment entry %q (want KEY=VALUE)", kv)
		}
	}
	if c.User != "" && !validUserName(c.User) {
		return fmt.Errorf("exec: invalid user name %q", c.User)
	}
	return nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func validUserName(u string) bool {
	if u == "" || len(u) > 64 || u[0] == '-' {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.$", r)) {
			return false
		}
	}
	return true
}

// tempPath returns a fresh temporary name in the directory of p, for
// writing a file that is then renamed onto p.
func tempPath(p string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return path.Join(path.Dir(p), "."+path.Base(p)+".aegir-tmp-"+hex.EncodeToString(b[:]))
}

// atomicWriter writes to a temporary file and, on Close, commits it (sync,
// chmod, rename into place). A failed write or commit removes the
// temporary file. The mode is set on the open file (seal), never through
// its path: in a directory others may write (a site's files, wp-content),
// the temporary file may be a symbolic link by then.
type atomicWriter struct {
	w      io.WriteCloser
	seal   func() error // on the open file, before w is closed
	commit func() error // after w is closed
	abort  func()       // remove the temporary file
	err    error
	closed bool
}

func (a *atomicWriter) Write(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	n, err := a.w.Write(p)
	if err != nil {
		a.err = err
	}
	return n, err
}

func (a *atomicWriter) Close() error {
	if a.closed {
		return errors.New("exec: file already closed")
	}
	a.closed = true
	if s, ok := a.w.(interface{ Sync() error }); ok && a.err == nil {
		a.err = s.Sync()
	}
	if a.err == nil {
		a.err = a.seal()
	}
	cerr := a.w.Close()
	if a.err == nil {
		a.err = cerr
	}
	if a.err == nil {
		a.err = a.commit()
	}
	if a.err != nil {
		a.abort()
	}
	return a.err
}

// checkRemoveAll refuses to remove everything under a relative path or
// the root directory: always a bug in the caller.
func checkRemoveAll(p string) error {
	if !path.IsAbs(p) || path.Clean(p) == "/" {
		return fmt.Errorf("exec: refusing to remove all of %q: not an absolute path below /", p)
	}
	return nil
}

// writeFileVia writes data through ex.Create, so that WriteFile is as
// atomic as Create.
func writeFileVia(ctx context.Context, ex Executor, path string, data []byte, mode fs.FileMode) error {
	w, err := ex.Create(ctx, path, mode)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}
