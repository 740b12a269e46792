package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aegir-project/aegir/pkg/cli"
)

// openPTY opens a pseudo-terminal: the side a program reads as its
// terminal, and the side a person types into.
func openPTY(t *testing.T) (term, person *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, m
}

// atTerminal runs aegir with its standard input and error on a terminal,
// answers its question with answer (when it asks one) and returns the
// question, standard output and the exit code.
func atTerminal(t *testing.T, home, answer string, args ...string) (question, stdout string, code int) {
	t.Helper()
	term, person := openPTY(t)
	asked := make(chan string, 1)
	go func() {
		// The question ends with "[y/N] ", then the answer is typed.
		r := bufio.NewReader(person)
		var q strings.Builder
		for !strings.HasSuffix(q.String(), "[y/N] ") {
			b, err := r.ReadByte()
			if err != nil {
				break
			}
			q.WriteByte(b)
		}
		asked <- q.String()
		person.WriteString(answer + "\n")
	}()
	var out bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"--home", home}, args...), cli.IOStreams{In: term, Out: &out, Err: term})
	select {
	case question = <-asked:
	case <-time.After(100 * time.Millisecond):
	}
	return question, out.String(), code
}

// Destructive commands ask: n (or anything but y) changes nothing and
// exits 2; y goes on; -y asks nothing. The answer is read from standard
// input whether it is a terminal or not: a pipe's n, or its end, is a no.
func TestConfirm(t *testing.T) {
	home := newHome(t)
	must(t, home, "server", "add", "web1", "--host", "localhost", "--http", "nginx", "--db", "mariadb", "--db-host", "127.0.0.1", "--queue")
	must(t, home, "platform", "add", "wp", "--server", "web1", "--root", t.TempDir(), "--queue")
	for _, d := range []string{"a.test", "b.test", "c.test", "d.test"} {
		must(t, home, "site", "install", d, "--platform", "wp", "--queue")
	}
	tasks := func() int {
		return strings.Count(must(t, home, "task", "list", "--type", "site.delete", "--format", "csv", "--fields", "id"), "\n") - 1
	}

	q, out, code := atTerminal(t, home, "n", "site", "delete", "a.test", "--no-backup", "--queue")
	if !strings.Contains(q, "Delete a.test") || !strings.Contains(q, "WITHOUT a backup") || code != cli.ExitUsage || out != "" || tasks() != 0 {
		t.Fatalf("answered n: question %q, exit %d, stdout %q, %d delete tasks", q, code, out, tasks())
	}
	q, out, code = atTerminal(t, home, "yes", "site", "delete", "a.test", "--queue")
	if !strings.Contains(q, "A backup is taken first") || code != 0 || strings.TrimSpace(out) == "" || tasks() != 1 {
		t.Fatalf("answered yes: question %q, exit %d, stdout %q, %d delete tasks", q, code, out, tasks())
	}
	q, _, code = atTerminal(t, home, "", "-y", "site", "delete", "b.test", "--queue")
	if q != "" || code != 0 || tasks() != 2 {
		t.Fatalf("with -y: question %q, exit %d, %d delete tasks", q, code, tasks())
	}

	// Not a terminal: a pipe's answer counts, and no answer is a no.
	piped := func(in string) (string, int) {
		var stdout, errb bytes.Buffer
		code := cli.Run(context.Background(), []string{"--home", home, "site", "delete", "c.test", "--no-backup", "--queue"},
			cli.IOStreams{In: strings.NewReader(in), Out: &stdout, Err: &errb})
		return errb.String(), code
	}
	for _, in := range []string{"n\n", "", "no\n", "yess\n", " \n"} {
		if errs, code := piped(in); code != cli.ExitUsage || !strings.Contains(errs, "[y/N] \n") || !strings.Contains(errs, "nothing was changed") || tasks() != 2 {
			t.Fatalf("piped %q: exit %d, %d delete tasks\n%s", in, code, tasks(), errs)
		}
	}
	if errs, code := piped("y\n"); code != 0 || tasks() != 3 {
		t.Fatalf("piped y: exit %d, %d delete tasks\n%s", code, tasks(), errs)
	}

	// A terminal for input, but errors go to a file: still asked, and
	// the terminal's answer counts.
	term, person := openPTY(t)
	person.WriteString("n\n")
	var stdout, errb bytes.Buffer
	code = cli.Run(context.Background(), []string{"--home", home, "site", "delete", "d.test", "--queue"}, cli.IOStreams{In: term, Out: &stdout, Err: &errb})
	if code != cli.ExitUsage || !strings.Contains(errb.String(), "[y/N]") || tasks() != 3 {
		t.Fatalf("with standard error not a terminal: exit %d, %d delete tasks\n%s", code, tasks(), errb.String())
	}
}
