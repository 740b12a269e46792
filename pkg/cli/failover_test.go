package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/store"
)

// twoMasters makes two aegir homes on one new PostgreSQL state (its own
// database, dropped when the test ends), as two masters would have: a's
// with the web server web1 (this machine's nginx, php-fpm, MariaDB); b's
// a copy of a's configuration whose config/ is a's (the web server's
// configuration on storage both masters share). The lease is 10s; the
// masters are named ma and mb (the master key), so that each judges the
// other's workers by their leases, as masters on two machines do.
func twoMasters(t *testing.T) (a *hostEnv, b, dsn string) {
	t.Helper()
	dsn = testenv.StateDatabase(t)
	a = startHost(t, "nginx", func(t testing.TB) *testenv.PHPFPM { return testenv.StartPHPFPM(t) }, func(home string, _ *testenv.PHPFPM) {
		f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintf(f, "state: %s\nlease: 10s\nmaster: ma\n", dsn)
		must(t, home, "init", "-q")
	})
	b = filepath.Join(testenv.PublicDir(t), "home")
	cfg, err := os.ReadFile(filepath.Join(a.home, "aegir.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, b, strings.Replace(string(cfg), "master: ma\n", "master: mb\n", 1))
	for _, d := range []string{"backups", "templates"} {
		if err := os.MkdirAll(filepath.Join(b, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(a.home, "config"), filepath.Join(b, "config")); err != nil {
		t.Fatal(err)
	}
	return a, b, dsn
}

// startMaster starts aegir on home in a process and process group of its
// own.
func startMaster(t *testing.T, home string, args ...string) *exec.Cmd {
	t.Helper()
	return startAegir(t, home, append([]string{"-q"}, args...)...)
}

func openState(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Two masters, two homes on one PostgreSQL state, each running hosting
// dispatch --workers 4 as a process of its own over 500 platform verifies
// queued on 50 platforms: every task runs once (one attempt, success),
// a platform's tasks one after the other in the order they were queued,
// and both masters run some.
func TestTwoMastersDispatch(t *testing.T) {
	t.Parallel()
	a, b, dsn := twoMasters(t)
	ctx := context.Background()
	st := openState(t, dsn)
	dir := testenv.PublicDir(t)
	var ids []int64
	for i := range 50 {
		root := filepath.Join(dir, "p"+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Join(root, "wp-includes"), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, body := range map[string]string{"wp-includes/version.php": "<?php $wp_version = '6.4.1';\n", "wp-load.php": "", "index.php": ""} {
			if err := os.WriteFile(filepath.Join(root, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		name := "p" + strconv.Itoa(i)
		must(t, a.home, "platform", "add", name, "--server", "web1", "--root", root, "--queue")
		p, err := st.GetPlatform(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	// 50 platform adds' verifies, and 450 more, 10 per platform.
	for range 9 {
		for i, id := range ids {
			if _, err := st.QueueTask(ctx, entities.TaskPlatformVerify, entities.TargetPlatform, id, "p"+strconv.Itoa(i), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	ma := startMaster(t, a.home, "hosting", "dispatch", "--workers", "4")
	mb := startMaster(t, b, "hosting", "dispatch", "--workers", "4")
	for _, m := range []*exec.Cmd{ma, mb} {
		if err := m.Wait(); err != nil {
			t.Errorf("a master's dispatch: %v", err)
		}
	}
	tasks, err := st.ListTasks(ctx, store.TaskFilter{TargetKind: entities.TargetPlatform})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 500 {
		t.Fatalf("%d tasks, want 500", len(tasks))
	}
	byTarget := map[int64][]*entities.Task{}
	ran := map[string]int{}
	for _, k := range tasks {
		if k.Status != entities.TaskSuccess || k.Attempt != 1 || k.Started == nil || k.Finished == nil {
			t.Errorf("task %d (%s): %s after %d attempts", k.ID, k.Target, k.Status, k.Attempt)
			continue
		}
		byTarget[k.TargetID] = append(byTarget[k.TargetID], k)
		_, m, _ := strings.Cut(k.Worker, "@")
		ran[m]++
	}
	for _, list := range byTarget {
		slices.SortFunc(list, func(x, y *entities.Task) int { return int(x.ID - y.ID) })
		for i := 1; i < len(list); i++ {
			if list[i].Started.Before(*list[i-1].Finished) {
				t.Errorf("%s: task %d started at %s, before task %d ended at %s", list[i].Target, list[i].ID, list[i].Started, list[i-1].ID, list[i-1].Finished)
			}
		}
	}
	if ran["ma"] == 0 || ran["mb"] == 0 || ran["ma"]+ran["mb"] != 500 {
		t.Errorf("tasks run by each master: %v, want both, 500 in all", ran)
	}
	t.Logf("tasks run by each master: %v", ran)
}

// A master killed (SIGKILL) in the middle of a real WordPress site's
// migrate to another platform, while WordPress's update step runs on the
// new platform: the other master's dispatch, once the lease has run out
// (not before: it judges a worker of another master by its lease alone),
// plays the move's journal back from the state, and the site answers on
// its platform as before, its new database dropped.
func TestMasterKilledMidMoveFailsOver(t *testing.T) {
	t.Parallel()
	a, b, dsn := twoMasters(t)
	root1, root2 := a.wpPlatform(t, "wp1"), a.wpPlatform(t, "wp2")
	domain, db1 := wordPressSite(t, a, "wp1", root1, "fo", false, "Content that stays", "stays.txt")
	flags := testenv.PublicDir(t)
	if err := os.Chmod(flags, 0o777); err != nil {
		t.Fatal(err)
	}
	hang, reached := filepath.Join(flags, "hang"), filepath.Join(flags, "reached")
	plugin := `<?php
if (PHP_SAPI === 'cli' && file_exists('` + hang + `')) {
	file_put_contents('` + reached + `', '1');
	while (file_exists('` + hang + `')) { usleep(50000); }
}
`
	if err := os.MkdirAll(filepath.Join(root2, "wp-content/mu-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root2, "wp-content/mu-plugins/aegir-hang.php"), []byte(plugin), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(must(t, a.home, "site", "migrate", domain, "--platform", "wp2", "--queue"))
	ma := startMaster(t, a.home, "hosting", "dispatch", "--workers", "4")
	waitFor(t, "the migrate's WordPress step on wp2", func() bool { return exists(reached) })
	st := openState(t, dsn)
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MoveJournal(context.Background(), n); err != nil {
		t.Errorf("the running migrate's journal in the state: %v", err)
	}
	running, err := st.GetTask(context.Background(), n)
	if err != nil || running.LeaseUntil == nil {
		t.Fatalf("the running migrate: %+v %v", running, err)
	}
	killDispatcher(ma, ma.Process.Pid)
	killedAt := time.Now()
	// Its last lease: ma renewed it last before the kill.
	if k, err := st.GetTask(context.Background(), n); err == nil && k.LeaseUntil != nil {
		running = k
	}
	_ = os.Remove(hang)

	// Master b's dispatch, again until the task is rescued: not before
	// the lease (10s) has run out.
	for deadline := time.Now().Add(90 * time.Second); taskStatus(t, b, id) == entities.TaskProcessing; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("the other master never rescued the killed migrate")
		}
		if err := startMaster(t, b, "hosting", "dispatch", "--workers", "4").Wait(); err != nil {
			t.Fatalf("master b's dispatch: %v", err)
		}
	}
	after := time.Since(killedAt)
	log := must(t, b, "task", "log", id)
	if st := taskStatus(t, b, id); st != entities.TaskError || !strings.Contains(log, "undoing the migrate of "+domain) || !strings.Contains(log, "stopped renewing") {
		t.Fatalf("the killed migrate after master b's dispatch: %s\n%s", st, log)
	}
	if k, err := st.GetTask(context.Background(), n); err != nil || k.Finished == nil || k.Finished.Before(*running.LeaseUntil) {
		t.Errorf("the migrate rescued at %v, before its lease ran out at %s (%v)", k.Finished, running.LeaseUntil, err)
	}
	if rec := siteRecord(t, b, domain); rec["platform"] != "wp1" || rec["db_name"] != db1 {
		t.Fatalf("the site's record after the rescue: platform %v, database %v; want wp1, %s", rec["platform"], rec["db_name"], db1)
	}
	if dbs := siteDBs(t, domain); len(dbs) != 1 || dbs[0] != db1 {
		t.Fatalf("databases after the rescue: %v, want only %s", dbs, db1)
	}
	if _, err := st.MoveJournal(context.Background(), n); err == nil {
		t.Fatal("the journal stays in the state after the rescue")
	}
	if locks, err := st.MoveLocks(context.Background()); err != nil || len(locks) != 0 {
		t.Fatalf("move locks left: %v %v", locks, err)
	}
	code, body, _ := a.get(t, domain, "/", func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, "Content that stays")
	})
	if code != 200 || !strings.Contains(body, "Content that stays") {
		t.Fatalf("the site after the rescue answers %d", code)
	}
	t.Logf("rescued by the other master %s after the kill", after.Round(100*time.Millisecond))
	must(t, b, "site", "delete", domain, "--no-backup", "-q")
}
