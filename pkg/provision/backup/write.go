package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// DefaultLevel is the compression level of archives: gzip's default
// level, so that an archive is about as small as gzip -6 makes it. The
// compressor (klauspost/compress, in parallel blocks) is still several
// times faster than gzip at that level, and it stores data that does not
// compress (images, archives) at once instead of trying.
const DefaultLevel = pgzip.DefaultCompression

// Source is what Write puts into an archive.
type Source struct {
	// Files reaches the web server that holds the parts.
	Files exec.Executor
	Parts []Part
	// Dump writes the site's database dump to w (db.Service.Dump); nil:
	// the archive holds no database.sql.
	Dump func(ctx context.Context, w io.Writer) error
	// Manifest carries the site's details (Site, Platform, ...); Write
	// sets Format, Created, Parts and Members.
	Manifest Manifest
	Level    int // compression level (pgzip); 0: DefaultLevel
	Log      Logf
	// Scratch keeps the finished archive under its temporary name (the
	// task's mark in it): it is the caller's to use and remove, never a
	// backup to keep, and the rescue of a task that died before removing
	// it finds it as it finds a half-written one (TaskTemps).
	Scratch bool
}

// Info describes a written archive.
type Info struct {
	Path     string
	Size     int64
	SHA256   string // of the whole file
	Created  time.Time
	Manifest *Manifest
}

// Tuning of reads from the web server: files up to prefetchMax bytes are
// read ahead by prefetchWorkers at once (over SFTP this hides the round
// trips of many small files), at most prefetchWindow files ahead.
const (
	prefetchMax     = 256 << 10
	prefetchWorkers = 4
	prefetchWindow  = 64
	copyBuf         = 256 << 10
)

// headerMemberLen is the length of the archive's first gzip member: a
// gzip header (10 bytes), one stored deflate block holding the 512-byte
// tar header of database.sql (5 + 512), and the gzip trailer (8).
const headerMemberLen = 10 + 5 + 512 + 8

// Write writes the archive dir/name (name like DOMAIN-TIME.tar.gz; when
// it is taken, -2, -3 ... is added before .tar.gz) and returns its details.
// On error nothing is left in dir.
func Write(ctx context.Context, dir, name string, src Source) (info *Info, err error) {
	if name != filepath.Base(name) || !strings.HasSuffix(name, ".tar.gz") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("backup: invalid archive name %q", name)
	}
	if err := checkParts(src.Parts); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if src.Level == 0 {
		src.Level = DefaultLevel
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: create the backups directory: %w", err)
	}
	f, err := os.CreateTemp(dir, TempPrefix(ctx, name)+"*")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return nil, err
	}
	w := &writer{src: src, ctx: ctx, created: time.Now().UTC().Truncate(time.Second)}
	m, err := w.write(f)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	sum, size, err := Sum(f.Name())
	if err != nil {
		return nil, err
	}
	final := f.Name()
	if !src.Scratch {
		if final, err = claimName(f.Name(), dir, name); err != nil {
			return nil, err
		}
	}
	return &Info{Path: final, Size: size, SHA256: sum, Created: w.created, Manifest: m}, nil
}

// claimName gives the finished temporary file its name without replacing
// an archive of the same name: a hard link fails when the name is taken.
func claimName(tmp, dir, name string) (string, error) {
	base := strings.TrimSuffix(name, ".tar.gz")
	for i := 1; i < 100; i++ {
		final := filepath.Join(dir, name)
		if i > 1 {
			final = filepath.Join(dir, fmt.Sprintf("%s-%d.tar.gz", base, i))
		}
		err := os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("backup: name the archive %s: %w", final, err)
		}
		_ = os.Remove(tmp)
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
		return final, nil
	}
	return "", fmt.Errorf("backup: 99 archives named %s* exist in %s already", base, dir)
}

// Sum returns the SHA-256 (hex) and the size of a file.
func Sum(file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

type writer struct {
	src     Source
	ctx     context.Context
	created time.Time
	tw      *tar.Writer
	members []Member
	buf     []byte
}

// write writes the whole archive to f.
func (w *writer) write(f *os.File) (*Manifest, error) {
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(f)
	var dbHeader []byte
	if w.src.Dump != nil {
		// Room for the first gzip member, written at the end.
		if _, err := bw.Write(make([]byte, headerMemberLen)); err != nil {
			return nil, err
		}
		h, err := w.dump(bw)
		if err != nil {
			return nil, err
		}
		dbHeader = h
	}
	gz, err := w.gzip(bw)
	if err != nil {
		return nil, err
	}
	w.tw = tar.NewWriter(gz)
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	w.buf = *buf
	for _, p := range w.src.Parts {
		if err := w.part(p); err != nil {
			gz.Close()
			return nil, err
		}
	}
	m := w.src.Manifest
	m.Format, m.Created, m.Parts, m.Members = Format, w.created, w.src.Parts, w.members
	if m.Parts == nil {
		m.Parts = []Part{}
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		gz.Close()
		return nil, err
	}
	mj = append(mj, '\n')
	if err := w.tw.WriteHeader(&tar.Header{Name: ManifestMember, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj)), ModTime: w.created}); err == nil {
		_, err = w.tw.Write(mj)
	}
	if err == nil {
		err = w.tw.Close()
	}
	if cerr := gz.Close(); err == nil {
		err = cerr
		if err == nil {
			putGzip(gz, w.src.Level)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		bw.Reset(nil)
		bufWriters.Put(bw)
	}
	if err == nil && dbHeader != nil {
		_, err = f.WriteAt(storedMember(dbHeader), 0)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: writing the archive: %w", err)
	}
	return &m, nil
}

