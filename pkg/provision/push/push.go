// Package push copies a platform's code from the master to a remote web
// server: `aegir platform add NAME --server REMOTE --root DIR --push-from
// LOCALDIR`.
//
// Two ways, the first that works:
//
//   - rsync over SSH, when the master has rsync and ssh and the server has
//     rsync. The master's ssh logs in exactly as aegir does: the server's
//     user, port and key, and aegir's own known_hosts file with
//     StrictHostKeyChecking=yes (a key that is unknown or changed stops
//     the copy; aegir's own connection has already checked and, with
//     --accept-host-key, recorded it).
//   - SFTP through the server's executor otherwise: the tree walked on the
//     master, directories made and files written (each atomically, under a
//     temporary name) by several workers at once.
//
// Either way the copy adds and replaces files and never deletes: files
// that only the server has (sites' settings, uploads) stay. Modes are
// kept; owners are not: the code belongs to the SSH user on the server.
package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	osexec "os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Methods.
const (
	Auto  = ""
	Rsync = "rsync"
	SFTP  = "sftp"
)

// Options says how to push.
type Options struct {
	// SSH is how the master's ssh client reaches the server (rsync):
	// host, port, user, key and known_hosts file, as aegir's own
	// connection uses them.
	SSH exec.SSHConfig
	// Method is Auto (rsync when both ends have it, else SFTP), Rsync or
	// SFTP.
	Method string
	// Timeout bounds the whole copy; 0: DefaultTimeout.
	Timeout time.Duration
	// Logf logs progress lines; nil: none.
	Logf func(level, format string, args ...any)
}

// DefaultTimeout bounds a push.
const DefaultTimeout = 30 * time.Minute

// Workers is how many files SFTP writes at once.
const Workers = 8

// Stats is what a push did.
type Stats struct {
	Method string
	Files  int   // regular files copied (SFTP) or considered (rsync)
	Bytes  int64 // their size
}

// safePath is a destination that needs no quoting anywhere: the same
// characters a document root may hold in a web server's configuration.
var safePath = regexp.MustCompile(`^(/[A-Za-z0-9._+@~-]+)+$`)

