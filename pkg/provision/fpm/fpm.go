// Package fpm gives an isolated site its own runtime on its web server: a
// Unix user (entities.SiteUnixUser), a php-fpm pool that runs as that user
// with its own socket, open_basedir, temporary and session directories and
// PHP error log, and the directories that hold them.
//
// # Layout on the web server
//
//	POOLDIR/aegir-USER.conf         the site's pool (POOLDIR: FPMSpec.PoolDir for its PHP version)
//	RUNTIME/fpm/USER.sock           its socket (www-data may connect)
//	RUNTIME/sites/DOMAIN/           root:USER 0750
//	RUNTIME/sites/DOMAIN/tmp/       USER 0700: upload_tmp_dir, sys_temp_dir
//	RUNTIME/sites/DOMAIN/sessions/  USER 0700: session.save_path
//	RUNTIME/sites/DOMAIN/logs/      root:USER 0750: the virtual host's logs, php.log (USER 0640)
//
// A pool file is written only when its bytes change, then php-fpm's own
// test (php-fpmX.Y -t) runs; when the test fails the previous file is put
// back (or the new one removed), so php-fpm keeps its last good
// configuration, and the task fails with the test's output. Reloads go
// through the run's engine.ReloadSet, so tasks that change pools of one
// php-fpm at about the same time share one reload.
//
// The test and reload commands are the administrator's configuration
// (aegir.yaml php_fpm.test_cmd, php_fpm.reload_cmd), trusted as a crontab
// line is: they run through `sh -c` as given, with {version} replaced by a
// version that ValidatePHPVersion accepted.
package fpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/priv"
)

// Defaults of the FPMSpec fields: Debian's php-fpm packages.
const (
	DefaultPoolDir    = "/etc/php/{version}/fpm/pool.d"
	DefaultTestCmd    = "/usr/sbin/php-fpm{version} -t"
	DefaultReloadCmd  = "kill -USR2 \"$(cat /run/php/php{version}-fpm.pid)\""
	DefaultRuntimeDir = "/var/lib/aegir"
	// DefaultLogrotateFile is where the sites' logs are given to the
	// system's logrotate.
	DefaultLogrotateFile = "/etc/logrotate.d/aegir"
	// DefaultDisableFunctions are the functions an isolated site's PHP
	// may not call: running programs.
	DefaultDisableFunctions = "exec,passthru,shell_exec,system,proc_open,popen,pcntl_exec"
	// BinDir is where php-fpm's binaries are looked for (php-fpmX.Y).
	BinDir = "/usr/sbin"
)

// Config is how one web server's php-fpm takes isolated sites' pools.
type Config struct {
	provision.FPMSpec
	WebUser, WebGroup string // who may connect to the sockets (the web server)
	// Helper, for a remote server whose SSH user is not root, is the
	// privileged helper there (priv.DefaultPath when its Path is empty):
	// the users, pools, php-fpm's test and reload, the runtime
	// directories and what the deploy user may not chown go through it
	// (`sudo -n aegir-priv OP`), which checks each against its own
	// configuration. Nil: aegir is root on the server and does them
	// itself.
	Helper *priv.Client
}

// Runtime is one web server's php-fpm, for one task.
type Runtime struct {
	cfg Config
	ex  exec.Executor
	env *engine.Env
}

var funcRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// New checks cfg and fills in its defaults.
func New(ex exec.Executor, cfg Config, env *engine.Env) (*Runtime, error) {
	if cfg.PoolDir == "" {
		cfg.PoolDir = DefaultPoolDir
	}
	if cfg.TestCmd == "" {
		cfg.TestCmd = DefaultTestCmd
	}
	if cfg.ReloadCmd == "" {
		cfg.ReloadCmd = DefaultReloadCmd
	}
	if cfg.RuntimeDir == "" {
		cfg.RuntimeDir = DefaultRuntimeDir
	}
	if cfg.LogrotateFile == "" {
		cfg.LogrotateFile = DefaultLogrotateFile
	}
	if cfg.WebUser == "" {
		cfg.WebUser = "www-data"
	}
	if cfg.WebGroup == "" {
		cfg.WebGroup = cfg.WebUser
	}
	if err := CheckConfig(cfg.FPMSpec); err != nil {
		return nil, provision.Errorf(provision.ErrInvalidContext, "correct it in aegir.yaml (docs/isolation.md)", "%v", err)
	}
	if env == nil {
		env = &engine.Env{}
	}
	return &Runtime{cfg: cfg, ex: ex, env: env}, nil
}

