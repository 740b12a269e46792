// Package exectest is the conformance suite every exec.Executor passes:
// commands arrive verbatim, exit codes, timeouts and missing programs are
// reported the same way, and files behave alike locally and over SSH.
package exectest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Run runs the suite. newExecutor returns the executor under test; it may
// return the same one every time (Run uses it from parallel goroutines)
// and it belongs to the caller, who closes it. Each subtest works in a
// fresh directory made on the server with mktemp -d and removed after.
func Run(t *testing.T, newExecutor func(t *testing.T) exec.Executor) {
	s := &suite{newExecutor: newExecutor}
	t.Run("ArgsVerbatim", s.argsVerbatim)
	t.Run("Stdin", s.stdin)
	t.Run("ExitCode", s.exitCode)
	t.Run("Timeout", s.timeout)
	t.Run("Cancel", s.cancel)
	t.Run("CancelEarly", s.cancelEarly)
	t.Run("NotFound", s.notFound)
	t.Run("Dir", s.dir)
	t.Run("Env", s.env)
	t.Run("User", s.user)
	t.Run("WriteReadFile", s.writeReadFile)
	t.Run("NotExist", s.notExist)
	t.Run("AtomicCreate", s.atomicCreate)
	t.Run("CreateSwappedTemp", s.createSwappedTemp)
	t.Run("Streaming", s.streaming)
	t.Run("NamedPipe", s.namedPipe)
	t.Run("StatSymlinkReadDir", s.statSymlinkReadDir)
	t.Run("MkdirRemoveRename", s.mkdirRemoveRename)
	t.Run("ChmodChown", s.chmodChown)
	t.Run("Concurrent", s.concurrent)
}

type suite struct {
	newExecutor func(t *testing.T) exec.Executor
}