// Tree makes dst on the server ex reaches a copy of the local directory
// src (see the package documentation).
func Tree(ctx context.Context, ex exec.Executor, src, dst string, o Options) (Stats, error) {
	if o.Logf == nil {
		o.Logf = func(string, string, ...any) {}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if !safePath.MatchString(dst) || path.Clean(dst) != dst || strings.Contains(dst, "/..") || strings.Contains(dst, "/./") {
		return Stats{}, fmt.Errorf("push: invalid destination %q: want an absolute, clean path of letters, digits and . _ + @ ~ -", dst)
	}
	src = filepath.Clean(src)
	if st, err := os.Stat(src); err != nil {
		return Stats{}, fmt.Errorf("push: %w", err)
	} else if !st.IsDir() {
		return Stats{}, fmt.Errorf("push: %s is not a directory", src)
	}
	if st, err := ex.Stat(ctx, dst); err == nil && !st.IsDir() {
		return Stats{}, fmt.Errorf("push: %s on %s exists and is not a directory", dst, ex.Host())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Stats{}, fmt.Errorf("push: %w", err)
	}
	method := o.Method
	if method == Auto {
		method = SFTP
		if why := rsyncMissing(ctx, ex); why != "" {
			o.Logf(entities.LevelInfo, "copying with SFTP: %s", why)
		} else {
			method = Rsync
		}
	}
	o.Logf(entities.LevelInfo, "pushing %s to %s on %s (%s)", src, dst, ex.Host(), method)
	switch method {
	case Rsync:
		return rsync(ctx, ex, src, dst, o)
	case SFTP:
		return sftpTree(ctx, ex, src, dst, o)
	}
	return Stats{}, fmt.Errorf("push: unknown method %q (want rsync or sftp)", method)
}

// rsyncMissing says why rsync cannot be used, or "".
func rsyncMissing(ctx context.Context, ex exec.Executor) string {
	for _, p := range []string{"rsync", "ssh"} {
		if _, err := osexec.LookPath(p); err != nil {
			return p + " is not installed on this machine"
		}
	}
	if ex.IsLocal() {
		return ""
	}
	if _, err := exec.FindProgram(ctx, ex, "rsync"); err != nil {
		return "rsync is not installed on " + ex.Host()
	}
	return ""
}

// SSHCommand is the ssh command line rsync runs (its -e option): aegir's
// user, port, key and known_hosts, host keys checked strictly, never a
// prompt. Paths with quotes are refused: rsync splits the line itself.
func SSHCommand(c exec.SSHConfig) ([]string, error) {
	port := c.Port
	if port == 0 {
		port = 22
	}
	if c.KnownHostsFile == "" {
		return nil, errors.New("push: no known_hosts file to check the server's host key against")
	}
	argv := []string{"ssh", "-p", strconv.Itoa(port),
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + c.KnownHostsFile,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=15",
	}
	if c.User != "" {
		argv = append(argv, "-l", c.User)
	}
	if c.KeyFile != "" {
		argv = append(argv, "-i", c.KeyFile, "-o", "IdentitiesOnly=yes")
	}
	for _, a := range argv {
		if strings.ContainsAny(a, `'"\`+"\n") {
			return nil, fmt.Errorf("push: %q cannot be passed to rsync's ssh: it holds a quote or backslash", a)
		}
	}
	return argv, nil
}

// RsyncArgs are rsync's arguments for copying src's contents into dst on
// the server: recursive, links, permissions and times, not owners.
func RsyncArgs(c exec.SSHConfig, src, dst string) ([]string, error) {
	sshArgv, err := SSHCommand(c)
	if err != nil {
		return nil, err
	}
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return []string{"-rlpt", "--stats", "-e", exec.QuoteArgv(sshArgv), "--", filepath.Clean(src) + "/", host + ":" + dst + "/"}, nil
}

func rsync(ctx context.Context, ex exec.Executor, src, dst string, o Options) (Stats, error) {
	var args []string
	switch {
	case ex.IsLocal():
		args = []string{"-rlpt", "--stats", "--", filepath.Clean(src) + "/", dst + "/"}
	case o.SSH.Host == "":
		return Stats{}, errors.New("push: rsync needs the server's SSH settings")
	default:
		var err error
		if args, err = RsyncArgs(o.SSH, src, dst); err != nil {
			return Stats{}, err
		}
	}
	if err := ex.MkdirAll(ctx, dst, 0o755); err != nil {
		return Stats{}, fmt.Errorf("push: %w", err)
	}
	c := exec.Command{Name: "rsync", Args: args, Timeout: o.Timeout}
	o.Logf(entities.LevelCommand, "%s", c.String())
	res, err := exec.NewLocal().Run(ctx, c)
	if err != nil {
		return Stats{}, fmt.Errorf("push: rsync to %s: %w", ex.Host(), err)
	}
	st := Stats{Method: Rsync}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if v, ok := strings.CutPrefix(l, "Number of regular files transferred: "); ok {
			st.Files, _ = strconv.Atoi(strings.ReplaceAll(v, ",", ""))
		}
		if v, ok := strings.CutPrefix(l, "Total transferred file size: "); ok {
			st.Bytes, _ = strconv.ParseInt(strings.ReplaceAll(strings.TrimSuffix(v, " bytes"), ",", ""), 10, 64)
		}
	}
	o.Logf(entities.LevelInfo, "rsync copied %d files (%d bytes) to %s", st.Files, st.Bytes, ex.Host())
	return st, nil
}

// sftpTree copies the tree through the executor: directories in walk
// order (parents first), then files by Workers at once, then symlinks.
func sftpTree(ctx context.Context, ex exec.Executor, src, dst string, o Options) (Stats, error) {
	type file struct {
		rel  string
		mode fs.FileMode
		size int64
	}
	var files []file
	var links [][2]string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if fi, err := ex.Lstat(ctx, target); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return nil // a link there (e.g. the root, to a release directory): kept as it is
			}
			if err := ex.MkdirAll(ctx, target, 0o755); err != nil {
				return err
			}
			return ex.Chmod(ctx, target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			to, err := os.Readlink(p)
			if err != nil {
				return err
			}
			links = append(links, [2]string{to, target})
		case d.Type().IsRegular():
			files = append(files, file{rel: rel, mode: info.Mode().Perm(), size: info.Size()})
		default:
			o.Logf(entities.LevelWarning, "skipping %s: not a file, directory or symlink", p)
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("push: %w", err)
	}
	st := Stats{Method: SFTP}
	work := make(chan file)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				err := copyFile(ctx, ex, filepath.Join(src, f.rel), path.Join(dst, filepath.ToSlash(f.rel)), f.mode)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					st.Files++
					st.Bytes += f.size
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range files {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		work <- f
	}
	close(work)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return st, fmt.Errorf("push: %w", firstErr)
	}
	for _, l := range links {
		// A file or a symlink there is replaced; a directory with files
		// is not (Remove fails on it).
		if err := ex.Remove(ctx, l[1]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("push: replacing %s with a symlink: %w", l[1], err)
		}
		if err := ex.Symlink(ctx, l[0], l[1]); err != nil {
			return st, fmt.Errorf("push: %w", err)
		}
	}
	o.Logf(entities.LevelInfo, "SFTP copied %d files (%d bytes) to %s", st.Files, st.Bytes, ex.Host())
	return st, nil
}

func copyFile(ctx context.Context, ex exec.Executor, from, to string, mode fs.FileMode) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := ex.Create(ctx, to, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		_ = w.Close()
		return fmt.Errorf("writing %s on %s: %w", to, ex.Host(), err)
	}
	return w.Close()
}
