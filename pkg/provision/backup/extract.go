package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// ExtractTimeout bounds the unpacking of one archive.
const ExtractTimeout = 6 * time.Hour

// Target says where Extract unpacks an archive's parts.
type Target struct {
	// Files reaches the web server the parts go to.
	Files exec.Executor
	// Parts are the archive's parts (by Name) with the paths they go to
	// now: the site's own paths, or staging paths beside them. None of
	// the paths may exist yet. A member of a part not listed here fails
	// the extraction (a backup of another platform type, say), except
	// database.sql, which is left for the database.
	Parts []Part
	// Skip, if not nil, leaves members out (the settings of a clone).
	Skip func(name string) bool
	// Owner, if not nil, names the owner and group of each unpacked
	// member, by name on the web server (tar applies them when it runs
	// as root; empty: the unpacking user).
	Owner func(name string) (user, group string)
}

// Extract unpacks the archive's parts on the web server and checks every
// member against the manifest on the way (a failed check is a
// *VerifyError). The members go, renamed to their new paths, to one
// tar(1) on the web server through the executor's standard input: one
// command whatever the number of files, on a remote server too. On error,
// what was unpacked stays for the caller to remove.
func Extract(ctx context.Context, archive string, t Target) (*Manifest, error) {
	if err := checkParts(t.Parts); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	tw := tar.NewWriter(pw)
	runErr := make(chan error, 1)
	go func() {
		_, err := t.Files.Run(ctx, exec.Command{Name: "tar", Args: []string{"-x", "-p", "-f", "-", "-C", "/"}, Stdin: pr, Timeout: ExtractTimeout})
		// Writes after tar ended fail with this error.
		pr.CloseWithError(&tarEnded{err})
		runErr <- err
	}()
	x := &extractor{t: t, tw: tw, links: map[string]bool{}}
	m, err := Scan(ctx, archive, x.visit)
	if err == nil {
		err = tw.Close()
	}
	pw.CloseWithError(err)
	rerr := <-runErr
	var te *tarEnded
	switch {
	case rerr != nil && (err == nil || errors.As(err, &te)):
		return m, fmt.Errorf("unpacking on %s: %w", t.Files.Host(), rerr)
	case errors.As(err, &te):
		return m, fmt.Errorf("unpacking on %s: tar ended before the archive did", t.Files.Host())
	}
	return m, err
}

// tarEnded is what writing to tar returns after it ended.
type tarEnded struct{ err error }

func (e *tarEnded) Error() string { return fmt.Sprintf("tar ended: %v", e.err) }

type extractor struct {
	t     Target
	tw    *tar.Writer
	links map[string]bool // symlink members seen
	buf   []byte
}

// visit passes one member on to tar under its new name.
func (x *extractor) visit(h *tar.Header, r io.Reader) error {
	name := strings.TrimSuffix(h.Name, "/")
	if h.Name == DatabaseMember {
		return nil
	}
	if x.t.Skip != nil && x.t.Skip(h.Name) {
		return nil
	}
	// Nothing may be written through a symbolic link of the archive.
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if x.links[dir] {
			return &VerifyError{Problems: []string{fmt.Sprintf("member %s lies under the symbolic link %s; refusing to unpack it", h.Name, dir)}}
		}
	}
	if h.Typeflag == tar.TypeSymlink {
		x.links[name] = true
	}
	p, rest, ok := partOf(x.t.Parts, name)
	if !ok {
		return fmt.Errorf("member %s belongs to no part of this site (%s): the backup was made of another kind of site", h.Name, partNames(x.t.Parts))
	}
	if !p.Dir && h.Typeflag != tar.TypeReg {
		return fmt.Errorf("member %s should be a file", h.Name)
	}
	dest := path.Join(p.Path, rest)
	out := &tar.Header{Name: strings.TrimPrefix(dest, "/"), Typeflag: h.Typeflag, Mode: h.Mode, Size: h.Size, ModTime: h.ModTime, Linkname: h.Linkname}
	if h.Typeflag == tar.TypeDir {
		out.Name += "/"
	}
	if x.t.Owner != nil {
		out.Uname, out.Gname = x.t.Owner(h.Name)
	}
	if err := x.tw.WriteHeader(out); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	if x.buf == nil {
		x.buf = make([]byte, copyBuf)
	}
	_, err := io.CopyBuffer(x.tw, r, x.buf)
	return err
}

func partNames(parts []Part) string {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}
