package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/store"
)

// onTerminal runs aegir with its standard output and error on a
// pseudo-terminal cols columns wide and returns what the terminal showed
// (line ends as written, without the terminal's carriage returns).
func onTerminal(t *testing.T, home string, cols int, args ...string) (shown string, code int) {
	t.Helper()
	term, person := openPTY(t)
	if err := unix.IoctlSetWinsize(int(term.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: uint16(cols)}); err != nil {
		t.Fatal(err)
	}
	read := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, person) // ends with EIO once the terminal side is closed
		read <- b.String()
	}()
	code = cli.Run(context.Background(), append([]string{"--home", home}, args...), cli.IOStreams{In: strings.NewReader(""), Out: term, Err: term})
	term.Close()
	return strings.ReplaceAll(<-read, "\r\n", "\n"), code
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// At a terminal: statuses and errors in color, tables as wide as the
// terminal at most (long cells cut with an ellipsis), a task's end line
// in color; --no-color and NO_COLOR print no escape sequence; a file or
// pipe gets no color and whole cells.
func TestColorAndWidthAtTerminal(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	os.Unsetenv("NO_COLOR")
	t.Setenv("TERM", "xterm")
	t.Setenv("COLUMNS", "")
	home := newHome(t)
	long := "a-domain-name-much-too-long-for-a-narrow-terminal.test"
	must(t, home, "server", "add", "web1", "--host", "localhost", "--http", "nginx", "--db", "mariadb", "--db-host", "127.0.0.1", "--queue")
	must(t, home, "platform", "add", "wp", "--server", "web1", "--root", t.TempDir(), "--queue")
	must(t, home, "site", "install", long, "--platform", "wp", "--alias", "www."+long, "--queue")

	out, code := onTerminal(t, home, 80, "site", "list")
	if code != 0 {
		t.Fatalf("site list: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "\x1b[33mqueued\x1b[0m") {
		t.Errorf("the queued status is not yellow at a terminal:\n%q", out)
	}
	plain := ansi.ReplaceAllString(out, "")
	for _, line := range strings.Split(strings.TrimRight(plain, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("a line of %d columns on a terminal of 80:\n%s", n, plain)
		}
	}
	if !regexp.MustCompile(`│ a-d[a-z-]*… +│ wp +│`).MatchString(plain) || !regexp.MustCompile(`│ +DOMAIN +│ +PLATFORM +│`).MatchString(plain) || strings.Contains(plain, long) {
		t.Errorf("the long domain is not cut with an ellipsis:\n%s", plain)
	}
	// A wider terminal shows it whole.
	if out, _ := onTerminal(t, home, 250, "site", "list"); !strings.Contains(out, long) {
		t.Errorf("at 250 columns the domain is cut:\n%s", out)
	}

	// An error: red at a terminal.
	if out, code := onTerminal(t, home, 80, "site", "show", "nope.test"); code != cli.ExitNotFound || !strings.Contains(out, "\x1b[31merror:\x1b[0m site \"nope.test\" not found") {
		t.Errorf("error at a terminal: exit %d\n%q", code, out)
	}
	// A real foreground task: its end line in green.
	if out, code := onTerminal(t, home, 80, "server", "add", "db1", "--host", "localhost", "--db", "mariadb", "--db-host", "127.0.0.1"); code != 0 || !regexp.MustCompile("\x1b\\[32mSuccess:\x1b\\[0m server db1 verified in ").MatchString(out) {
		t.Errorf("server add at a terminal: exit %d\n%q", code, out)
	}

	// --no-color, then NO_COLOR: the same without escapes.
	if out, _ := onTerminal(t, home, 80, "--no-color", "site", "list"); strings.Contains(out, "\x1b[") || !strings.Contains(out, "│ queued │") {
		t.Errorf("--no-color:\n%q", out)
	}
	t.Setenv("NO_COLOR", "1")
	if out, _ := onTerminal(t, home, 80, "site", "show", "nope.test"); strings.Contains(out, "\x1b[") || !strings.Contains(out, "error: site \"nope.test\" not found") {
		t.Errorf("NO_COLOR:\n%q", out)
	}
	os.Unsetenv("NO_COLOR")

	// Not a terminal: no color, whole cells.
	if out := must(t, home, "site", "list"); strings.Contains(out, "\x1b[") || !strings.Contains(out, long) {
		t.Errorf("site list to a buffer:\n%s", out)
	}
}

// What servers and sites said (a task's error, its log) reaches a
// terminal as text: an escape sequence in it (a window title, a screen
// clear, a color --no-color must not let through) or a carriage return
// does not act on the terminal, in a table, the log or the end line; the
// state and JSON keep the text as it was.
func TestServerTextAtTerminal(t *testing.T) {
	t.Setenv("TERM", "xterm")
	home := newHome(t)
	must(t, home, "server", "add", "web1", "--host", "localhost", "--http", "nginx", "--queue")
	hostile := "reload failed: \x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m 10%\r20%"
	st, err := store.Open(context.Background(), filepath.Join(home, "aegir.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.AppendLog(ctx, 1, entities.LogLine{Level: "error", Message: hostile}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if task, err := st.ClaimTask(ctx, store.Claim{Worker: "w", Now: now, LeaseUntil: now.Add(time.Hour)}, 1); err != nil || task == nil {
		t.Fatalf("claiming task 1: %v", err)
	}
	if ok, err := st.FinishTask(ctx, 1, "w", store.TaskEnd{Status: entities.TaskError, Error: hostile, Hint: "hint \x1b[2J", Code: "command", Finished: now}); err != nil || !ok {
		t.Fatalf("finishing task 1: %v", err)
	}
	st.Close()
	for _, args := range [][]string{{"task", "list"}, {"task", "show", "1"}, {"task", "log", "1"}, {"task", "log", "1", "--follow"}, {"--no-color", "task", "log", "1", "--follow"}} {
		out, _ := onTerminal(t, home, 200, args...)
		if !strings.Contains(out, "reload failed: red 10%\uFFFD20%") || strings.ContainsAny(ansi.ReplaceAllString(out, ""), "\x1b\x07\r") ||
			strings.Contains(out, "\x1b[2J") || strings.Contains(out, "\x1b[31mred") {
			t.Errorf("aegir %s at a terminal:\n%q", strings.Join(args, " "), out)
		}
	}
	if js := must(t, home, "task", "show", "1", "--format", "json"); !strings.Contains(js, `"error": "reload failed: \u001b]0;owned\u0007\u001b[2J\u001b[31mred\u001b[0m 10%\r20%"`) {
		t.Errorf("the JSON of the task:\n%s", js)
	}
}

// A real WordPress install in the foreground: its output is one line,
// its log on stderr aegir's own lines (not the installer's command and
// output: -v shows those), and the task's log keeps them all; -q shows no
// log; a delete ends the same way.
func TestSiteInstallEndLine(t *testing.T) {
	h := newHostEnv(t, "nginx")
	h.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "end")

	out, errs, code := aegir(t, h.home, "site", "install", domain, "--platform", "wp")
	if code != 0 || !regexp.MustCompile(`^Success: site `+regexp.QuoteMeta(domain)+` installed in \d+\.\d s\n$`).MatchString(out) {
		t.Fatalf("site install: exit %d, stdout %q\n%s", code, out, errs)
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d info `).MatchString(errs) || regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d (command|output|debug) `).MatchString(errs) {
		t.Errorf("install log on stderr, want info lines and no command, output or debug lines:\n%s", errs)
	}
	hasTitle := func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, "<title>"+domain+"</title>")
	}
	if code, body, _ := h.get(t, domain, "/", hasTitle); !hasTitle(code, body, nil) {
		t.Fatalf("GET %s after install: %d %.200s", domain, code, body)
	}
	// The install records the site's health as a verify does: site list
	// shows it from the start.
	if hl, _ := siteRecord(t, h.home, domain)["health"].(map[string]any); hl["status"] != "ok" || hl["http_code"] != float64(200) {
		t.Errorf("health after install: %v, want ok 200", hl)
	}
	if out := must(t, h.home, "site", "list", "--format", "csv", "--fields", "domain,health"); !strings.Contains(out, domain+",ok 200") {
		t.Errorf("site list after install:\n%s", out)
	}
	var task []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(must(t, h.home, "task", "list", "--site", domain, "--type", "site.install", "--format", "json")), &task); err != nil || len(task) != 1 {
		t.Fatalf("install task: %v %v", task, err)
	}
	if log := must(t, h.home, "task", "log", itoa(int(task[0].ID))); !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d command `).MatchString(log) {
		t.Errorf("the task's log lacks the installer's command:\n%s", log)
	}

	// -v: the commands and their output too.
	if _, errs, code := aegir(t, h.home, "-v", "site", "verify", domain); code != 0 || !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d (command|debug) `).MatchString(errs) {
		t.Errorf("verify -v: exit %d, want command or debug lines:\n%s", code, errs)
	}
	// -q: the end line alone.
	if out, errs, code := aegir(t, h.home, "-q", "site", "delete", domain, "--no-backup"); code != 0 || errs != "" ||
		!regexp.MustCompile(`^Success: site `+regexp.QuoteMeta(domain)+` deleted in \d+(\.\d s| ms)\n$`).MatchString(out) {
		t.Errorf("delete -q: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
