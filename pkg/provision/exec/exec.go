// Package exec runs commands and moves files on a server, locally or over SSH.
//
// Every piece of the back end that touches a server goes through an Executor,
// so the same provisioning code works on the machine aegir runs on and on a
// remote server. Implementations: Local (os/exec and the os package) and SSH
// (golang.org/x/crypto/ssh with SFTP for files). Both pass the conformance
// suite in exectest.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// DefaultTimeout bounds a command that sets no Timeout of its own.
const DefaultTimeout = 10 * time.Minute

// Command is one program to run, as an argument vector: never a shell string.
type Command struct {
	Name string   // program name or path
	Args []string // arguments, passed as they are (quoted for the remote shell by SSH)
	// Stdin feeds the program. Secrets (passwords, settings with passwords)
	// travel here, never in Args, where ps and logs would show them.
	Stdin   io.Reader
	Dir     string        // working directory; empty: the executor's default
	Env     []string      // extra KEY=VALUE pairs on top of the executor's environment
	User    string        // run as this system user (via runuser locally, sudo -u remotely); empty: as the executor's user
	Timeout time.Duration // 0: DefaultTimeout
	// Shown replaces the arguments in logs and errors (String) when they
	// are long and say nothing to a reader (a script's code); empty: the
	// arguments are shown.
	Shown string
}

// String renders the command for logs: program and arguments, shell-quoted.
func (c Command) String() string {
	parts := make([]string, 0, len(c.Args)+1)
	parts = append(parts, Quote(c.Name))
	for _, a := range c.Args {
		parts = append(parts, Quote(a))
	}
	s := strings.Join(parts, " ")
	if c.Shown != "" {
		s = Quote(c.Name) + " " + c.Shown
	}
	if c.User != "" {
		s = "(as " + c.User + ") " + s
	}
	return s
}

// Result is what a finished command printed and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	Duration time.Duration
}

// ExitError is returned by Run when the program ran and exited non-zero.
type ExitError struct {
	Command  string // Command.String()
	ExitCode int
	Stderr   string // the tail of standard error (or standard output when stderr was empty)
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("command %s exited with status %d", e.Command, e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// ErrTimeout is wrapped by Run when a command exceeded its timeout and was killed.
var ErrTimeout = errors.New("command timed out")

// ErrNotFound is wrapped by Run when the program does not exist on the server.
var ErrNotFound = errors.New("program not found")

// Executor runs commands and handles files on one server.
//
// Paths are absolute paths on that server. File methods return errors that
// satisfy errors.Is(err, fs.ErrNotExist) when a path does not exist.
// WriteFile is atomic: it writes a temporary file beside path and renames it.
type Executor interface {
	// Run runs c and waits for it. A non-zero exit is an *ExitError (the
	// Result is still filled); a missing program wraps ErrNotFound; a
	// timeout wraps ErrTimeout.
	Run(ctx context.Context, c Command) (Result, error)

	ReadFile(ctx context.Context, path string) ([]byte, error)
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error
	// Open streams a file from the server; Create streams one to it (written
	// under a temporary name and renamed into place by Close).
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	Create(ctx context.Context, path string, mode fs.FileMode) (io.WriteCloser, error)

	Stat(ctx context.Context, path string) (fs.FileInfo, error) // follows symlinks
	Lstat(ctx context.Context, path string) (fs.FileInfo, error)
	ReadDir(ctx context.Context, path string) ([]fs.FileInfo, error)
	MkdirAll(ctx context.Context, path string, mode fs.FileMode) error
	Remove(ctx context.Context, path string) error    // a file or an empty directory
	RemoveAll(ctx context.Context, path string) error // no error when path is absent
	Rename(ctx context.Context, oldpath, newpath string) error
	Symlink(ctx context.Context, target, link string) error
	Chmod(ctx context.Context, path string, mode fs.FileMode) error
	// Chown sets owner and group by name; an empty group keeps the current one.
	Chown(ctx context.Context, path, owner, group string) error

	// Host names the server for messages: "localhost" or "user@host:port".
	Host() string
	// IsLocal reports whether commands run on this machine.
	IsLocal() bool
	Close() error
}

// Quote returns s quoted for a POSIX shell, so that the shell passes it
// through as one word. Plain words are left as they are.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// QuoteArgv quotes every word of argv and joins them with spaces.
func QuoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
