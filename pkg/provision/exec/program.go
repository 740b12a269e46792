package exec

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"
)

// SbinDirs are searched for a program after the PATH: they hold the
// servers and admin tools (nginx, apache2ctl) and are not on a non-root
// user's PATH.
var SbinDirs = []string{"/usr/sbin", "/usr/local/sbin"}

// findTimeout bounds the probe for a program.
const findTimeout = 30 * time.Second

// findScript prints the absolute path of the first of its arguments that
// is an executable file: on the PATH (command -v), else in one of the
// directories DIRS. A name is never run to see whether it exists: a
// shell's exec looks for a name it cannot find on the PATH in the working
// directory, so a directory named like the program there would answer
// (with "cannot execute", status 126).
const findScript = `for n do
	case $n in
	/*) p=$n ;;
	*) p=$(command -v "$n" 2>/dev/null) || p= ;;
	esac
	case $p in
	/*) if [ -f "$p" ] && [ -x "$p" ]; then printf '%s\n' "$p"; exit 0; fi ;;
	esac
done
for n do
	case $n in /*) continue ;; esac
	for d in DIRS; do
		if [ -f "$d/$n" ] && [ -x "$d/$n" ]; then printf '%s\n' "$d/$n"; exit 0; fi
	done
done
exit 1`

// FindProgram returns the absolute path of the first of names installed
// on ex's server: found on the PATH of ex's user (command -v), else in
// SbinDirs. A name that is a path is checked as it is. When none is
// there, the error wraps ErrNotFound and lists where it looked. An
// executor that implements ProgramFinder (the provision pool's) answers
// from what it found before.
func FindProgram(ctx context.Context, ex Executor, names ...string) (string, error) {
	if f, ok := ex.(ProgramFinder); ok {
		return f.FindProgram(ctx, names...)
	}
	return findProgram(ctx, ex, names)
}

// ProgramFinder is an executor that remembers the programs it found.
type ProgramFinder interface {
	FindProgram(ctx context.Context, names ...string) (string, error)
}

func findProgram(ctx context.Context, ex Executor, names []string) (string, error) {
	if len(names) == 0 {
		return "", errors.New("exec: FindProgram without a program name")
	}
	for _, n := range names {
		if n == "" || strings.HasPrefix(n, "-") || strings.ContainsAny(n, "\x00\n") || !path.IsAbs(n) && strings.Contains(n, "/") {
			return "", fmt.Errorf("exec: invalid program name %q", n)
		}
	}
	script := strings.Replace(findScript, "DIRS", QuoteArgv(SbinDirs), 1)
	res, err := ex.Run(ctx, Command{Name: "sh", Args: append([]string{"-c", script, "sh"}, names...), Timeout: findTimeout})
	var xe *ExitError
	switch {
	case err == nil:
		p := strings.TrimSpace(string(res.Stdout))
		if !path.IsAbs(p) {
			return "", fmt.Errorf("looking for %s on %s: the probe printed %q, not a path", strings.Join(names, ", "), ex.Host(), p)
		}
		return p, nil
	case errors.As(err, &xe) && xe.ExitCode == 1:
		return "", fmt.Errorf("%w on %s: %s (looked on the PATH and in %s)", ErrNotFound, ex.Host(),
			strings.Join(names, ", "), strings.Join(SbinDirs, ", "))
	}
	return "", fmt.Errorf("looking for %s on %s: %w", strings.Join(names, ", "), ex.Host(), err)
}

// ProgramCache remembers the programs found on one server, for the life
// of a connection pool: each set of names is looked for once. What was
// not found is asked again next time (it may have been installed since).
type ProgramCache struct {
	mu    sync.Mutex
	found map[string]string
}

// Find is FindProgram through the cache.
func (pc *ProgramCache) Find(ctx context.Context, ex Executor, names ...string) (string, error) {
	key := strings.Join(names, "\x00")
	pc.mu.Lock()
	p, ok := pc.found[key]
	pc.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := findProgram(ctx, ex, names)
	if err != nil {
		return "", err
	}
	pc.mu.Lock()
	if pc.found == nil {
		pc.found = map[string]string{}
	}
	pc.found[key] = p
	pc.mu.Unlock()
	return p, nil
}
