package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	return twoMastersOn(t, testenv.StateDatabase(t))
}

// twoMastersOn is twoMasters on the state dsn (a PostgreSQL DSN, or the
// path of a SQLite file both homes use).
func twoMastersOn(t *testing.T, dsn string) (a *hostEnv, b, _ string) {
	t.Helper()
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
		_, m, _ := strings.Cut(k.Worker, "@") // pid@master/machine
		m, _, _ = strings.Cut(m, "/")
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

// hungMove is a real WordPress site's migrate to another platform on
// master a of twoMasters, held in WordPress's update step on the new
// platform while the file hang exists.
type hungMove struct {
	a        *hostEnv
	b, dsn   string
	domain   string
	db1      string // the site's database before the move
	id       string // the migrate's task
	n        int64
	hang     string
	ma       *exec.Cmd // master a's dispatch
	st       *store.Store
	started  *entities.Task // the migrate as it ran, with its lease
	wp2Files string         // the site's settings on the new platform
}

// startHungMove queues the migrate on master a and starts a's dispatch,
// and returns once the update step runs.
func startHungMove(t *testing.T) *hungMove {
	t.Helper()
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
	m := &hungMove{a: a, b: b, dsn: dsn, domain: domain, db1: db1, hang: hang, wp2Files: filepath.Join(root2, "wp-content", "aegir-sites", domain+".php")}
	m.id = strings.TrimSpace(must(t, a.home, "site", "migrate", domain, "--platform", "wp2", "--queue"))
	m.ma = startMaster(t, a.home, "hosting", "dispatch", "--workers", "4")
	waitFor(t, "the migrate's WordPress step on wp2", func() bool { return exists(reached) })
	if !exists(m.wp2Files) {
		t.Errorf("the migrate wrote no settings at %s on the new platform", m.wp2Files)
	}
	m.st = openState(t, dsn)
	var err error
	if m.n, err = strconv.ParseInt(m.id, 10, 64); err != nil {
		t.Fatal(err)
	}
	if _, err := m.st.MoveJournal(context.Background(), m.n); err != nil {
		t.Errorf("the running migrate's journal in the state: %v", err)
	}
	m.started, err = m.st.GetTask(context.Background(), m.n)
	if err != nil || m.started.LeaseUntil == nil {
		t.Fatalf("the running migrate: %+v %v", m.started, err)
	}
	return m
}

// lastLease notes the migrate's lease as master a renewed it last.
func (m *hungMove) lastLease() {
	if k, err := m.st.GetTask(context.Background(), m.n); err == nil && k.LeaseUntil != nil {
		m.started = k
	}
}

// rescueOnB runs master b's dispatch again until the migrate is rescued
// (not before its lease, 10s, has run out), and checks that b played the
// move back: the site on its platform with its one database, answering,
// its journal and locks gone. It returns the migrate's log.
func (m *hungMove) rescueOnB(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); taskStatus(t, m.b, m.id) == entities.TaskProcessing; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("the other master never rescued the migrate")
		}
		if err := startMaster(t, m.b, "hosting", "dispatch", "--workers", "4").Wait(); err != nil {
			t.Fatalf("master b's dispatch: %v", err)
		}
	}
	log := must(t, m.b, "task", "log", m.id)
	if st := taskStatus(t, m.b, m.id); st != entities.TaskError || !strings.Contains(log, "undoing the migrate of "+m.domain) || !strings.Contains(log, "stopped renewing") {
		t.Fatalf("the migrate after master b's dispatch: %s\n%s", st, log)
	}
	if k, err := m.st.GetTask(context.Background(), m.n); err != nil || k.Finished == nil || k.Finished.Before(*m.started.LeaseUntil) {
		t.Errorf("the migrate rescued at %v, before its lease ran out at %s (%v)", k.Finished, m.started.LeaseUntil, err)
	}
	m.checkPlayedBack(t)
	return log
}

// checkPlayedBack checks that the site is as before the move, and
// answers.
func (m *hungMove) checkPlayedBack(t *testing.T) {
	t.Helper()
	if rec := siteRecord(t, m.b, m.domain); rec["platform"] != "wp1" || rec["db_name"] != m.db1 {
		t.Fatalf("the site's record after the rescue: platform %v, database %v; want wp1, %s", rec["platform"], rec["db_name"], m.db1)
	}
	if dbs := siteDBs(t, m.domain); len(dbs) != 1 || dbs[0] != m.db1 {
		t.Fatalf("databases after the rescue: %v, want only %s", dbs, m.db1)
	}
	if _, err := m.st.MoveJournal(context.Background(), m.n); err == nil {
		t.Fatal("the journal stays in the state after the rescue")
	}
	if locks, err := m.st.MoveLocks(context.Background()); err != nil || len(locks) != 0 {
		t.Fatalf("move locks left: %v %v", locks, err)
	}
	if exists(m.wp2Files) {
		t.Fatalf("the site's settings on the new platform stay: %s", m.wp2Files)
	}
	code, body, _ := m.a.get(t, m.domain, "/", func(code int, body string, _ http.Header) bool {
		return code == 200 && strings.Contains(body, "Content that stays")
	})
	if code != 200 || !strings.Contains(body, "Content that stays") {
		t.Fatalf("the site after the rescue answers %d", code)
	}
}

