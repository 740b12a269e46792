package backup

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/pgzip"
)

// maxManifest bounds the manifest read into memory (a site of a million
// files has a manifest of about 200 MB).
const maxManifest = 512 << 20

// VerifyError says what is wrong with an archive.
type VerifyError struct {
	Path     string
	Problems []string // each names a member and what is wrong with it
}

func (e *VerifyError) Error() string {
	const show = 5
	p := e.Problems
	more := ""
	if len(p) > show {
		more = fmt.Sprintf(" (and %d more problems)", len(p)-show)
		p = p[:show]
	}
	return fmt.Sprintf("backup %s fails verification: %s%s", e.Path, strings.Join(p, "; "), more)
}

// Visit is called by Scan for every member but the manifest. For a regular
// file r reads its content; for a directory or a symlink r is nil. What
// the function leaves unread is read (and checked) by Scan.
type Visit func(h *tar.Header, r io.Reader) error

// Verify reads the whole archive and checks every member against its
// manifest. It returns the manifest, and a *VerifyError when anything does
// not match.
func Verify(ctx context.Context, path string) (*Manifest, error) { return Scan(ctx, path, nil) }

// Scan reads the archive member by member, calls visit (if not nil) for
// each, and checks every member against the manifest as Verify does.
func Scan(ctx context.Context, path string, visit Visit) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the backup: %w", err)
	}
	defer f.Close()
	s := &scan{path: path, seen: map[string]Member{}}
	zr, err := pgzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, s.fail("the file is not a gzip archive (%v)", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	buf := make([]byte, copyBuf)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, s.fail("the archive is damaged or cut short after %s (%v)", Count(len(s.order), "member"), err)
		}
		if err := s.member(h, tr, visit, buf); err != nil {
			var ve *VerifyError
			var fe *visitError
			switch {
			case errors.As(err, &ve):
				return nil, ve
			case errors.As(err, &fe):
				return nil, fe.err
			}
			return nil, s.fail("the archive is damaged or cut short in member %s (%v)", h.Name, err)
		}
	}
	return s.check()
}

// visitError is an error of the visit function, passed on as it is.
type visitError struct{ err error }

func (e *visitError) Error() string { return e.err.Error() }

// archiveReader remembers a read error of the archive itself.
type archiveReader struct {
	r   io.Reader
	err error
}

func (a *archiveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		a.err = err
	}
	return n, err
}

type scan struct {
	path     string
	seen     map[string]Member
	order    []string
	manifest *Manifest
	problems []string
}

func (s *scan) fail(format string, args ...any) error {
	return &VerifyError{Path: s.path, Problems: append(s.problems, fmt.Sprintf(format, args...))}
}