// setup returns the executor, a context for the subtest and a fresh
// scratch directory on the server.
func (s *suite) setup(t *testing.T) (exec.Executor, context.Context, string) {
	t.Helper()
	ex := s.newExecutor(t)
	if ex.Host() == "" {
		t.Fatal("Host() is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	res := run(t, ex, exec.Command{Name: "mktemp", Args: []string{"-d"}})
	dir := strings.TrimSpace(string(res.Stdout))
	if !path.IsAbs(dir) {
		t.Fatalf("mktemp -d printed %q", res.Stdout)
	}
	t.Cleanup(func() {
		if err := ex.RemoveAll(context.Background(), dir); err != nil {
			t.Errorf("RemoveAll(%s): %v", dir, err)
		}
	})
	return ex, ctx, dir
}

// run runs c and fails the test on error.
func run(t *testing.T, ex exec.Executor, c exec.Command) exec.Result {
	t.Helper()
	res, err := ex.Run(context.Background(), c)
	if err != nil {
		t.Fatalf("Run(%s) on %s: %v", c, ex.Host(), err)
	}
	return res
}

// output runs c and returns its standard output without the final newline.
func output(t *testing.T, ex exec.Executor, c exec.Command) string {
	t.Helper()
	return strings.TrimSuffix(string(run(t, ex, c).Stdout), "\n")
}

// hostile are arguments a shell would mangle if they were not quoted.
var hostile = []string{
	"plain", "two words", `"double"`, "'single'", "it's", `back\slash`, "$HOME", "${PATH}", "$(id)", "`id`",
	"a;b", "a && b", "a|b", "a > /tmp/aegir-exectest-pwned", "x\ny\n", "*", "?", "[ab]", "~", "~root", "", " ",
	"\t", "-n", "--", "#comment", "!", "é ü 日本", "%s", "{a,b}", "a=b",
}

func (s *suite) argsVerbatim(t *testing.T) {
	ex, _, dir := s.setup(t)
	// Globs must not expand even where they would match.
	run(t, ex, exec.Command{Name: "touch", Args: []string{path.Join(dir, "ab"), path.Join(dir, "a")}})
	res := run(t, ex, exec.Command{Name: "printf", Args: append([]string{`%s\000`}, hostile...), Dir: dir})
	got := strings.Split(string(res.Stdout), "\x00")
	got = got[:len(got)-1]
	if len(got) != len(hostile) {
		t.Fatalf("printf got %d arguments, want %d: %q", len(got), len(hostile), got)
	}
	for i := range hostile {
		if got[i] != hostile[i] {
			t.Errorf("argument %d arrived as %q, want %q", i, got[i], hostile[i])
		}
	}
	if _, err := ex.Stat(context.Background(), "/tmp/aegir-exectest-pwned"); err == nil {
		t.Error("an argument was interpreted by a shell: /tmp/aegir-exectest-pwned exists")
	}
}

func (s *suite) stdin(t *testing.T) {
	ex, _, _ := s.setup(t)
	in := make([]byte, 1<<20)
	_, _ = rand.Read(in)
	in = append(in, "\x00end 'quoted' $x\n"...)
	res := run(t, ex, exec.Command{Name: "cat", Stdin: bytes.NewReader(in)})
	if !bytes.Equal(res.Stdout, in) {
		t.Errorf("cat echoed %d bytes that differ from the %d sent", len(res.Stdout), len(in))
	}
	// A program that does not read its input ends all the same.
	big := bytes.NewReader(make([]byte, 8<<20))
	if _, err := ex.Run(context.Background(), exec.Command{Name: "true", Stdin: big, Timeout: 10 * time.Second}); err != nil {
		t.Errorf("true with unread stdin: %v", err)
	}
	// No Stdin: the program reads end of file at once.
	res = run(t, ex, exec.Command{Name: "cat", Timeout: 10 * time.Second})
	if len(res.Stdout) != 0 {
		t.Errorf("cat without stdin printed %q", res.Stdout)
	}
}

func (s *suite) exitCode(t *testing.T) {
	ex, _, _ := s.setup(t)
	c := exec.Command{Name: "sh", Args: []string{"-c", "echo out; echo 'it failed' >&2; exit 7"}}
	res, err := ex.Run(context.Background(), c)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit 7: got error %v (%T), want *exec.ExitError", err, err)
	}
	if ee.ExitCode != 7 || res.ExitCode != 7 {
		t.Errorf("exit code: ExitError %d, Result %d, want 7", ee.ExitCode, res.ExitCode)
	}
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "it failed\n" {
		t.Errorf("output: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	for _, want := range []string{"exited with status 7", "it failed", "sh -c"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrTimeout) {
		t.Errorf("exit 7 reported as not found or timeout: %v", err)
	}
	// Without stderr, the message carries the tail of stdout.
	_, err = ex.Run(context.Background(), exec.Command{Name: "sh", Args: []string{"-c", "echo only-stdout; exit 1"}})
	if err == nil || !strings.Contains(err.Error(), "only-stdout") {
		t.Errorf("exit 1 without stderr: error %v does not carry stdout", err)
	}
	res = run(t, ex, exec.Command{Name: "true"})
	if res.ExitCode != 0 {
		t.Errorf("true: exit code %d", res.ExitCode)
	}
}

// killedCommand runs a program that records its pid and sleeps; after
// stop, it checks that the process is gone.
func (s *suite) killedCommand(t *testing.T, ex exec.Executor, dir string, ctx context.Context, timeout time.Duration, user string) error {
	t.Helper()
	pidFile := path.Join(dir, "pid")
	start := time.Now()
	// A child process of its own, too, that must die with the command.
	_, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", `sleep 30 & echo $! > "$1"; wait`, "sh", pidFile},
		Timeout: timeout, User: user})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the command was stopped after %s, want well under 5s", d)
	}
	pid, rerr := ex.ReadFile(context.Background(), pidFile)
	if rerr != nil {
		t.Fatalf("the command did not start: %v", rerr)
	}
	// The process must be gone (give a signal a moment to land).
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, kerr := ex.Run(context.Background(), exec.Command{Name: "kill", Args: []string{"-0", strings.TrimSpace(string(pid))}})
		if kerr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("process %s still runs after the command was stopped", strings.TrimSpace(string(pid)))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func (s *suite) timeout(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	err := s.killedCommand(t, ex, dir, ctx, 500*time.Millisecond, "")
	if !errors.Is(err, exec.ErrTimeout) {
		t.Fatalf("got %v, want an error wrapping ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "sleep 30 &") {
		t.Errorf("timeout error %q does not name the command", err)
	}
}

func (s *suite) cancel(t *testing.T) {
	ex, _, dir := s.setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	err := s.killedCommand(t, ex, dir, ctx, 0, "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want an error wrapping context.Canceled", err)
	}
}