// A master killed (SIGKILL) in the middle of a real WordPress site's
// migrate to another platform, while WordPress's update step runs on the
// new platform: the other master's dispatch, once the lease has run out
// (not before: it judges a worker of another master by its lease alone),
// plays the move's journal back from the state, and the site answers on
// its platform as before, its new database dropped.
func TestMasterKilledMidMoveFailsOver(t *testing.T) {
	t.Parallel()
	m := startHungMove(t)
	killDispatcher(m.ma, m.ma.Process.Pid)
	killedAt := time.Now()
	m.lastLease()
	_ = os.Remove(m.hang)
	m.rescueOnB(t)
	t.Logf("rescued by the other master %s after the kill", time.Since(killedAt).Round(100*time.Millisecond))
	must(t, m.b, "site", "delete", m.domain, "--no-backup", "-q")
}

// A master stopped (SIGSTOP) in the middle of the same migrate for longer
// than the lease: the other master takes the task and its move lock over
// and plays the move back. Then the first master goes on (SIGCONT), the
// update step it waited for done meanwhile: it finds its move lock
// another's and stops where it is, with no further step and no rollback
// of its own, its task failed with the one line that says so; the site
// stays as the playback left it, answering on its platform.
func TestMasterPausedMidMoveStops(t *testing.T) {
	t.Parallel()
	m := startHungMove(t)
	// The dispatcher alone: the update step's PHP runs on, and ends when
	// hang goes, while the dispatcher cannot see it.
	if err := syscall.Kill(m.ma.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	t.Cleanup(func() {
		if stopped {
			_ = syscall.Kill(m.ma.Process.Pid, syscall.SIGCONT)
		}
	})
	m.lastLease()
	log := m.rescueOnB(t)
	_ = os.Remove(m.hang)
	if err := syscall.Kill(m.ma.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	if err := m.ma.Wait(); err != nil {
		t.Logf("master a's dispatch after SIGCONT: %v", err)
	}
	after := strings.TrimPrefix(must(t, m.b, "task", "log", m.id), log)
	if !strings.Contains(after, "another master took over this migrate of "+m.domain) {
		t.Fatalf("master a's lines after SIGCONT do not say the move was taken over:\n%s", after)
	}
	for _, no := range []string{"rolling back", "rollback:", "migrate of " + m.domain + " done", "saving the task's results"} {
		if strings.Contains(after, no) {
			t.Errorf("master a went on after it lost its move lock (%q):\n%s", no, after)
		}
	}
	m.checkPlayedBack(t)
	t.Logf("master a's lines after SIGCONT:\n%s", after)
	must(t, m.b, "site", "delete", m.domain, "--no-backup", "-q")
}

// A task of master a hung in a command on a remote server (a web server's
// configuration test that sleeps), and a killed (SIGKILL): the command
// outlives its master, recorded in the state. Master b's dispatch, once
// the lease has run out, rescues the task, kills that command on the
// server over SSH (as the user it ran as), and forgets the record.
func TestMasterKilledRemoteCommandIsKilled(t *testing.T) {
	t.Parallel()
	a, b, dsn := twoMasters(t)
	srv, n := queueHangingVerify(t, a.home)
	id := strconv.FormatInt(n, 10)
	st := openState(t, dsn)
	ctx := context.Background()
	ma := startMaster(t, a.home, "hosting", "dispatch", "--workers", "4")
	var p store.TaskProcess
	waitFor(t, "the remote configuration test recorded in the state", func() bool {
		procs, _ := st.TaskProcesses(ctx, n)
		for _, r := range procs {
			if cmd, _ := os.ReadFile("/proc/" + r.PID + "/cmdline"); strings.Contains(string(cmd), "3600") {
				p = r
				return true
			}
		}
		return false
	})
	pid, err := strconv.Atoi(p.PID)
	if err != nil || p.User != srv.User || p.Master != "ma" {
		t.Fatalf("the record: %+v", p)
	}
	killDispatcher(ma, ma.Process.Pid)
	if !testenv.ProcessAlive(pid) {
		t.Fatalf("the remote command (pid %d) did not outlive its master; the test proves nothing", pid)
	}
	for deadline := time.Now().Add(90 * time.Second); taskStatus(t, b, id) == entities.TaskProcessing; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("the other master never rescued the killed task")
		}
		if err := startMaster(t, b, "hosting", "dispatch", "--workers", "4").Wait(); err != nil {
			t.Fatalf("master b's dispatch: %v", err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); testenv.ProcessAlive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the remote command (pid %d) still runs after master b's rescue:\n%s", pid, must(t, b, "task", "log", id))
		}
	}
	log := must(t, b, "task", "log", id)
	if !strings.Contains(log, "killed process group "+p.PID) {
		t.Errorf("the rescue's log does not name the kill:\n%s", log)
	}
	if left, err := st.TaskProcesses(ctx, n); err != nil || len(left) != 0 {
		t.Errorf("records left after the rescue: %+v %v", left, err)
	}
	t.Logf("the rescue's log:\n%s", log)
}