func (w *writer) gzip(out io.Writer) (*pgzip.Writer, error) {
	gz, err := getGzip(out, w.src.Level)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	gz.ModTime = w.created
	return gz, nil
}

// The buffers of a backup are reused by the next: a compressor holds a
// few 1 MiB blocks and a deflate state, and a pass of backups that made
// its own each time allocated about 9 MB a backup, which the heap's
// growth between collections multiplied into the process's peak RSS.
// Only a compressor that closed cleanly goes back (its goroutines are
// done); compressors are pooled by level, since a pgzip writer keeps the
// level it was made with.
var (
	gzipPools  sync.Map // level -> *sync.Pool of *pgzip.Writer
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}
	copyBufs   = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}
)

func gzipPool(level int) *sync.Pool {
	if p, ok := gzipPools.Load(level); ok {
		return p.(*sync.Pool)
	}
	p, _ := gzipPools.LoadOrStore(level, &sync.Pool{})
	return p.(*sync.Pool)
}

func getGzip(out io.Writer, level int) (*pgzip.Writer, error) {
	if gz, ok := gzipPool(level).Get().(*pgzip.Writer); ok {
		gz.Reset(out)
		return gz, nil
	}
	return pgzip.NewWriterLevel(out, level)
}

func putGzip(gz *pgzip.Writer, level int) {
	gz.Reset(nil)
	gzipPool(level).Put(gz)
}

// dump streams the database dump into its own gzip member, padded to
// tar's 512-byte blocks, and returns the tar header that goes before it.
func (w *writer) dump(out io.Writer) ([]byte, error) {
	gz, err := w.gzip(out)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	cnt := &counter{}
	start := time.Now()
	if err := w.src.Dump(w.ctx, io.MultiWriter(gz, h, cnt)); err != nil {
		gz.Close()
		return nil, err
	}
	if pad := (512 - cnt.n%512) % 512; pad > 0 {
		if _, err := gz.Write(make([]byte, pad)); err != nil {
			gz.Close()
			return nil, err
		}
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("backup: compressing the dump: %w", err)
	}
	putGzip(gz, w.src.Level)
	w.src.Log.log(entities.LevelInfo, "database dump: %s in %s", SizeString(cnt.n), time.Since(start).Round(time.Millisecond))
	w.members = append(w.members, Member{Name: DatabaseMember, Type: TypeFile, Size: cnt.n, Mode: "0600", SHA256: hex.EncodeToString(h.Sum(nil))})
	// GNU format: sizes of 8 GiB and more still fit one 512-byte block.
	var hb bytes.Buffer
	if err := tar.NewWriter(&hb).WriteHeader(&tar.Header{Name: DatabaseMember, Typeflag: tar.TypeReg, Mode: 0o600, Size: cnt.n,
		ModTime: w.created, Format: tar.FormatGNU}); err != nil {
		return nil, err
	}
	if hb.Len() != 512 {
		return nil, fmt.Errorf("backup: the dump's tar header takes %d bytes, not 512", hb.Len())
	}
	return hb.Bytes(), nil
}

// storedMember is a complete gzip member that holds b uncompressed, in
// one stored deflate block: headerMemberLen bytes for a 512-byte b.
func storedMember(b []byte) []byte {
	out := make([]byte, 0, headerMemberLen)
	out = append(out, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255) // gzip, deflate, no flags, no time, unknown OS
	out = append(out, 1)                                    // BFINAL, stored
	out = binary.LittleEndian.AppendUint16(out, uint16(len(b)))
	out = binary.LittleEndian.AppendUint16(out, ^uint16(len(b)))
	out = append(out, b...)
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(b))
	return binary.LittleEndian.AppendUint32(out, uint32(len(b)))
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// entry is one thing to archive.
type entry struct {
	name string // member name
	path string // on the web server
	fi   fs.FileInfo
}