// CheckConfig checks the settings as the front end takes them (empty
// values are the defaults): paths absolute and clean, commands one line,
// function names PHP identifiers.
func CheckConfig(s provision.FPMSpec) error {
	if s.PoolDir != "" {
		if err := entities.ValidateServerPath("php_fpm.pool_dir", strings.ReplaceAll(s.PoolDir, "{version}", "8.2")); err != nil {
			return err
		}
	}
	for k, v := range map[string]string{"php_fpm.runtime_dir": s.RuntimeDir, "php_fpm.logrotate_file": s.LogrotateFile, "php_fpm.helper": s.Helper} {
		if v != "" {
			if err := entities.ValidateServerPath(k, v); err != nil {
				return err
			}
		}
	}
	for k, v := range map[string]string{"php_fpm.test_cmd": s.TestCmd, "php_fpm.reload_cmd": s.ReloadCmd} {
		if strings.ContainsAny(v, "\x00\n\r") {
			return entities.Invalid(k, v, "must be one line")
		}
	}
	for _, f := range splitList(s.DisableFunctions) {
		if !funcRe.MatchString(f) {
			return entities.Invalid("php_fpm.disable_functions", s.DisableFunctions, "must be PHP function names separated by commas")
		}
	}
	return nil
}

// splitList are the names of a comma-separated list, blanks dropped.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Site is one isolated site's runtime.
type Site struct {
	Domain  string
	User    string // entities.SiteUnixUser(Domain)
	Version string // PHP MAJOR.MINOR
	Root    string // the platform's root: open_basedir
	// Also are more directories its PHP may open (open_basedir): the
	// platform a site leaves while its move to another one runs.
	Also []string
}

// check checks a site for its pool: with its PHP version.
func (r *Runtime) check(s Site) error {
	if err := r.checkUser(s); err != nil {
		return err
	}
	if err := entities.ValidatePHPVersion("site.php", s.Version); err != nil || s.Version == "" {
		return provision.Errorf(provision.ErrInvalidContext, "give the site's PHP version (8.2)", "invalid PHP version %q", s.Version)
	}
	return nil
}

// checkUser checks a site for its user and directories.
func (r *Runtime) checkUser(s Site) error {
	if err := entities.ValidateDomain("site.domain", s.Domain, false); err != nil {
		return provision.Errorf(provision.ErrInvalidContext, "give a valid site.domain", "%v", err)
	}
	if s.User != entities.SiteUnixUser(s.Domain) {
		return provision.Errorf(provision.ErrInvalidContext, "a site's user is named after its domain", "site user %q is not %s's", s.User, s.Domain)
	}
	for _, p := range append([]string{s.Root}, s.Also...) {
		if err := entities.ValidateServerPath("site.platform.root", p); err != nil {
			return provision.Errorf(provision.ErrInvalidContext, "give a valid site.platform.root", "%v", err)
		}
	}
	return nil
}

func (r *Runtime) expand(s, version string) string {
	return strings.ReplaceAll(s, "{version}", version)
}

// PoolDir is the pool directory of a PHP version.
func (r *Runtime) PoolDir(version string) string { return r.expand(r.cfg.PoolDir, version) }

// PoolFile is the pool file of a site's user for a PHP version.
func (r *Runtime) PoolFile(version, user string) string {
	return path.Join(r.PoolDir(version), "aegir-"+user+".conf")
}

// Socket is where the pool of a site's user listens.
func (r *Runtime) Socket(user string) string { return path.Join(r.cfg.RuntimeDir, "fpm", user+".sock") }

// SiteDir is a site's own directory of the runtime (tmp, sessions, logs).
func (r *Runtime) SiteDir(domain string) string { return path.Join(r.cfg.RuntimeDir, "sites", domain) }

// LogDir is where a site's logs are: its virtual host's and its pool's.
func (r *Runtime) LogDir(domain string) string { return path.Join(r.SiteDir(domain), "logs") }

// Log kinds of a site: its virtual host's access and error logs, its
// pool's PHP errors (isolated sites only).
const (
	LogAccess = "access"
	LogError  = "error"
	LogPHP    = "php"
)

