package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	pexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// tree makes a small site: a files directory with nested files (small and
// large, so that both read paths run), an empty directory, a symlink, and
// a settings file.
func tree(t *testing.T) (dir string, parts []Part) { return treeIn(t, t.TempDir()) }

func treeIn(t *testing.T, dir string) (string, []Part) {
	t.Helper()
	files := filepath.Join(dir, "files")
	write := func(rel string, b []byte, mode os.FileMode) {
		p := filepath.Join(files, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	write("2024/01/photo.jpg", big, 0o644)
	write("2024/01/notes.txt", bytes.Repeat([]byte("hello backup\n"), 1000), 0o600)
	write("a file with spaces & ünïcode.txt", []byte("x"), 0o644)
	for i := range 200 {
		write(filepath.Join("many", strings.Repeat("d", i%7+1), "f"+string(rune('a'+i%26))+strings.Repeat("x", i)+".txt"), []byte(strings.Repeat("z", i)), 0o644)
	}
	if err := os.MkdirAll(filepath.Join(files, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("2024/01/notes.txt", filepath.Join(files, "latest")); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(dir, "settings.php")
	if err := os.WriteFile(settings, []byte("<?php // secret\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	return dir, []Part{{Name: "uploads", Path: files, Dir: true}, {Name: "settings.php", Path: settings}}
}

const dump = "-- dump\nCREATE TABLE t (x INT);\nINSERT INTO t VALUES (1);\n"

func writeArchive(t *testing.T, parts []Part) *Info {
	t.Helper()
	out := t.TempDir()
	info, err := Write(context.Background(), out, "site.test-1.tar.gz", Source{
		Files: pexec.NewLocal(), Parts: parts,
		Dump: func(_ context.Context, w io.Writer) error {
			_, err := io.WriteString(w, dump)
			return err
		},
		Manifest: Manifest{Site: "site.test", Platform: "wp", PlatformType: "wordpress", CoreVersion: "6.1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A written archive is whole, private, checks out, and plain tar reads it:
// the dump comes first and the files and settings are byte for byte the
// site's.
func TestWriteVerifyAndPlainTar(t *testing.T) {
	src, parts := tree(t)
	info := writeArchive(t, parts)
	st, err := os.Stat(info.Path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != info.Size {
		t.Fatalf("archive %s: %v mode %v size %d, info %+v", info.Path, err, st.Mode(), st.Size(), info)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(info.Path), ".*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	m, err := Verify(context.Background(), info.Path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Site != "site.test" || m.CoreVersion != "6.1.1" || len(m.Members) < 200 {
		t.Fatalf("manifest: %+v", m)
	}
	if err := CheckSum(info.Path, info.SHA256); err != nil {
		t.Fatal(err)
	}

	list, err := exec.Command("tar", "tzf", info.Path).CombinedOutput()
	if err != nil {
		t.Fatalf("tar tzf: %v\n%s", err, list)
	}
	names := strings.Split(strings.TrimSpace(string(list)), "\n")
	if names[0] != DatabaseMember || names[len(names)-1] != ManifestMember {
		t.Fatalf("member order: first %q, last %q", names[0], names[len(names)-1])
	}
	x := t.TempDir()
	if out, err := exec.Command("tar", "xzf", info.Path, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar xzf: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(x, DatabaseMember)); string(b) != dump {
		t.Fatalf("database.sql from tar: %q", b)
	}
	sameTree(t, filepath.Join(src, "files"), filepath.Join(x, "uploads"))
	if b, _ := os.ReadFile(filepath.Join(x, "settings.php")); string(b) != "<?php // secret\n" {
		t.Fatalf("settings.php from tar: %q", b)
	}
}

// sameTree compares two directory trees: names, types, modes, contents,
// link targets.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	err := filepath.Walk(a, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		q := filepath.Join(b, rel)
		gi, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: missing in the copy: %v", rel, err)
			return nil
		}
		if fi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, copy %v", rel, fi.Mode(), gi.Mode())
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l1, _ := os.Readlink(p)
			l2, _ := os.Readlink(q)
			if l1 != l2 {
				t.Errorf("%s: link %q, copy %q", rel, l1, l2)
			}
		case fi.Mode().IsRegular():
			b1, _ := os.ReadFile(p)
			b2, _ := os.ReadFile(q)
			if !bytes.Equal(b1, b2) {
				t.Errorf("%s: content differs", rel)
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("compared only %d entries", n)
	}
}

// A byte changed inside the compressed stream, a truncated file, or a
// member changed after the manifest was written: each fails with a
// *VerifyError that says what is wrong.
func TestVerifyCatchesCorruption(t *testing.T) {
	_, parts := tree(t)
	info := writeArchive(t, parts)
	orig, err := os.ReadFile(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"flipped byte": func() []byte {
			b := bytes.Clone(orig)
			b[len(b)/2] ^= 0x40
			return b
		}(),
		"truncated": orig[:len(orig)*2/3],
		"header member damaged": func() []byte {
			b := bytes.Clone(orig)
			b[200] ^= 1 // inside database.sql's stored tar header
			return b
		}(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.tar.gz")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Verify(context.Background(), p)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify of a damaged archive: %v, want a *VerifyError", err)
			}
			if err := CheckSum(p, info.SHA256); err == nil {
				t.Fatal("CheckSum passed a changed file")
			}
		})
	}
}

// A member rewritten with a valid stream but other content (as someone
// editing the archive would) fails on its checksum, by name.
func TestVerifyNamesChangedMember(t *testing.T) {
	_, parts := tree(t)
	info := writeArchive(t, parts)
	x := t.TempDir()
	if out, err := exec.Command("tar", "xzf", info.Path, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(x, "uploads/2024/01/notes.txt"), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	repacked := filepath.Join(t.TempDir(), "re.tar.gz")
	if out, err := exec.Command("tar", "czf", repacked, "-C", x, DatabaseMember, "uploads", "settings.php", ManifestMember).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, err := Verify(context.Background(), repacked)
	if err == nil || !strings.Contains(err.Error(), "uploads/2024/01/notes.txt") {
		t.Fatalf("Verify of a changed member: %v", err)
	}
}

// Extract puts the parts at new paths through tar on the server, checks
// every member on the way, skips what it is told to, and gives the
// members the owners it is told to.
func TestExtract(t *testing.T) {
	src, parts := tree(t)
	info := writeArchive(t, parts)
	dest := t.TempDir()
	target := []Part{{Name: "uploads", Path: filepath.Join(dest, "up"), Dir: true}, {Name: "settings.php", Path: filepath.Join(dest, "s.php")}}
	m, err := Extract(context.Background(), info.Path, Target{Files: pexec.NewLocal(), Parts: target,
		Owner: func(name string) (string, string) { return "nobody", "nogroup" }})
	if err != nil {
		t.Fatal(err)
	}
	if m.Site != "site.test" {
		t.Fatalf("manifest %+v", m)
	}
	sameTree(t, filepath.Join(src, "files"), filepath.Join(dest, "up"))
	if b, _ := os.ReadFile(filepath.Join(dest, "s.php")); string(b) != "<?php // secret\n" {
		t.Fatalf("settings: %q", b)
	}
	if os.Geteuid() == 0 {
		if out, _ := exec.Command("stat", "-c", "%U:%G", filepath.Join(dest, "up/2024/01/photo.jpg")).Output(); strings.TrimSpace(string(out)) != "nobody:nogroup" {
			t.Errorf("owner of an unpacked file: %s", out)
		}
	}

	// Skipping the settings (a clone gets its own).
	dest2 := t.TempDir()
	target2 := []Part{{Name: "uploads", Path: filepath.Join(dest2, "up"), Dir: true}, {Name: "settings.php", Path: filepath.Join(dest2, "s.php")}}
	if _, err := Extract(context.Background(), info.Path, Target{Files: pexec.NewLocal(), Parts: target2, Skip: func(n string) bool { return n == "settings.php" }}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest2, "s.php")); !os.IsNotExist(err) {
		t.Fatalf("skipped settings were unpacked: %v", err)
	}

	// A target without the archive's parts: refused.
	_, err = Extract(context.Background(), info.Path, Target{Files: pexec.NewLocal(), Parts: []Part{{Name: "site", Path: filepath.Join(t.TempDir(), "x"), Dir: true}}})
	if err == nil || !strings.Contains(err.Error(), "another kind of site") {
		t.Fatalf("extract to other parts: %v", err)
	}
}

// ReadMember streams the dump alone.
func TestReadMember(t *testing.T) {
	_, parts := tree(t)
	info := writeArchive(t, parts)
	var got bytes.Buffer
	mem, err := ReadMember(context.Background(), info.Path, DatabaseMember, func(r io.Reader) error {
		_, err := io.Copy(&got, r)
		return err
	})
	if err != nil || got.String() != dump {
		t.Fatalf("ReadMember: %v, %q", err, got.String())
	}
	want, _ := info.Manifest.Member(DatabaseMember)
	if mem.SHA256 != want.SHA256 || mem.Size != int64(len(dump)) {
		t.Fatalf("member %+v, manifest %+v", mem, want)
	}
}

// A failed dump leaves nothing in the backups directory.
func TestWriteFailureLeavesNothing(t *testing.T) {
	_, parts := tree(t)
	out := t.TempDir()
	_, err := Write(context.Background(), out, "x.test-1.tar.gz", Source{Files: pexec.NewLocal(), Parts: parts,
		Dump: func(_ context.Context, w io.Writer) error {
			_, _ = io.WriteString(w, "partial")
			return errors.New("dump tool failed")
		}})
	if err == nil || !strings.Contains(err.Error(), "dump tool failed") {
		t.Fatalf("Write with a failing dump: %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) > 0 {
		t.Fatalf("left in the backups dir: %v", left)
	}
}

// Member names that would leave the unpack directory are refused.
func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\x00b"} {
		if checkName(bad) == nil {
			t.Errorf("checkName(%q) passed", bad)
		}
	}
	for _, good := range []string{"uploads/", "uploads/a b/c.txt", "site/files/x..y", "settings.php"} {
		if err := checkName(good); err != nil {
			t.Errorf("checkName(%q): %v", good, err)
		}
	}
}

// A file swapped for a symbolic link between the listing and the reading
// (the site's code pointing at a file only aegir's user may read) is not
// archived through the link.
func TestOpenListedRefusesASwappedFile(t *testing.T) {
	dir := t.TempDir()
	listed, secret := filepath.Join(dir, "big.bin"), filepath.Join(dir, "secret")
	if err := os.WriteFile(listed, []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(listed)
	if err != nil {
		t.Fatal(err)
	}
	ex := pexec.NewLocal()
	r, err := openListed(context.Background(), ex, listed, fi)
	if err != nil {
		t.Fatalf("the listed file itself: %v", err)
	}
	r.Close()
	if err := os.Remove(listed); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, listed); err != nil {
		t.Fatal(err)
	}
	if _, err := openListed(context.Background(), ex, listed, fi); !errors.Is(err, errSwapped) {
		t.Fatalf("a file swapped for a link: %v, want errSwapped", err)
	}
	if _, err := readAll(context.Background(), ex, listed, fi); !errors.Is(err, errSwapped) {
		t.Fatalf("read ahead of a swapped file: %v, want errSwapped", err)
	}
	// A named pipe swapped in does not hold the backup up.
	if err := os.Remove(listed); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(listed, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openListed(context.Background(), ex, listed, fi); !errors.Is(err, errSwapped) {
		t.Fatalf("a file swapped for a named pipe: %v, want errSwapped", err)
	}
}

// Backups one after another reuse their compressors and buffers: a
// backup of a small site allocated about 9 MB when each one made its
// own (a pgzip writer's 1 MiB blocks, twice, and a 1 MiB file buffer),
// which a pass of many backups multiplied into its peak RSS.
func TestWriteReusesCompressors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.php"), bytes.Repeat([]byte("<?php echo 1;\n"), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	parts := []Part{{Name: "files", Path: dir, Dir: true}}
	out := t.TempDir()
	backup := func() {
		_, err := Write(context.Background(), out, "site.test-1.tar.gz", Source{
			Files: pexec.NewLocal(), Parts: parts,
			Dump: func(_ context.Context, w io.Writer) error {
				_, err := io.WriteString(w, dump)
				return err
			},
			Manifest: Manifest{Site: "site.test"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	backup() // the first one makes the compressor
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		backup()
	}
	runtime.ReadMemStats(&after)
	// A collection in between empties the pools once (about 9 MB more).
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 1<<20 {
		t.Errorf("a backup of a small site allocated %d KiB, want at most 1 MiB: its compressor or buffers are not reused", per>>10)
	} else {
		t.Logf("%d KiB a backup", per>>10)
	}
}

// BenchmarkWrite backs up a site of 64 MiB of files (half random bytes,
// as photos are, half text) and a 16 MiB dump: the archive's speed, for
// comparing changes to the compressor (docs/benchmarks.md, Backups, has
// the real site against tar and the dump).
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	rnd := make([]byte, 1<<20)
	text := bytes.Repeat([]byte("INSERT INTO wp_posts VALUES (1, 'a post of some words');\n"), 1<<20/58)
	for i := range 64 {
		body := text
		if i%2 == 0 {
			_, _ = rand.Read(rnd)
			body = rnd
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	parts := []Part{{Name: "files", Path: dir, Dir: true}}
	out := b.TempDir()
	b.SetBytes(80 << 20)
	for i := 0; i < b.N; i++ {
		info, err := Write(context.Background(), out, "site.test-1.tar.gz", Source{
			Files: pexec.NewLocal(), Parts: parts,
			Dump: func(_ context.Context, w io.Writer) error {
				for range 16 {
					if _, err := w.Write(text); err != nil {
						return err
					}
				}
				return nil
			},
			Manifest: Manifest{Site: "site.test"},
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = os.Remove(info.Path)
	}
}

// A scratch archive (a sync's snapshot) is whole and verifies, but keeps
// the task's temporary name: the rescue of its task, should the task die
// before removing it, finds it with TaskTemps.
func TestWriteScratchKeepsTaskName(t *testing.T) {
	_, parts := tree(t)
	home, out := t.TempDir(), t.TempDir()
	task, err := pexec.StartTask(home, 41)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close(context.Background())
	ctx := pexec.WithTask(context.Background(), task)
	info, err := Write(ctx, out, "site.test-1.tar.gz", Source{Files: pexec.NewLocal(), Parts: parts, Scratch: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), info.Path); err != nil {
		t.Fatal(err)
	}
	if exists, _ := filepath.Glob(filepath.Join(out, "site.test-1*.tar.gz")); len(exists) > 0 {
		t.Fatalf("a scratch archive took a backup's name: %v", exists)
	}
	temps, err := TaskTemps(out, 41)
	if err != nil || len(temps) != 1 || temps[0] != info.Path {
		t.Fatalf("TaskTemps of the task: %v, %v; want [%s]", temps, err, info.Path)
	}
	if other, _ := TaskTemps(out, 4); len(other) > 0 {
		t.Fatalf("TaskTemps of task 4 lists task 41's scratch: %v", other)
	}
}
