package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/store"
)

func taskStatus(t *testing.T, home, id string) string {
	t.Helper()
	var v struct{ Status string }
	if err := json.Unmarshal([]byte(must(t, home, "task", "show", id, "--format", "json")), &v); err != nil {
		t.Fatal(err)
	}
	return v.Status
}

// hosting dispatch runs what is queued, once, and says what it did.
func TestHostingDispatch(t *testing.T) {
	home := newHome(t)
	id := strings.TrimSpace(must(t, home, "server", "add", "web1", "--host", "localhost", "--queue"))
	if s := taskStatus(t, home, id); s != "queued" {
		t.Fatalf("task %s is %s before dispatch", id, s)
	}
	out := must(t, home, "hosting", "dispatch", "--workers", "3", "--format", "json")
	var sum struct {
		Ran       int            `json:"ran"`
		Failed    int            `json:"failed"`
		Rescued   []int64        `json:"rescued"`
		Scheduled map[string]int `json:"scheduled"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Ran != 1 || sum.Failed != 0 || sum.Rescued == nil {
		t.Fatalf("dispatch summary %q (%v)", out, err)
	}
	if s := taskStatus(t, home, id); s != "success" && s != "warning" {
		t.Fatalf("task %s is %s after dispatch", id, s)
	}
	// Nothing left: a quiet pass in table format prints nothing.
	if out, errs, code := aegir(t, home, "hosting", "dispatch"); code != 0 || out != "" || errs != "" {
		t.Fatalf("empty dispatch: exit %d, %q, %q", code, out, errs)
	}
	if _, errs, code := aegir(t, home, "hosting", "dispatch", "--workers", "0"); code != 2 || !strings.Contains(errs, "invalid --workers") {
		t.Fatalf("--workers 0: exit %d, %q", code, errs)
	}

	// A summary that cannot be printed as asked is exit 2 before the pass,
	// not after it ran the queued tasks: they are still queued.
	id = strings.TrimSpace(must(t, home, "server", "verify", "web1", "--queue"))
	for _, args := range [][]string{{"--field", "nope"}, {"--fields", "ran,nope"}, {"--format", "ids"}} {
		_, errs, code := aegir(t, home, append([]string{"hosting", "dispatch"}, args...)...)
		if code != 2 || !strings.Contains(errs, "invalid --f") {
			t.Errorf("dispatch %v: exit %d, %q; want 2 and the flag named", args, code, errs)
		}
		if s := taskStatus(t, home, id); s != "queued" {
			t.Fatalf("dispatch %v ran task %s (%s) before refusing its output", args, id, s)
		}
	}
	if out := must(t, home, "hosting", "dispatch", "--field", "ran"); out != "1\n" {
		t.Errorf("dispatch --field ran: %q", out)
	}
}

// hosting queued serves until its context ends (SIGTERM in the binary),
// running the tasks queued before and while it runs. (Its state is read
// through the store, not a second cli.Run: building two command trees at
// once races in cobra's global template functions.)
func TestHostingQueued(t *testing.T) {
	home := newHome(t)
	first, err := strconv.ParseInt(strings.TrimSpace(must(t, home, "server", "add", "web1", "--host", "localhost", "--queue")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(home, "aegir.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var errb bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Run(ctx, []string{"--home", home, "hosting", "queued"}, cli.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
	}()
	waitDone := func(id int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			task, err := st.GetTask(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if task.Status == "success" || task.Status == "warning" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the daemon did not run task %d: %s", id, task.Status)
			}
		}
	}
	waitDone(first)
	srv, err := st.GetServer(context.Background(), "web1")
	if err != nil {
		t.Fatal(err)
	}
	next, err := st.QueueTask(context.Background(), "server.verify", "server", srv.ID, "web1", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(next.ID)
	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("hosting queued exited %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hosting queued did not stop")
	}
	// Read the output only after the command has returned.
	if !strings.Contains(errb.String(), "aegir dispatcher stopped") {
		t.Fatalf("daemon output:\n%s", errb.String())
	}
}

func TestHostingQueues(t *testing.T) {
	home := newHome(t)
	cfg := filepath.Join(home, "aegir.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte("queue:\n  backup:\n    enabled: true\n    frequency: 12h\n")...)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var qs []struct {
		Name        string `json:"name"`
		Enabled     bool   `json:"enabled"`
		Frequency   string `json:"frequency"`
		ItemsPerRun *int   `json:"items_per_run"`
		ItemsDue    *int   `json:"items_due"`
		LastRun     any    `json:"last_run"`
	}
	if err := json.Unmarshal([]byte(must(t, home, "hosting", "queues", "--format", "json")), &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 5 || qs[0].Name != "cron" || !qs[0].Enabled || qs[0].Frequency != "1h" ||
		qs[1].Name != "backup" || !qs[1].Enabled || qs[1].Frequency != "12h" || qs[2].Name != "stats" ||
		qs[3].Name != "health" || !qs[3].Enabled || qs[3].Frequency != "1h" || qs[4].Name != "cert" ||
		qs[0].ItemsPerRun == nil || qs[0].ItemsDue == nil {
		t.Fatalf("queues %+v", qs)
	}
	if err := os.WriteFile(cfg, []byte("queue:\n  cron:\n    frequency: -1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, home, "hosting", "queues"); code != 2 || !strings.Contains(errs, "invalid queue.cron.frequency") {
		t.Fatalf("bad frequency: exit %d, %q", code, errs)
	}
}

func TestHostingCronInstallPrint(t *testing.T) {
	home := newHome(t)
	out := must(t, home, "hosting", "cron-install", "--print")
	re := regexp.MustCompile(`^\* \* \* \* \* /\S+ --home ` + regexp.QuoteMeta(home) + ` hosting dispatch --quiet # aegir dispatch ` + regexp.QuoteMeta(home) + "\n$")
	if !re.MatchString(out) {
		t.Fatalf("crontab line %q", out)
	}
	if err := os.WriteFile(filepath.Join(home, "aegir.yaml"), []byte("queue:\n  interval: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := must(t, home, "hosting", "cron-install", "--print"); !strings.HasPrefix(out, "*/5 * * * * ") {
		t.Fatalf("5-minute line %q", out)
	}
	if err := os.WriteFile(filepath.Join(home, "aegir.yaml"), []byte("queue:\n  interval: 7m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := aegir(t, home, "hosting", "cron-install", "--print"); code != 2 || !strings.Contains(errs, "must divide an hour") {
		t.Fatalf("7m interval: exit %d, %q", code, errs)
	}
}