// LogFile is the file of one of a site's logs, under runtimeDir (empty:
// DefaultRuntimeDir).
func LogFile(runtimeDir, domain, kind string) string {
	if runtimeDir == "" {
		runtimeDir = DefaultRuntimeDir
	}
	return path.Join(runtimeDir, "sites", domain, "logs", kind+".log")
}

// Config is the runtime's configuration with its defaults.
func (r *Runtime) Config() Config { return r.cfg }

// RenderPool is a site's pool file.
func (r *Runtime) RenderPool(s Site) []byte {
	dir := r.SiteDir(s.Domain)
	basedir := strings.TrimSuffix(s.Root, "/") + "/"
	for _, p := range s.Also {
		basedir += ":" + strings.TrimSuffix(p, "/") + "/"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "; The php-fpm pool of site %s, written by aegir from its record.\n", s.Domain)
	fmt.Fprintf(&b, "; Changes here are lost at the next verify of %s.\n", s.Domain)
	fmt.Fprintf(&b, "[%s]\n", s.User)
	for _, kv := range [][2]string{
		{"user", s.User}, {"group", s.User},
		{"listen", r.Socket(s.User)}, {"listen.owner", r.cfg.WebUser}, {"listen.group", r.cfg.WebGroup}, {"listen.mode", "0660"},
		// Idle sites cost no process.
		{"pm", "ondemand"}, {"pm.max_children", "5"}, {"pm.process_idle_timeout", "10s"}, {"pm.max_requests", "500"},
		{"chdir", "/"},
		{"php_admin_value[open_basedir]", basedir + ":" + dir + "/"},
		{"php_admin_value[upload_tmp_dir]", dir + "/tmp"},
		{"php_admin_value[sys_temp_dir]", dir + "/tmp"},
		{"php_admin_value[session.save_path]", dir + "/sessions"},
		{"php_admin_value[error_log]", dir + "/logs/php.log"},
		{"php_admin_flag[log_errors]", "on"},
		// The opcache is the master's, shared by every pool: without
		// this, a script another site's pool compiled (its settings,
		// with its database password) is run for this site's include
		// without a look at whether this site's user may read the file.
		{"php_admin_flag[opcache.validate_permission]", "on"},
		{"php_admin_value[disable_functions]", strings.Join(splitList(r.cfg.DisableFunctions), ",")},
	} {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	return b.Bytes()
}

// run runs a privileged command (aegir is root on the server).
func (r *Runtime) run(ctx context.Context, name string, args ...string) (exec.Result, error) {
	return r.ex.Run(ctx, exec.Command{Name: name, Args: args})
}

// helped runs op through the helper when there is one, and reports
// whether it did.
func (r *Runtime) helped(ctx context.Context, op string, args ...string) (string, bool, error) {
	if r.cfg.Helper == nil {
		return "", false, nil
	}
	out, err := r.cfg.Helper.Run(ctx, op, args...)
	return out, true, err
}

// shell runs one of the administrator's command lines.
func (r *Runtime) shell(ctx context.Context, line, version string) (exec.Result, error) {
	return r.ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", r.expand(line, version)}})
}

// Versions are the php-fpm versions installed on the server (BinDir's
// php-fpmX.Y), oldest first.
func Versions(ctx context.Context, ex exec.Executor) ([]string, error) {
	entries, err := ex.ReadDir(ctx, BinDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("looking for php-fpm in %s on %s: %w", BinDir, ex.Host(), err)
	}
	var out []string
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), "php-fpm")
		if ok && entities.ValidatePHPVersion("", v) == nil && v != "" && !e.IsDir() {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, entities.CompareVersions)
	return out, nil
}

// ChooseVersion is the version a site runs: want when the server has it,
// else (want empty) the newest the server has. An absent version is a
// *provision.Error that lists those found.
func ChooseVersion(want string, found []string) (string, error) {
	if len(found) == 0 {
		return "", provision.Errorf(provision.ErrMissingBinary, "install php-fpm on the web server (apt-get install php8.2-fpm), then verify the server",
			"no php-fpm (php-fpmX.Y in %s) on the web server", BinDir)
	}
	if want == "" {
		return found[len(found)-1], nil
	}
	if !slices.Contains(found, want) {
		return "", provision.Errorf(provision.ErrInvalidContext, "choose one of "+strings.Join(found, ", ")+" as the site's php version",
			"PHP %s is not on the web server (it has %s)", want, strings.Join(found, ", "))
	}
	return want, nil
}