// part archives one part: its entries listed first (one ReadDir a
// directory), then written in order with small files read ahead.
func (w *writer) part(p Part) error {
	ex := w.src.Files
	fi, err := ex.Lstat(w.ctx, p.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if !p.Optional {
			w.src.Log.log(entities.LevelInfo, "%s: %s does not exist on %s; nothing to archive", p.Name, p.Path, ex.Host())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: %s on %s: %w", p.Path, ex.Host(), err)
	}
	var entries []entry
	if p.Dir {
		if !fi.IsDir() {
			return fmt.Errorf("backup: %s on %s is not a directory", p.Path, ex.Host())
		}
		entries = append(entries, entry{name: p.Name + "/", path: p.Path, fi: fi})
		if entries, err = w.list(p.Path, p.Name, entries); err != nil {
			return err
		}
	} else {
		entries = append(entries, entry{name: p.Name, path: p.Path, fi: fi})
	}
	start := time.Now()
	before := len(w.members)
	if err := w.entries(entries); err != nil {
		return err
	}
	files, size := 0, int64(0)
	for _, m := range w.members[before:] {
		if m.Type == TypeFile {
			files++
			size += m.Size
		}
	}
	w.src.Log.log(entities.LevelInfo, "%s: %s, %s from %s in %s", p.Name, Count(files, "file"), SizeString(size), p.Path, time.Since(start).Round(time.Millisecond))
	return nil
}

// list appends the entries under dir, depth first in name order.
func (w *writer) list(dir, name string, out []entry) ([]entry, error) {
	infos, err := w.src.Files.ReadDir(w.ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("backup: list %s on %s: %w", dir, w.src.Files.Host(), err)
	}
	for _, fi := range infos {
		e := entry{name: name + "/" + fi.Name(), path: dir + "/" + fi.Name(), fi: fi}
		if checkName(e.name) != nil {
			w.src.Log.log(entities.LevelWarning, "skipped %s: its name cannot be archived", e.path)
			continue
		}
		switch {
		case fi.IsDir():
			e.name += "/"
			out = append(out, e)
			if out, err = w.list(e.path, name+"/"+fi.Name(), out); err != nil {
				return nil, err
			}
		case fi.Mode().IsRegular(), fi.Mode()&fs.ModeSymlink != 0:
			out = append(out, e)
		default:
			w.src.Log.log(entities.LevelWarning, "skipped %s: not a file, directory or symbolic link (%s)", e.path, fi.Mode().Type())
		}
	}
	return out, nil
}

// fetched is an entry whose content may have been read ahead.
type fetched struct {
	entry
	data []byte
	err  error
	done chan struct{}
}

func (f *fetched) small() bool { return f.fi.Mode().IsRegular() && f.fi.Size() <= prefetchMax }

// entries writes the entries in order, reading small files ahead.
func (w *writer) entries(list []entry) error {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	queue := make(chan *fetched, prefetchWindow)
	jobs := make(chan *fetched)
	var wg sync.WaitGroup
	defer wg.Wait()
	for range prefetchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				f.data, f.err = readAll(ctx, w.src.Files, f.path, f.fi)
				close(f.done)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		defer close(jobs)
		for _, e := range list {
			f := &fetched{entry: e, done: make(chan struct{})}
			if !f.small() {
				close(f.done)
			}
			select {
			case queue <- f:
			case <-ctx.Done():
				return
			}
			if f.small() {
				select {
				case jobs <- f:
				case <-ctx.Done():
					f.err = ctx.Err()
					close(f.done)
					return
				}
			}
		}
	}()
	for f := range queue {
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := w.entry(f); err != nil {
			return err
		}
	}
	return w.ctx.Err()
}

func readAll(ctx context.Context, ex exec.Executor, p string, fi fs.FileInfo) ([]byte, error) {
	r, err := openListed(ctx, ex, p, fi)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, prefetchMax+1))
}

// errSwapped is the refusal to archive a file that is no longer the one
// listed.
var errSwapped = errors.New("it is no longer the file that was listed (replaced, perhaps by a symbolic link, while the backup ran)")

// openListed opens the file listed as fi, and makes sure it is that file:
// the site's code may swap a file for a symbolic link to one only aegir's
// user may read between the listing and the opening. Where the opened
// file's identity is known (this machine), it must be the listed one.
func openListed(ctx context.Context, ex exec.Executor, p string, fi fs.FileInfo) (io.ReadCloser, error) {
	if !ex.IsLocal() {
		return ex.Open(ctx, p)
	}
	// Without following a link, and without waiting on a named pipe
	// swapped in (which would hold the backup up).
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errSwapped
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || !os.SameFile(st, fi) {
		f.Close()
		return nil, errSwapped
	}
	return f, nil
}