// cancelEarly cancels commands a moment after Run is called, before the
// executor can have learnt much about them (over SSH: the remote pid):
// each one either never started or is stopped, never left running.
func (s *suite) cancelEarly(t *testing.T) {
	ex, _, dir := s.setup(t)
	delays := []time.Duration{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond,
		5 * time.Millisecond, 8 * time.Millisecond, 13 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	var wg sync.WaitGroup
	for i, d := range delays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pidFile := path.Join(dir, fmt.Sprint("pid", i))
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(d, cancel)
			start := time.Now()
			_, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", `echo $$ > "$1"; exec sleep 30`, "sh", pidFile}})
			if err == nil {
				t.Errorf("cancelled after %s: Run returned no error", d)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("cancelled after %s: Run returned after %s", d, took)
			}
			// A command that started on the server has written its pid by
			// now or does within a moment; then it must die.
			deadline := time.Now().Add(3 * time.Second)
			for {
				b, rerr := ex.ReadFile(context.Background(), pidFile)
				pid := strings.TrimSpace(string(b))
				alive := false
				if rerr == nil && pid != "" {
					_, kerr := ex.Run(context.Background(), exec.Command{Name: "kill", Args: []string{"-0", pid}})
					alive = kerr == nil
				}
				if rerr == nil && pid != "" && !alive {
					return
				}
				if time.Now().After(deadline) {
					if alive {
						t.Errorf("cancelled after %s: process %s still runs", d, pid)
						_, _ = ex.Run(context.Background(), exec.Command{Name: "kill", Args: []string{"-KILL", pid}})
					}
					return // never started
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

func (s *suite) notFound(t *testing.T) {
	ex, _, _ := s.setup(t)
	for _, name := range []string{"aegir-no-such-program", "/nonexistent/aegir-prog"} {
		_, err := ex.Run(context.Background(), exec.Command{Name: name, Args: []string{"x"}})
		if !errors.Is(err, exec.ErrNotFound) {
			t.Errorf("%s: got %v, want an error wrapping ErrNotFound", name, err)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the program", name, err)
		}
	}
}

func (s *suite) dir(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	sub := path.Join(dir, "with space $x")
	if err := ex.MkdirAll(ctx, sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := output(t, ex, exec.Command{Name: "pwd", Dir: sub}); got != sub {
		t.Errorf("pwd in Dir %q printed %q", sub, got)
	}
	missing := path.Join(dir, "missing")
	_, err := ex.Run(ctx, exec.Command{Name: "pwd", Dir: missing})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing Dir: got %v, want an error naming %s", err, missing)
	}
	if errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing Dir reported as a missing program: %v", err)
	}
}

func (s *suite) env(t *testing.T) {
	ex, _, _ := s.setup(t)
	val := `a b 'c' "d" $HOME ; x`
	got := output(t, ex, exec.Command{Name: "sh", Args: []string{"-c", `printf '%s|%s' "$AEGIR_A" "$AEGIR_B"`},
		Env: []string{"AEGIR_A=" + val, "AEGIR_B=2=two"}})
	if want := val + "|2=two"; got != want {
		t.Errorf("environment arrived as %q, want %q", got, want)
	}
	// PATH still works: the extra variables come on top of the environment.
	run(t, ex, exec.Command{Name: "true", Env: []string{"AEGIR_A=1"}})
	if _, err := ex.Run(context.Background(), exec.Command{Name: "true", Env: []string{"NOEQUALS"}}); err == nil {
		t.Error("an Env entry without = was accepted")
	}
}

// privileged reports whether the executor can run commands as other users:
// it is root, or its user may sudo without a password.
func privileged(t *testing.T, ex exec.Executor) bool {
	if output(t, ex, exec.Command{Name: "id", Args: []string{"-u"}}) == "0" {
		return true
	}
	_, err := ex.Run(context.Background(), exec.Command{Name: "sudo", Args: []string{"-n", "true"}})
	return err == nil
}

func (s *suite) user(t *testing.T) {
	ex, _, dir := s.setup(t)
	me := output(t, ex, exec.Command{Name: "id", Args: []string{"-un"}})
	if got := output(t, ex, exec.Command{Name: "id", Args: []string{"-un"}, User: me}); got != me {
		t.Errorf("User %s (the executor's own): id -un printed %q", me, got)
	}
	if !privileged(t, ex) {
		t.Skipf("%s on %s can neither run as root nor sudo: running as another user is not tested", me, ex.Host())
	}
	got := output(t, ex, exec.Command{Name: "sh", Args: []string{"-c", `id -un; pwd; printf %s "$AEGIR_X"`, "sh"},
		User: "nobody", Dir: "/", Env: []string{"AEGIR_X=x y"}})
	if want := "nobody\n/\nx y"; got != want {
		t.Errorf("as nobody: got %q, want %q", got, want)
	}
	if _, err := ex.Run(context.Background(), exec.Command{Name: "aegir-no-such-program", User: "nobody"}); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing program as nobody: got %v, want ErrNotFound", err)
	}
	_, err := ex.Run(context.Background(), exec.Command{Name: "touch", Args: []string{path.Join(dir, "x")}, User: "nobody"})
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("nobody writing into %s's directory: got %v, want an ExitError (permission denied)", me, err)
	}
	// A command as another user that times out dies, children and all.
	open := path.Join(dir, "open")
	if err := ex.MkdirAll(context.Background(), open, 0o777); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]fs.FileMode{dir: 0o711, open: 0o777} {
		if err := ex.Chmod(context.Background(), p, mode); err != nil {
			t.Fatal(err)
		}
	}
	err = s.killedCommand(t, ex, open, context.Background(), 500*time.Millisecond, "nobody")
	if !errors.Is(err, exec.ErrTimeout) {
		t.Errorf("as nobody: got %v, want an error wrapping ErrTimeout", err)
	}
}

