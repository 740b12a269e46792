package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/queue"
)

// init makes the home and its config file, and run again keeps a config
// file that was edited.
func TestRunInit(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	a := newApp(context.Background(), IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	a.home = home
	if err := runInit(&InitOptions{App: a}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"config", "backups", "templates"} {
		if fi, err := os.Stat(filepath.Join(home, d)); err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
	}
	cfg := filepath.Join(home, "aegir.yaml")
	if err := os.WriteFile(cfg, []byte("workers: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.st.Close()
	if err := runInit(&InitOptions{App: a}); err != nil {
		t.Fatal(err)
	}
	a.st.Close()
	if b, _ := os.ReadFile(cfg); string(b) != "workers: 3\n" {
		t.Fatalf("init again rewrote aegir.yaml: %q", b)
	}
	if errs := a.IO.Err.(*bytes.Buffer).String(); !strings.Contains(errs, "aegir home ready: "+home) {
		t.Fatalf("init said:\n%s", errs)
	}
}

// hosting dispatch tells --workers given from the setting, and refuses a
// count it cannot run before it builds a dispatcher or runs anything.
func TestDispatchWorkers(t *testing.T) {
	a := testApp(t)
	var got *DispatchOptions
	parse(t, newDispatcherCmd(a, "dispatch", "", "", nil, kept(&got)), "--workers", "3")
	if got.Workers != 3 || !got.WorkersSet {
		t.Fatalf("--workers 3: %+v", got)
	}
	parse(t, newDispatcherCmd(a, "dispatch", "", "", nil, kept(&got)))
	if got.WorkersSet || got.Workers != 0 {
		t.Fatalf("no --workers: %+v", got)
	}
	ran := func(*DispatchOptions, *queue.Dispatcher) error {
		t.Fatal("a refused dispatch ran")
		return nil
	}
	refused(t, a, `invalid --workers "0": must be 1 or more`, func() error {
		return runDispatcher(&DispatchOptions{App: a, WorkersSet: true}, ran)
	})
	refused(t, a, `invalid --workers "257": must be at most 256`, func() error {
		return runDispatcher(&DispatchOptions{App: a, Workers: 257, WorkersSet: true}, ran)
	})
}

// cron-install --print prints the line for this home; an interval cron
// cannot say is refused with the key to fix.
func TestRunCronInstallPrint(t *testing.T) {
	a := testApp(t)
	if err := runCronInstall(&CronInstallOptions{App: a, Print: true}); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(stdout(a))
	if !strings.HasPrefix(line, "* * * * * ") || !strings.Contains(line, "--home "+a.home+" hosting dispatch --quiet") || !strings.HasSuffix(line, "# aegir dispatch "+a.home) {
		t.Fatalf("crontab line: %q", line)
	}
	a.cfg.Set("queue.interval", 7*time.Minute)
	err := runCronInstall(&CronInstallOptions{App: a, Print: true})
	if code, errs := exitOf(a, err); code != ExitUsage || !strings.Contains(errs, "it must divide an hour") || !strings.Contains(errs, "hint: change queue.interval") {
		t.Fatalf("7m interval: exit %d\n%s", code, errs)
	}
}
