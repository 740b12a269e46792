package hosting_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	_ "github.com/aegir-project/aegir/pkg/provision/tasks" // the back end's task types
	"github.com/aegir-project/aegir/pkg/store"
)

// hostEnv is an aegir home with its state store, a private nginx and
// php-fpm as server web1 (with the shared MariaDB as its database
// service), and a Runner for it.
type hostEnv struct {
	ctx  context.Context
	home string
	st   *store.Store
	web  *testenv.Web
	r    *hosting.Runner
}

func newHostEnv(t *testing.T) *hostEnv {
	t.Helper()
	ctx := context.Background()
	home := filepath.Join(testenv.PublicDir(t), "home")
	for _, d := range []string{"config", "backups", "templates"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// As aegir init leaves them: the web server's workers pass through
	// the home and read config/.
	if err := os.Chmod(home, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(home, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(home, "aegir.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := testenv.StartNginx(t, filepath.Join(home, "config", "web1"))
	fpm := testenv.StartPHPFPM(t)
	if _, err := st.AddServer(ctx, &entities.Server{Name: "web1", Host: "localhost", Services: []entities.Service{
		{Kind: entities.KindHTTP, Type: "nginx", Port: w.Port, HTTPSPort: w.HTTPSPort, TestCmd: w.TestCmd, RestartCmd: w.ReloadCmd,
			PHPFPM: fpm.Socket, ListenIP: "127.0.0.1"},
		{Kind: entities.KindDB, Type: "mariadb", Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"},
	}}); err != nil {
		t.Fatal(err)
	}
	pool := engine.NewPool(home)
	t.Cleanup(pool.Close)
	r := &hosting.Runner{Store: st, Home: home, Pool: pool, Settings: hosting.Settings{
		WebUser: "www-data", WebGroup: "www-data", BackupDir: filepath.Join(home, "backups"),
		// The sites' logs and the logrotate file are the test's.
		FPM: provision.FPMSpec{RuntimeDir: filepath.Join(home, "runtime"), LogrotateFile: filepath.Join(home, "logrotate.conf")}}}
	return &hostEnv{ctx: ctx, home: home, st: st, web: w, r: r}
}

// taskLog is a task's log lines, kept for the test's messages.
type taskLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *taskLog) Log(level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+": "+msg)
}

func (l *taskLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// run runs task t through the Runner; it fails the test unless the task
// ends with status want.
func (h *hostEnv) run(t *testing.T, task *entities.Task, want string) (hosting.Outcome, *taskLog) {
	t.Helper()
	log := &taskLog{}
	o := h.r.Run(h.ctx, task, log)
	if o.Status != want {
		t.Fatalf("%s %s: status %s, want %s: %s (hint: %s)\n%s", task.Type, task.Target, o.Status, want, o.Error, o.Hint, log)
	}
	return o, log
}

// wpPlatform adds a copy of Debian's WordPress as platform name on web1,
// and returns it as the store has it.
func (h *hostEnv) wpPlatform(t *testing.T, name string) *entities.Platform {
	t.Helper()
	root := testenv.WordPressPlatform(t)
	if _, err := h.st.AddPlatform(h.ctx, &entities.Platform{Name: name, Server: "web1", Root: root}); err != nil {
		t.Fatal(err)
	}
	return h.platform(t, name)
}

func (h *hostEnv) platform(t *testing.T, name string) *entities.Platform {
	return found(h.st.GetPlatform(h.ctx, name))(t)
}

func (h *hostEnv) site(t *testing.T, domain string) *entities.Site {
	return found(h.st.GetSite(h.ctx, domain))(t)
}

func (h *hostEnv) server(t *testing.T, name string) *entities.Server {
	return found(h.st.GetServer(h.ctx, name))(t)
}

// found is what a store lookup found; the test fails if it failed.
func found[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// editService changes server web1's service of kind as edit says, as
// aegir server edit does.
func (h *hostEnv) editService(t *testing.T, kind string, edit func(*entities.Service)) {
	t.Helper()
	s := h.server(t, "web1")
	for i := range s.Services {
		if s.Services[i].Kind == kind {
			edit(&s.Services[i])
		}
	}
	if _, err := h.st.UpdateServer(h.ctx, s); err != nil {
		t.Fatal(err)
	}
}

// addSite records site domain on the platform, and returns its install
// task.
func (h *hostEnv) addSite(t *testing.T, domain, platform, https string) *entities.Task {
	t.Helper()
	task, err := h.st.AddSiteWithOptions(h.ctx, &entities.Site{Domain: domain, Platform: platform, DBServer: "web1",
		Profile: "standard", Language: "en", HTTPS: https},
		map[string]string{hosting.OptTitle: domain, hosting.OptAdminUser: "admin", hosting.OptAdminEmail: "admin@" + domain})
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// siteTask queues a task of type typ on site domain.
func (h *hostEnv) siteTask(t *testing.T, domain, typ string, opts map[string]string) *entities.Task {
	t.Helper()
	task, err := h.st.QueueSiteTask(h.ctx, h.site(t, domain), typ, opts)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// mariadbHas says whether the shared MariaDB has the database (or, with
// user, the account) name.
func mariadbHas(t *testing.T, what, name string) bool {
	t.Helper()
	m, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	q := `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`
	if what == "user" {
		q = `SELECT COUNT(*) FROM mysql.user WHERE User = ?`
	}
	var n int
	if err := m.QueryRow(q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// canLogIn says whether user/password open database name on MariaDB.
func canLogIn(user, password, name string) error {
	m, err := sql.Open("mysql", user+":"+password+"@tcp(127.0.0.1:3306)/"+name)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Ping()
}

var _ provision.Logger = (*taskLog)(nil)
