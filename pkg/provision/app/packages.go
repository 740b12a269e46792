package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Discover lists the packages of a platform: core itself; for Drupal the
// modules, themes and install profiles under DOCROOT/core, modules,
// themes, profiles and sites (from .info.yml files for 8+, .info files for
// 7; test extensions, vendor/, node_modules/, hidden directories and the
// sites' files and private directories are skipped); for WordPress the
// plugins of wp-content/plugins (a directory's main file or a single file,
// by its plugin header) and the themes of wp-content/themes (by their
// style.css header). Symbolic links are followed.
//
// On this machine it reads the files directly. On a remote server it runs
// one find(1) that prints the files it finds, so a platform of thousands
// of packages costs one round trip; both ways feed the same parser.
// Files that could not be read are logged as a warning.
func Discover(ctx context.Context, ex exec.Executor, p Platform, log Logf) ([]Package, error) {
	d, err := p.findDriver()
	if err != nil {
		return nil, err
	}
	return d.Discover(ctx, ex, p, log)
}

// ScanFiles finds a platform's package files: on this machine with local
// (a walk), on a remote server with one sh -c of args (its script and
// arguments, see scanRemote). They come sorted by path.
func ScanFiles(ctx context.Context, ex exec.Executor, p Platform, local func() ([]SrcFile, error), remote []string, log Logf) ([]SrcFile, error) {
	var files []SrcFile
	var err error
	if ex.IsLocal() {
		files, err = local()
	} else {
		files, err = scanRemote(ctx, ex, p, remote, log)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Rel < files[j].Rel })
	return files, nil
}

// Walk says what WalkLocal reads of a tree.
type Walk struct {
	MaxDepth int // 0: no limit; else the deepest level of files below a top directory
	// Prune says whether a file or directory is skipped.
	Prune func(rel, name string) bool
	// Want says whether a file is wanted and how much of it to read: -1
	// all of it, 0 only its name, n the first n bytes.
	Want func(rel, name string, depth int) (bool, int)
}

// WalkLocal walks the directories tops (relative to root; a missing one
// is skipped) on this machine, following symbolic links (each directory
// once), and returns the files w wants, paths relative to root.
func WalkLocal(root string, tops []string, w Walk) ([]SrcFile, error) {
	wk := &walker{root: root, maxDepth: w.MaxDepth, prune: w.Prune, want: w.Want, visited: map[[2]uint64]bool{}}
	for _, d := range tops {
		if err := wk.walkTop(d); err != nil {
			return nil, err
		}
	}
	return wk.out, nil
}

// walker walks directories on this machine, following symbolic links
// (each directory once).
type walker struct {
	root     string
	maxDepth int
	prune    func(rel, name string) bool
	want     func(rel, name string, depth int) (bool, int)
	visited  map[[2]uint64]bool
	out      []SrcFile
}

func (w *walker) walkTop(rel string) error {
	err := w.walk(rel, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (w *walker) walk(rel string, depth int) error {
	dir := filepath.Join(w.root, rel)
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id := [2]uint64{uint64(st.Dev), st.Ino}
		if w.visited[id] {
			return nil // a symbolic link loop, or a second way in
		}
		w.visited[id] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if depth == 0 {
			return err
		}
		return nil // unreadable below the top: skip, as find does
	}
	for _, e := range entries {
		name := e.Name()
		erel := rel + "/" + name
		if w.prune(erel, name) {
			continue
		}
		typ := e.Type()
		if typ&fs.ModeSymlink != 0 {
			fi, err := os.Stat(filepath.Join(w.root, erel))
			if err != nil {
				continue // dangling
			}
			typ = fi.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if w.maxDepth == 0 || depth+1 < w.maxDepth {
				if err := w.walk(erel, depth+1); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		case typ.IsRegular():
			ok, n := w.want(erel, name, depth+1)
			if !ok {
				continue
			}
			f := SrcFile{Rel: erel}
			if n != 0 {
				if f.Data, err = readHead(filepath.Join(w.root, erel), n); err != nil {
					continue
				}
			}
			w.out = append(w.out, f)
		}
	}
	return nil
}

// readHead reads the first n bytes of a file (all of it when n < 0).
func readHead(name string, n int) ([]byte, error) {
	if n < 0 {
		return os.ReadFile(name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:k], nil
}

// scanRemote finds a platform's package files with one command:
// sh -c SCRIPT aegir-discover ROOT MARK ARGS..., for remote = SCRIPT,
// ARGS...
func scanRemote(ctx context.Context, ex exec.Executor, p Platform, remote []string, log Logf) ([]SrcFile, error) {
	mark := NewMarker()
	args := append([]string{"-c", remote[0], "aegir-discover", p.Root, mark}, remote[1:]...)
	res, err := ex.Run(ctx, exec.Command{Name: "sh", Args: args, Timeout: 5 * time.Minute})
	if err != nil {
		var xe *exec.ExitError
		if errors.As(err, &xe) && xe.ExitCode == 3 {
			return nil, PlatformError("verify the platform", "cannot enter platform root %s on %s", p.Root, ex.Host()).With(entities.Do("platform.verify", "NAME"))
		}
		return nil, fmt.Errorf("list the packages of %s on %s: %w", p.Root, ex.Host(), err)
	}
	if msg := strings.TrimSpace(string(res.Stderr)); msg != "" {
		log.Printf(provision.LevelWarning, "some files of %s on %s could not be read: %s", p.Root, ex.Host(), firstLines(msg, 5))
	}
	return ParseRecords(res.Stdout, mark), nil
}

// NewMarker returns a fresh random marker for the records a script prints
// (one that no file's content holds).
func NewMarker() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("app: crypto/rand failed: " + err.Error())
	}
	return "@@aegir-" + hex.EncodeToString(b[:])
}

// ParseRecords splits the output of a script that prints files as
// records: a line "MARK F PATH" followed by the file's content, or a line
// "MARK N PATH" for a file of which only the name counts (mark is
// NewMarker's).
func ParseRecords(out []byte, mark string) []SrcFile {
	var files []SrcFile
	prefix := []byte(mark + " ")
	var cur *SrcFile
	var body bytes.Buffer
	flush := func() {
		if cur != nil {
			if cur.Data != nil {
				cur.Data = append([]byte{}, body.Bytes()...)
			}
			files = append(files, *cur)
		}
		cur = nil
		body.Reset()
	}
	for len(out) > 0 {
		var line []byte
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i+1], out[i+1:]
		} else {
			line, out = out, nil
		}
		if bytes.HasPrefix(line, prefix) && len(line) > len(prefix)+2 {
			flush()
			kind, rel := line[len(prefix)], strings.TrimRight(string(line[len(prefix)+2:]), "\n")
			f := SrcFile{Rel: rel}
			if kind == 'F' {
				f.Data = []byte{}
			}
			cur = &f
			continue
		}
		if cur != nil && cur.Data != nil {
			body.Write(line)
		}
	}
	flush()
	return files
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "; ")
}
