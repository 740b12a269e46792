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
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

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
	d, err := p.driver()
	if err != nil {
		return nil, err
	}
	return d.Discover(ctx, ex, p, log)
}

// scanFiles finds a platform's package files: on this machine with local
// (a walk), on a remote server with one sh -c of args (its script and
// arguments, see scanRemote). They come sorted by path.
func scanFiles(ctx context.Context, ex exec.Executor, p Platform, local func() ([]srcFile, error), remote []string, log Logf) ([]srcFile, error) {
	var files []srcFile
	var err error
	if ex.IsLocal() {
		files, err = local()
	} else {
		files, err = scanRemote(ctx, ex, p, remote, log)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, nil
}

// Directories under a Drupal docroot that hold extensions.
var drupalDirs = []string{"core", "modules", "themes", "profiles", "sites"}

// drupalSkip are directory (and file) names never searched for extensions.
var drupalSkip = map[string]bool{"node_modules": true, "bower_components": true, "vendor": true, "tests": true, "CVS": true}

// drupalPrune reports whether the walk skips rel (relative to the root):
// hidden names, drupalSkip, and sites/*/files and sites/*/private, the
// same rules as the find(1) expression of drupalScript.
func drupalPrune(sitesRel, rel, name string) bool {
	if len(name) > 1 && name[0] == '.' || drupalSkip[name] {
		return true
	}
	return (name == "files" || name == "private") && strings.HasPrefix(rel, sitesRel+"/") && strings.Count(rel[len(sitesRel)+1:], "/") >= 1
}

// scanLocalWordPress walks a WordPress platform on this machine.
func scanLocalWordPress(p Platform) ([]srcFile, error) {
	w := &walker{root: p.Root, visited: map[[2]uint64]bool{}}
	w.maxDepth = 2
	w.prune = func(rel, name string) bool { return name[0] == '.' }
	w.want = func(rel, name string, depth int) (bool, int) {
		if strings.HasPrefix(rel, "wp-content/plugins/") {
			return strings.HasSuffix(name, ".php"), wpHeaderMax
		}
		return depth == 2 && name == "style.css", wpHeaderMax
	}
	for _, d := range []string{"wp-content/plugins", "wp-content/themes"} {
		if err := w.walkTop(d); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

// scanLocalDrupal walks a Drupal platform on this machine.
func scanLocalDrupal(p Platform) ([]srcFile, error) {
	w := &walker{root: p.Root, visited: map[[2]uint64]bool{}}
	docroot := p.DocrootRel()
	sitesRel := path.Join(docroot, "sites")
	w.prune = func(rel, name string) bool { return drupalPrune(sitesRel, rel, name) }
	w.want = func(rel, name string, depth int) (bool, int) {
		if strings.HasSuffix(name, ".info.yml") || strings.HasSuffix(name, ".info") {
			return true, -1
		}
		if p.Major == 7 && (strings.HasSuffix(name, ".module") || strings.HasSuffix(name, ".profile")) {
			return true, 0
		}
		return false, 0
	}
	for _, d := range drupalDirs {
		if err := w.walkTop(path.Join(docroot, d)); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

// walker walks directories on this machine, following symbolic links
// (each directory once).
type walker struct {
	root     string
	maxDepth int // 0: no limit; else the deepest level of files below a top directory
	prune    func(rel, name string) bool
	// want says whether a file is wanted and how much of it to read: -1
	// all of it, 0 only its name, n the first n bytes.
	want    func(rel, name string, depth int) (bool, int)
	visited map[[2]uint64]bool
	out     []srcFile
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
			f := srcFile{rel: erel}
			if n != 0 {
				if f.data, err = readHead(filepath.Join(w.root, erel), n); err != nil {
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

// drupalScript prints the extension files of a Drupal platform: $1 the
// root, $2 the record marker, $3 the sites directory (relative), then the
// directories to search. Each .info.yml or .info file is printed as a line
// "MARK F PATH" followed by its content; each .module and .profile file
// as a line "MARK N PATH". The pruned names match drupalPrune.
const drupalScript = `cd -- "$1" || exit 3
m=$2 s=$3
shift 3
for d in "$@"; do
  [ -d "$d" ] || continue
  find -L "$d" \( -name '.?*' -o -name node_modules -o -name bower_components -o -name vendor -o -name tests -o -name CVS \
      -o -path "$s/*/files" -o -path "$s/*/private" \) -prune \
    -o -type f \( -name '*.info.yml' -o -name '*.info' \) -exec awk -v m="$m" 'FNR==1{print m " F " FILENAME} {print}' {} + \
    -o -type f \( -name '*.module' -o -name '*.profile' \) -exec printf "$m N %s\n" {} +
done
exit 0
`

// wordPressScript prints the plugin files with a plugin header and the
// themes' style.css of a WordPress platform, at most about 8 KiB of each:
// $1 the root, $2 the record marker.
const wordPressScript = `cd -- "$1" || exit 3
m=$2
head='FNR==1{n=0; print m " F " FILENAME} n<8192{print; n+=length($0)+1}'
if [ -d wp-content/plugins ]; then
  find -L wp-content/plugins -mindepth 1 -maxdepth 2 -name '.?*' -prune -o -type f -name '*.php' -print0 |
    xargs -0 -r grep -ilZ -- 'plugin name:' | xargs -0 -r awk -v m="$m" "$head"
fi
if [ -d wp-content/themes ]; then
  find -L wp-content/themes -maxdepth 2 -name '.?*' -prune -o -type f -path 'wp-content/themes/*/style.css' -print0 |
    xargs -0 -r awk -v m="$m" "$head"
fi
exit 0
`

// drupalRemote is the command line of drupalScript for a Drupal
// platform, without the record marker (scanRemote adds it).
func drupalRemote(p Platform) []string {
	docroot := p.DocrootRel()
	args := []string{drupalScript, path.Join(docroot, "sites")}
	for _, d := range drupalDirs {
		args = append(args, path.Join(docroot, d))
	}
	return args
}

// scanRemote finds a platform's package files with one command:
// sh -c SCRIPT aegir-discover ROOT MARK ARGS..., for remote = SCRIPT,
// ARGS...
func scanRemote(ctx context.Context, ex exec.Executor, p Platform, remote []string, log Logf) ([]srcFile, error) {
	mark := newMarker()
	args := append([]string{"-c", remote[0], "aegir-discover", p.Root, mark}, remote[1:]...)
	res, err := ex.Run(ctx, exec.Command{Name: "sh", Args: args, Timeout: 5 * time.Minute})
	if err != nil {
		var xe *exec.ExitError
		if errors.As(err, &xe) && xe.ExitCode == 3 {
			return nil, platformError("verify the platform (aegir platform verify)", "cannot enter platform root %s on %s", p.Root, ex.Host())
		}
		return nil, fmt.Errorf("list the packages of %s on %s: %w", p.Root, ex.Host(), err)
	}
	if msg := strings.TrimSpace(string(res.Stderr)); msg != "" {
		log.log(provision.LevelWarning, "some files of %s on %s could not be read: %s", p.Root, ex.Host(), firstLines(msg, 5))
	}
	return parseRecords(res.Stdout, mark), nil
}

// newMarker returns a fresh random marker for the records a script prints
// (one that no file's content holds).
func newMarker() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("app: crypto/rand failed: " + err.Error())
	}
	return "@@aegir-" + hex.EncodeToString(b[:])
}

// parseRecords splits the output of drupalScript or wordPressScript.
func parseRecords(out []byte, mark string) []srcFile {
	var files []srcFile
	prefix := []byte(mark + " ")
	var cur *srcFile
	var body bytes.Buffer
	flush := func() {
		if cur != nil {
			if cur.data != nil {
				cur.data = append([]byte{}, body.Bytes()...)
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
			f := srcFile{rel: rel}
			if kind == 'F' {
				f.data = []byte{}
			}
			cur = &f
			continue
		}
		if cur != nil && cur.data != nil {
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