func (s *scan) problem(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func (s *scan) member(h *tar.Header, tr io.Reader, visit Visit, buf []byte) error {
	if s.manifest != nil {
		s.problem("member %s comes after the manifest", h.Name)
	}
	if err := checkName(h.Name); err != nil {
		return &VerifyError{Path: s.path, Problems: append(s.problems, err.Error())}
	}
	if h.Name == ManifestMember {
		b, err := io.ReadAll(io.LimitReader(tr, maxManifest+1))
		if err != nil {
			return err
		}
		var m Manifest
		if len(b) > maxManifest || json.Unmarshal(b, &m) != nil || m.Format != Format {
			return s.fail("manifest.json is not an aegir manifest of format %s", Format)
		}
		s.manifest = &m
		return nil
	}
	m := Member{Name: h.Name, Mode: modeString(h.FileInfo().Mode())}
	switch h.Typeflag {
	case tar.TypeReg:
		m.Type, m.Size = TypeFile, h.Size
		sum := sha256.New()
		src := &archiveReader{r: tr}
		r := io.TeeReader(src, sum)
		if visit != nil {
			if err := visit(h, r); err != nil {
				if src.err != nil {
					return src.err // the archive's fault, not the visitor's
				}
				return &visitError{err}
			}
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			return err
		}
		m.SHA256 = hexSum(sum)
	case tar.TypeDir:
		m.Type = TypeDir
	case tar.TypeSymlink:
		m.Type, m.Link = TypeSymlink, h.Linkname
	default:
		s.problem("member %s has type %q; aegir archives hold files, directories and symbolic links only", h.Name, string(h.Typeflag))
		return nil
	}
	if m.Type != TypeFile && visit != nil {
		if err := visit(h, nil); err != nil {
			return &visitError{err}
		}
	}
	if _, dup := s.seen[h.Name]; dup {
		s.problem("member %s appears twice", h.Name)
	}
	s.seen[h.Name] = m
	s.order = append(s.order, h.Name)
	return nil
}

// check compares what was read with the manifest.
func (s *scan) check() (*Manifest, error) {
	m := s.manifest
	if m == nil {
		return nil, s.fail("no manifest.json: the archive is cut short or not an aegir backup")
	}
	want := map[string]bool{}
	for _, x := range m.Members {
		want[x.Name] = true
		got, ok := s.seen[x.Name]
		switch {
		case !ok:
			s.problem("member %s is missing", x.Name)
		case got.Type != x.Type:
			s.problem("member %s is a %s, the manifest says %s", x.Name, got.Type, x.Type)
		case got.Size != x.Size:
			s.problem("member %s has %d bytes, the manifest says %d", x.Name, got.Size, x.Size)
		case got.SHA256 != x.SHA256:
			s.problem("member %s has SHA-256 %s, the manifest says %s", x.Name, short(got.SHA256), short(x.SHA256))
		case got.Link != x.Link:
			s.problem("symbolic link %s points to %q, the manifest says %q", x.Name, got.Link, x.Link)
		case got.Mode != x.Mode:
			s.problem("member %s has mode %s, the manifest says %s", x.Name, got.Mode, x.Mode)
		}
	}
	for _, name := range s.order {
		if !want[name] {
			s.problem("member %s is not in the manifest", name)
		}
	}
	if len(s.problems) > 0 {
		return m, &VerifyError{Path: s.path, Problems: s.problems}
	}
	return m, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// ReadMember finds the member name and calls fn with a reader of its
// content, then stops reading the archive. It returns the member as read
// (its size and SHA-256, of what fn read plus the rest) for the caller to
// compare with the manifest. The database dump is the first member, so
// reading it costs no more than the dump itself.
func ReadMember(ctx context.Context, path, name string, fn func(r io.Reader) error) (Member, error) {
	f, err := os.Open(path)
	if err != nil {
		return Member{}, fmt.Errorf("open the backup: %w", err)
	}
	defer f.Close()
	zr, err := pgzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return Member{}, &VerifyError{Path: path, Problems: []string{fmt.Sprintf("the file is not a gzip archive (%v)", err)}}
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return Member{}, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return Member{}, &VerifyError{Path: path, Problems: []string{"member " + name + " is missing"}}
		}
		if err != nil {
			return Member{}, &VerifyError{Path: path, Problems: []string{fmt.Sprintf("the archive is damaged or cut short (%v)", err)}}
		}
		if h.Name != name || h.Typeflag != tar.TypeReg {
			continue
		}
		sum := sha256.New()
		r := io.TeeReader(tr, sum)
		if err := fn(r); err != nil {
			return Member{}, err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return Member{}, &VerifyError{Path: path, Problems: []string{fmt.Sprintf("member %s is damaged or cut short (%v)", name, err)}}
		}
		return Member{Name: name, Type: TypeFile, Size: h.Size, Mode: modeString(h.FileInfo().Mode()), SHA256: hexSum(sum)}, nil
	}
}

// CheckSum compares the archive file's SHA-256 with the one recorded when
// it was written (Info.SHA256).
func CheckSum(path, want string) error {
	got, _, err := Sum(path)
	if err != nil {
		return fmt.Errorf("read the backup: %w", err)
	}
	if !strings.EqualFold(got, want) {
		return &VerifyError{Path: path, Problems: []string{fmt.Sprintf("the file's SHA-256 is %s, but %s was recorded when it was written", short(got), short(want))}}
	}
	return nil
}