// entry writes one member.
func (w *writer) entry(f *fetched) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	fi := f.fi
	h := &tar.Header{Name: f.name, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(time.Second)}
	m := Member{Name: f.name, Mode: modeString(fi.Mode())}
	switch {
	case fi.IsDir():
		h.Typeflag, m.Type = tar.TypeDir, TypeDir
		return w.header(h, m)
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := readlink(w.ctx, w.src.Files, f.path)
		if err != nil {
			return fmt.Errorf("backup: read the link %s on %s: %w", f.path, w.src.Files.Host(), err)
		}
		h.Typeflag, h.Linkname, m.Type, m.Link = tar.TypeSymlink, link, TypeSymlink, link
		return w.header(h, m)
	}
	h.Typeflag, m.Type = tar.TypeReg, TypeFile
	if f.small() {
		if errors.Is(f.err, fs.ErrNotExist) {
			w.src.Log.log(entities.LevelWarning, "%s was removed while the backup ran; not archived", f.path)
			return nil
		}
		if errors.Is(f.err, errSwapped) {
			w.src.Log.log(entities.LevelWarning, "%s: %v; not archived", f.path, f.err)
			return nil
		}
		if f.err != nil {
			return fmt.Errorf("backup: read %s on %s: %w", f.path, w.src.Files.Host(), f.err)
		}
		if int64(len(f.data)) != fi.Size() {
			w.src.Log.log(entities.LevelWarning, "%s changed size while the backup ran; archived as read", f.path)
		}
		h.Size = int64(len(f.data))
		return w.content(h, m, bytes.NewReader(f.data))
	}
	r, err := openListed(w.ctx, w.src.Files, f.path, fi)
	if errors.Is(err, fs.ErrNotExist) {
		w.src.Log.log(entities.LevelWarning, "%s was removed while the backup ran; not archived", f.path)
		return nil
	}
	if errors.Is(err, errSwapped) {
		w.src.Log.log(entities.LevelWarning, "%s: %v; not archived", f.path, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: open %s on %s: %w", f.path, w.src.Files.Host(), err)
	}
	defer r.Close()
	h.Size = fi.Size()
	// Exactly Size bytes: a file that shrank meanwhile is padded with
	// zeros, one that grew is cut; both are logged.
	lr := &io.LimitedReader{R: r, N: h.Size}
	pr := io.MultiReader(lr, zeros{})
	if err := w.content(h, m, io.LimitReader(pr, h.Size)); err != nil {
		return fmt.Errorf("backup: %s on %s: %w", f.path, w.src.Files.Host(), err)
	}
	var one [1]byte
	if lr.N > 0 {
		w.src.Log.log(entities.LevelWarning, "%s shrank while the backup ran; archived padded with zeros", f.path)
	} else if n, _ := r.Read(one[:]); n > 0 {
		w.src.Log.log(entities.LevelWarning, "%s grew while the backup ran; archived as it was when listed", f.path)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func (w *writer) header(h *tar.Header, m Member) error {
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("backup: %s: %w", h.Name, err)
	}
	w.members = append(w.members, m)
	return nil
}

// content writes a regular file member, hashing what it writes.
func (w *writer) content(h *tar.Header, m Member, r io.Reader) error {
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("backup: %s: %w", h.Name, err)
	}
	sum := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w.tw, sum), r, w.buf)
	if err != nil {
		return err
	}
	m.Size, m.SHA256 = n, hexSum(sum)
	w.members = append(w.members, m)
	return nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// readlink reads a symbolic link on the web server.
func readlink(ctx context.Context, ex exec.Executor, p string) (string, error) {
	if ex.IsLocal() {
		return os.Readlink(p)
	}
	res, err := ex.Run(ctx, exec.Command{Name: "readlink", Args: []string{"-n", "--", p}, Timeout: time.Minute})
	if err != nil {
		return "", err
	}
	return string(res.Stdout), nil
}

// SizeString renders a size for logs: 512 B, 1.5 KiB, 20.3 MiB.
func SizeString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Count renders a number of things for logs: 1 file, 2 files.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// TempPrefix is the start of the temporary name of archive name while it
// is written: it names the task of ctx, if any, so that the rescue of a
// task that died finds what it was writing (TaskTemps).
func TempPrefix(ctx context.Context, name string) string {
	if id := exec.TaskID(ctx); id != 0 {
		return "." + name + ".tmp-task-" + strconv.FormatInt(id, 10) + "-"
	}
	return "." + name + ".tmp-"
}

// TaskTemps lists the archives that task id was writing in dir when it
// died.
func TaskTemps(dir string, id int64) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	mark := ".tmp-task-" + strconv.FormatInt(id, 10) + "-"
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tar.gz"+mark) && e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out, nil
}