// Two masters with one name (ma), their homes on one state, one of them in
// a PID namespace of its own (unshare --pid), as two machines with the same
// host name are: ma's server verify hangs in a command on a remote server
// (a private sshd on loopback; the web server's configuration test is
// sleep 3600), and the other's hosting dispatch, in which ma's dispatcher
// has no pid, leaves the task alone (its worker is of another machine, and
// its lease is renewed), and says in one line that another master named
// ma holds leases here. The remote command runs on.
func TestSameNameMastersKeepTheirTasks(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("unshare --pid: %v (needs root)", err)
	}
	a, b, dsn := twoMasters(t)
	for _, home := range []string{a.home, b} {
		// The lease outlasts the test: only the machine keeps the task.
		cfg, err := os.ReadFile(filepath.Join(home, "aegir.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(strings.Replace(string(cfg), "master: mb\n", "master: ma\n", 1), "lease: 10s\n", "lease: 10m\n", 1)
		if err := os.WriteFile(filepath.Join(home, "aegir.yaml"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, n := queueHangingVerify(t, a.home)
	id := strconv.FormatInt(n, 10)
	st := openState(t, dsn)
	ctx := context.Background()
	startMaster(t, a.home, "hosting", "dispatch", "--workers", "4")
	var pid int
	waitFor(t, "the remote configuration test recorded in the state", func() bool {
		procs, _ := st.TaskProcesses(ctx, n)
		for _, r := range procs {
			if cmd, _ := os.ReadFile("/proc/" + r.PID + "/cmdline"); strings.Contains(string(cmd), "3600") {
				pid, _ = strconv.Atoi(r.PID)
				return true
			}
		}
		return false
	})
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL); _ = syscall.Kill(pid, syscall.SIGKILL) })
	before, err := st.GetTask(ctx, n)
	if err != nil {
		t.Fatal(err)
	}

	inner := aegirCmd(t, b, "hosting", "dispatch", "--workers", "4", "--format", "json")
	cmd := exec.Command("unshare", append([]string{"--pid", "--fork", "--mount-proc", inner.Path}, inner.Args[1:]...)...)
	cmd.Env = inner.Env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the namesake's dispatch: %v\n%s", err, stderr.String())
	}
	var sum struct{ Rescued []int64 }
	if err := json.Unmarshal([]byte(stdout.String()), &sum); err != nil || sum.Rescued == nil || len(sum.Rescued) != 0 {
		t.Errorf("the namesake's dispatch rescued a task: %s\n%s", stdout.String(), stderr.String())
	}
	if after, err := st.GetTask(ctx, n); err != nil || after.Status != entities.TaskProcessing || after.Worker != before.Worker || after.Attempt != 1 {
		t.Errorf("ma's task after the namesake's dispatch: %+v %v (worker before: %s)", after, err, before.Worker)
	}
	if !testenv.ProcessAlive(pid) {
		t.Errorf("the remote command (pid %d) was killed by the namesake's dispatch:\n%s", pid, must(t, a.home, "task", "log", id))
	}
	if got := strings.Count(stderr.String(), `another master named "ma" (machine `); got != 1 ||
		!strings.Contains(stderr.String(), "holds leases here: give each master its own master: in aegir.yaml") {
		t.Errorf("the namesake's dispatch warned %d times of master ma:\n%s", got, stderr.String())
	}
	t.Logf("the namesake's dispatch:\n%s%s", stdout.String(), stderr.String())
}

// queueHangingVerify queues, on home, the add of a server web9 on a
// private sshd whose verify hangs in its web server's configuration test
// (sleep 3600, a process on the server), and returns the sshd and the
// task's id.
func queueHangingVerify(t *testing.T, home string) (*testenv.SSHD, int64) {
	t.Helper()
	srv := testenv.StartSSHD(t)
	remoteHome := filepath.Join(srv.UserTempDir(t), "aegir")
	id := strings.TrimSpace(must(t, home, "server", "add", "web9", "--host", srv.Host, "--ssh-user", srv.User, "--ssh-port", itoa(srv.Port),
		"--ssh-key", srv.KeyFile, "--accept-host-key", "--remote-home", remoteHome, "--http", "nginx", "--http-test-cmd", "sleep 3600",
		"--php-fpm", "127.0.0.1:9", "--queue"))
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("server add --queue printed %q", id)
	}
	return srv, n
}