// poolLocks serializes write-test-rollback in one pool directory within
// the process, so that a task never tests (and rolls back for) another
// task's half-written pool.
var poolLocks sync.Map // host + dir -> *sync.Mutex

func (r *Runtime) lock(dir string) func() {
	m, _ := poolLocks.LoadOrStore(r.ex.Host()+"\x00"+dir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (r *Runtime) reloadKey(version string) string {
	return strings.Join([]string{"php-fpm", r.ex.Host(), version, r.expand(r.cfg.ReloadCmd, version)}, "\x00")
}

// WritePool writes the site's pool file for its version, tests php-fpm's
// configuration (putting the previous file back when the test fails) and
// reloads php-fpm when the file changed (or always, with reload). It
// reports whether the file changed.
func (r *Runtime) WritePool(ctx context.Context, s Site, reload bool) (bool, error) {
	if err := r.check(s); err != nil {
		return false, err
	}
	dir := r.PoolDir(s.Version)
	file := r.PoolFile(s.Version, s.User)
	body := r.RenderPool(s)
	end := r.env.Reloads.Begin(r.reloadKey(s.Version))
	changed, err := r.applyPool(ctx, s, dir, file, body)
	end()
	if err != nil {
		return changed, err
	}
	if !changed && !reload && !r.reloadPending(ctx, s.Version) {
		return false, nil
	}
	return changed, r.Reload(ctx, s.Version)
}

// RemovePool removes the site's pool file for version, tests and reloads
// php-fpm, and removes the socket php-fpm left. It reports whether there
// was a file.
func (r *Runtime) RemovePool(ctx context.Context, s Site) (bool, error) {
	if err := r.check(s); err != nil {
		return false, err
	}
	file := r.PoolFile(s.Version, s.User)
	end := r.env.Reloads.Begin(r.reloadKey(s.Version))
	changed, err := r.applyPool(ctx, s, r.PoolDir(s.Version), file, nil)
	end()
	if err != nil {
		return changed, err
	}
	if changed || r.reloadPending(ctx, s.Version) {
		if err := r.Reload(ctx, s.Version); err != nil {
			return changed, err
		}
	}
	if r.cfg.Helper != nil {
		return changed, nil // the helper removed the socket
	}
	if err := r.ex.Remove(ctx, r.Socket(s.User)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return changed, fmt.Errorf("remove %s on %s: %w", r.Socket(s.User), r.ex.Host(), err)
	}
	return changed, nil
}

// ApplyPool writes the site's pool file (with remove, removes it) and
// tests php-fpm's configuration, putting the previous state back when the
// test fails; it neither reloads php-fpm nor removes the socket. It
// reports whether the file changed. (The helper's pool operations.)
func (r *Runtime) ApplyPool(ctx context.Context, s Site, remove bool) (bool, error) {
	if err := r.check(s); err != nil {
		return false, err
	}
	var body []byte
	if !remove {
		body = r.RenderPool(s)
	}
	return r.applyPool(ctx, s, r.PoolDir(s.Version), r.PoolFile(s.Version, s.User), body)
}

// applyPool is apply under the pool directory's lock, or the helper's
// pool-write (pool-remove, body nil), which renders the same file from
// the site.
func (r *Runtime) applyPool(ctx context.Context, s Site, dir, file string, body []byte) (bool, error) {
	if body == nil && r.cfg.Helper != nil {
		// No pool file, nothing to ask: a shared site on a server
		// without the helper is deleted all the same.
		if _, err := r.ex.Lstat(ctx, file); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
	}
	if body == nil {
		if out, ok, err := r.helped(ctx, priv.OpPoolRemove, s.Domain, s.Version); ok {
			return out == "changed", err
		}
	} else if out, ok, err := r.helped(ctx, priv.OpPoolWrite, s.Domain, s.Version, s.Root); ok {
		return out == "changed", err
	}
	unlock := r.lock(dir)
	defer unlock()
	return r.apply(ctx, s.Version, file, body)
}

// apply puts body at file (nil: removes it) and tests the configuration;
// a failed test puts the previous state back. The caller holds the lock.
func (r *Runtime) apply(ctx context.Context, version, file string, body []byte) (bool, error) {
	old, err := r.ex.ReadFile(ctx, file)
	had := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s on %s: %w", file, r.ex.Host(), err)
	}
	if body == nil && !had || body != nil && had && bytes.Equal(old, body) {
		return false, nil
	}
	if body == nil {
		if err := r.ex.Remove(ctx, file); err != nil {
			return false, fmt.Errorf("remove %s on %s: %w", file, r.ex.Host(), err)
		}
	} else {
		if err := r.ex.MkdirAll(ctx, path.Dir(file), 0o755); err != nil {
			return false, fmt.Errorf("create %s on %s: %w", path.Dir(file), r.ex.Host(), err)
		}
		if err := r.ex.WriteFile(ctx, file, body, 0o644); err != nil {
			return false, fmt.Errorf("write %s on %s: %w", file, r.ex.Host(), err)
		}
	}
	res, terr := r.shell(ctx, r.cfg.TestCmd, version)
	if terr == nil {
		return true, nil
	}
	// Put back what was there, and tell whether it was failing already.
	var perr error
	if had {
		perr = r.ex.WriteFile(ctx, file, old, 0o644)
	} else {
		perr = r.ex.Remove(ctx, file)
	}
	out := strings.TrimSpace(string(res.Stderr) + string(res.Stdout))
	if out == "" {
		out = terr.Error()
	}
	hint := "read the test's output above; the pool is aegir's (docs/isolation.md): check php_fpm.* in aegir.yaml"
	if perr != nil {
		return true, provision.Errorf(provision.ErrConfigTest, "remove "+exec.Quote(file)+" by hand and run the task again",
			"php-fpm %s's configuration test failed with %s, and it could not be put back: %v; test output: %s", version, file, perr, lastLines(out, 5))
	}
	if _, err := r.shell(ctx, r.cfg.TestCmd, version); err != nil {
		hint = "php-fpm's configuration was failing before this change: fix the other fault first (" + r.expand(r.cfg.TestCmd, version) + ")"
	}
	return false, provision.Errorf(provision.ErrConfigTest, hint,
		"php-fpm %s's configuration test failed with the pool %s, which was put back as it was: %s", version, file, lastLines(out, 5))
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// pendingFile marks a reload of php-fpm of version that failed after its
// pools changed: the next task that writes or removes a pool of that
// version reloads it, even when its own pool is unchanged (the pool
// written by the failed task is there, not yet served).
func (r *Runtime) pendingFile(version string) string {
	return path.Join(r.cfg.RuntimeDir, "fpm", "reload-pending-"+version)
}

func (r *Runtime) reloadPending(ctx context.Context, version string) bool {
	if _, err := r.ex.Lstat(ctx, r.pendingFile(version)); err != nil {
		return false
	}
	r.env.Logf(provision.LevelInfo, "an earlier reload of php-fpm %s on %s failed; reloading it now", version, r.ex.Host())
	return true
}

// Reload reloads php-fpm of version, shared with the other tasks of the
// run that reload it at about the same time. A failed reload is marked
// on the server (pendingFile), and repaired by the next pool change or
// verify of a site of that version.
func (r *Runtime) Reload(ctx context.Context, version string) error {
	return r.env.Reloads.Reload(ctx, r.reloadKey(version), func(ctx context.Context) error {
		r.env.Logf(provision.LevelInfo, "reloading php-fpm %s on %s", version, r.ex.Host())
		if _, ok, err := r.helped(ctx, priv.OpFPMReload, version); ok {
			return err
		}
		pending := r.pendingFile(version)
		res, err := r.shell(ctx, r.cfg.ReloadCmd, version)
		if err != nil {
			if merr := r.ex.MkdirAll(ctx, path.Dir(pending), 0o711); merr == nil {
				_ = r.ex.WriteFile(ctx, pending, nil, 0o644)
			}
			out := strings.TrimSpace(string(res.Stderr))
			return provision.Errorf(provision.ErrCommand, "check php_fpm.reload_cmd in aegir.yaml and that php-fpm "+version+" runs; then verify the site",
				"reloading php-fpm %s on %s failed: %v %s", version, r.ex.Host(), err, out)
		}
		if err := r.ex.Remove(ctx, pending); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.env.Logf(provision.LevelWarning, "could not remove %s on %s: %v", pending, r.ex.Host(), err)
		}
		return nil
	})
}