func (s *suite) writeReadFile(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	p := path.Join(dir, "it's a file")
	if err := ex.WriteFile(ctx, p, []byte("one\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	checkFile(t, ex, p, "one\n", 0o640)
	// Overwrite: new content and new mode, no temporary files left.
	if err := ex.WriteFile(ctx, p, []byte("two\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, ex, p, "two\x00", 0o600)
	if err := ex.WriteFile(ctx, path.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checkFile(t, ex, path.Join(dir, "empty"), "", 0o644)
	checkNames(t, ex, dir, "empty", "it's a file")
}

// checkFile asserts a file's content and permission bits.
func checkFile(t *testing.T, ex exec.Executor, p, content string, mode fs.FileMode) {
	t.Helper()
	got, err := ex.ReadFile(context.Background(), p)
	if err != nil {
		t.Fatalf("ReadFile(%s): %v", p, err)
	}
	if string(got) != content {
		t.Errorf("%s holds %q, want %q", p, got, content)
	}
	fi, err := ex.Stat(context.Background(), p)
	if err != nil {
		t.Fatalf("Stat(%s): %v", p, err)
	}
	if fi.Mode().Perm() != mode || !fi.Mode().IsRegular() {
		t.Errorf("%s has mode %v, want a regular file with %v", p, fi.Mode(), mode)
	}
	if fi.Size() != int64(len(content)) {
		t.Errorf("%s: Stat size %d, want %d", p, fi.Size(), len(content))
	}
}

// checkNames asserts the sorted names in a directory (temporary files of
// atomic writes must not be left behind).
func checkNames(t *testing.T, ex exec.Executor, dir string, want ...string) {
	t.Helper()
	list, err := ex.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var got []string
	for _, fi := range list {
		got = append(got, fi.Name())
	}
	if !sort.StringsAreSorted(got) {
		t.Errorf("ReadDir(%s) is not sorted: %q", dir, got)
	}
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func (s *suite) notExist(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	missing := path.Join(dir, "missing")
	inMissing := path.Join(missing, "file")
	ops := map[string]func() error{
		"ReadFile":  func() error { _, err := ex.ReadFile(ctx, missing); return err },
		"Open":      func() error { _, err := ex.Open(ctx, missing); return err },
		"Stat":      func() error { _, err := ex.Stat(ctx, missing); return err },
		"Lstat":     func() error { _, err := ex.Lstat(ctx, missing); return err },
		"ReadDir":   func() error { _, err := ex.ReadDir(ctx, missing); return err },
		"Remove":    func() error { return ex.Remove(ctx, missing) },
		"Rename":    func() error { return ex.Rename(ctx, missing, path.Join(dir, "new")) },
		"Chmod":     func() error { return ex.Chmod(ctx, missing, 0o644) },
		"WriteFile": func() error { return ex.WriteFile(ctx, inMissing, []byte("x"), 0o644) },
		"Create":    func() error { _, err := ex.Create(ctx, inMissing, 0o644); return err },
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a missing path: got %v, want an error matching fs.ErrNotExist", name, err)
		} else if !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: error %q does not name the path", name, err)
		}
	}
	if err := ex.RemoveAll(ctx, missing); err != nil {
		t.Errorf("RemoveAll of a missing path: %v, want nil", err)
	}
	for _, bad := range []string{"/", "relative/dir", ""} {
		if err := ex.RemoveAll(ctx, bad); err == nil {
			t.Errorf("RemoveAll(%q) was accepted", bad)
		}
	}
}

func (s *suite) atomicCreate(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	p := path.Join(dir, "conf")
	if err := ex.WriteFile(ctx, p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := ex.Create(ctx, p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "new content"); err != nil {
		t.Fatal(err)
	}
	// Until Close, readers see the old file whole, and the content being
	// written only its owner may open (a secret file's password).
	checkFile(t, ex, p, "old", 0o644)
	list, err := ex.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range list {
		if fi.Name() != "conf" && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("temporary file %s has mode %v while written, want no access for group and others", fi.Name(), fi.Mode().Perm())
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, ex, p, "new content", 0o600)
	checkNames(t, ex, dir, "conf")
}

// createSwappedTemp: whoever may write in the directory (the web server's
// user owns a site's wp-content or files) replaces the temporary file of
// a Create by a symbolic link to a file of another owner before Close.
// The mode is not set through the link (a chmod by path would make
// /etc/shadow 0644 for a write as root); the link lands where the file
// was to go, as any file of that directory's owner could.
func (s *suite) createSwappedTemp(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	victim := path.Join(dir, "victim")
	if err := ex.WriteFile(ctx, victim, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := path.Join(dir, "open")
	if err := ex.MkdirAll(ctx, open, 0o755); err != nil {
		t.Fatal(err)
	}
	p := path.Join(open, "aegir-login.php")
	w, err := ex.Create(ctx, p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "<?php\n"); err != nil {
		t.Fatal(err)
	}
	list, err := ex.ReadDir(ctx, open)
	if err != nil || len(list) != 1 {
		t.Fatalf("ReadDir(%s): %v, %d entries, want the temporary file alone", open, err, len(list))
	}
	tmp := path.Join(open, list[0].Name())
	if err := ex.Remove(ctx, tmp); err != nil {
		t.Fatal(err)
	}
	run(t, ex, exec.Command{Name: "ln", Args: []string{"-s", victim, tmp}})
	_ = w.Close() // an error is fine; a changed victim is not
	if fi, err := ex.Stat(ctx, victim); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file the swapped temporary file points to: %v, mode %v, want 0600 as it was", err, fi.Mode().Perm())
	}
	checkFile(t, ex, victim, "secret", 0o600)
}

func (s *suite) streaming(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	data := make([]byte, 4<<20+123)
	_, _ = rand.Read(data)
	p := path.Join(dir, "big.bin")
	w, err := ex.Create(ctx, p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ex.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("read back %d bytes that differ from the %d written", n, len(data))
	}
	// The server sees the same bytes.
	sum := output(t, ex, exec.Command{Name: "sha256sum", Args: []string{p}})
	if want := fmt.Sprintf("%x", sha256.Sum256(data)); !strings.HasPrefix(sum, want) {
		t.Errorf("sha256sum on the server: %s, want %s", sum, want)
	}
}

func (s *suite) statSymlinkReadDir(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	target := path.Join(dir, "target")
	if err := ex.WriteFile(ctx, target, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := path.Join(dir, "link")
	if err := ex.Symlink(ctx, target, link); err != nil {
		t.Fatal(err)
	}
	if err := ex.MkdirAll(ctx, path.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := ex.Lstat(ctx, link)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Name() != "link" {
		t.Errorf("Lstat(link) = %v, %v; want a symlink named link", fi, err)
	}
	fi, err = ex.Stat(ctx, link)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 5 {
		t.Errorf("Stat(link) = %v, %v; want the 5-byte target", fi, err)
	}
	if err := ex.Symlink(ctx, target, link); err == nil {
		t.Error("Symlink over an existing link succeeded")
	}
	list, err := ex.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, fi := range list {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			kinds[fi.Name()] = "symlink"
		case fi.IsDir():
			kinds[fi.Name()] = "dir"
		default:
			kinds[fi.Name()] = fmt.Sprintf("file %d", fi.Size())
		}
	}
	if want := "map[link:symlink sub:dir target:file 5]"; fmt.Sprint(kinds) != want {
		t.Errorf("ReadDir: %v, want %s", kinds, want)
	}
	checkNames(t, ex, dir, "link", "sub", "target")
}

func (s *suite) mkdirRemoveRename(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	deep := path.Join(dir, "a", "b", "c")
	for i := 0; i < 2; i++ { // the second time: already there, no error
		if err := ex.MkdirAll(ctx, deep, 0o750); err != nil {
			t.Fatalf("MkdirAll (%d): %v", i+1, err)
		}
	}
	for _, d := range []string{path.Join(dir, "a"), deep} {
		if fi, err := ex.Stat(ctx, d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Errorf("Stat(%s) = %v, %v; want a directory with mode 0750", d, fi, err)
		}
	}
	file := path.Join(deep, "f")
	if err := ex.WriteFile(ctx, file, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ex.MkdirAll(ctx, file, 0o755); err == nil {
		t.Error("MkdirAll over a file succeeded")
	}
	if err := ex.Remove(ctx, deep); err == nil {
		t.Error("Remove of a non-empty directory succeeded")
	}
	// Rename replaces an existing file.
	other := path.Join(dir, "other")
	if err := ex.WriteFile(ctx, other, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ex.Rename(ctx, other, file); err != nil {
		t.Fatal(err)
	}
	checkFile(t, ex, file, "other", 0o644)
	if err := ex.Remove(ctx, file); err != nil {
		t.Fatal(err)
	}
	if err := ex.Remove(ctx, deep); err != nil {
		t.Errorf("Remove of an empty directory: %v", err)
	}
	if err := ex.WriteFile(ctx, path.Join(dir, "a", "b", "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ex.RemoveAll(ctx, path.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	checkNames(t, ex, dir)
}

func (s *suite) chmodChown(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	p := path.Join(dir, "f")
	if err := ex.WriteFile(ctx, p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ex.Chmod(ctx, p, 0o604); err != nil {
		t.Fatal(err)
	}
	checkFile(t, ex, p, "x", 0o604)

	owner := func() string {
		return output(t, ex, exec.Command{Name: "stat", Args: []string{"-c", "%U:%G", p}})
	}
	me := output(t, ex, exec.Command{Name: "id", Args: []string{"-un"}})
	group := output(t, ex, exec.Command{Name: "id", Args: []string{"-gn"}})
	if err := ex.Chown(ctx, p, me, group); err != nil {
		t.Fatalf("Chown to %s:%s: %v", me, group, err)
	}
	if got := owner(); got != me+":"+group {
		t.Errorf("owner %s, want %s:%s", got, me, group)
	}
	if err := ex.Chown(ctx, p, "aegir-no-such-user", ""); err == nil || !strings.Contains(err.Error(), "aegir-no-such-user") {
		t.Errorf("Chown to a missing user: got %v, want an error naming the user", err)
	}

	// Through a symbolic link: Chmod refuses it, Chown changes the link
	// itself; the file it points at keeps its mode and owner.
	link := path.Join(dir, "link")
	if err := ex.Symlink(ctx, p, link); err != nil {
		t.Fatal(err)
	}
	if err := ex.Chmod(ctx, link, 0o777); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Chmod through a link: %v, want a refusal", err)
	}
	checkFile(t, ex, p, "x", 0o604)
	if err := ex.Chown(ctx, link, me, group); err != nil {
		t.Errorf("Chown of a link: %v", err)
	}

	if output(t, ex, exec.Command{Name: "id", Args: []string{"-u"}}) != "0" {
		return // only root gives files away
	}
	if err := ex.Chown(ctx, link, "nobody", "nogroup"); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got != me+":"+group {
		t.Errorf("Chown of a link changed the file it points at: %s", got)
	}
	if err := ex.Chown(ctx, p, "nobody", ""); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got != "nobody:"+group {
		t.Errorf("after Chown(nobody, \"\"): owner %s, want nobody:%s (group kept)", got, group)
	}
	if err := ex.Chown(ctx, p, "nobody", "nogroup"); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got != "nobody:nogroup" {
		t.Errorf("after Chown(nobody, nogroup): owner %s", got)
	}
}

func (s *suite) concurrent(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("worker %d", i)
			res, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", `sleep 0.3; printf '%s' "$1"`, "sh", want}})
			if err != nil {
				errs <- err
			} else if string(res.Stdout) != want {
				errs <- fmt.Errorf("worker %d got %q", i, res.Stdout)
			}
			p := path.Join(dir, fmt.Sprint(i))
			if err := ex.WriteFile(ctx, p, []byte(want), 0o644); err != nil {
				errs <- err
			} else if got, err := ex.ReadFile(ctx, p); err != nil || string(got) != want {
				errs <- fmt.Errorf("worker %d read back %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d parallel commands of 0.3s took %s: they do not run in parallel", n, d)
	}
}

// namedPipe: Open of a FIFO waits for its writer and streams all it
// writes (a database dump comes this way), while other file operations
// go on meanwhile.
func (s *suite) namedPipe(t *testing.T) {
	ex, ctx, dir := s.setup(t)
	fifo := path.Join(dir, "fifo")
	run(t, ex, exec.Command{Name: "mkfifo", Args: []string{"-m", "600", fifo}})
	type opened struct {
		rc  io.ReadCloser
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		rc, err := ex.Open(ctx, fifo)
		ch <- opened{rc, err}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case o := <-ch:
		t.Fatalf("Open of a FIFO returned before a writer came: %v", o.err)
	default:
	}
	if _, err := ex.Stat(ctx, dir); err != nil {
		t.Fatalf("Stat while a FIFO reader waits: %v", err)
	}
	const lines = 300000
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", `seq 1 "$2" > "$1"`, "sh", fifo, fmt.Sprint(lines)}})
		done <- err
	}()
	o := <-ch
	if o.err != nil {
		t.Fatalf("Open of a FIFO: %v", o.err)
	}
	got, err := io.ReadAll(o.rc)
	o.rc.Close()
	if err != nil {
		t.Fatalf("reading a FIFO: %v", err)
	}
	var want bytes.Buffer
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes from the FIFO, want %d", len(got), want.Len())
	}
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
}
