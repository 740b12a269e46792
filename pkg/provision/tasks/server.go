package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
	"github.com/aegir-project/aegir/pkg/provision/priv"
	"github.com/aegir-project/aegir/pkg/provision/web"
)

// serverVerify checks each service of a server: the web server's program
// and version, its config dir and include file, its config test, that it
// answers a request on its port and that php-fpm answers at its address;
// the database admin login and version. Every service's state is
// reported, and the task fails if any service failed.
func serverVerify(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	var states []provision.ServiceState
	var errs []error
	if c.Site.Web.Type != "" {
		st := provision.ServiceState{Kind: entities.KindHTTP, Status: entities.StatusEnabled}
		err := func() error {
			ws, err := web.Open(ctx, env, c)
			if err != nil {
				return err
			}
			s, err := ws.Verify(ctx)
			if s != nil {
				st.Version = s.Version
				st.Message = "include in the system's " + c.Site.Web.Type + ": " + s.IncludeLine
			}
			if err != nil {
				return err
			}
			if _, err := ws.CheckAnswers(ctx); err != nil {
				return err
			}
			addr, err := ws.CheckPHP(ctx)
			switch {
			case errors.Is(err, web.ErrNotChecked):
				env.Logf(provision.LevelWarning, "%v; the sites' own checks (a verify of each site) tell whether the web server reaches it", err)
			case err != nil:
				return err
			default:
				env.Logf(provision.LevelInfo, "php-fpm answers at %s", addr)
			}
			if ex, err := env.Connect(ctx, c.Web()); err == nil {
				vs, err := fpm.Versions(ctx, ex)
				if err != nil {
					return err
				}
				st.PHPVersions = append([]string{}, vs...)
				if len(vs) == 0 {
					env.Logf(provision.LevelWarning, "no php-fpm (php-fpmX.Y in %s) on %s: sites can choose no PHP version, and none can be isolated", fpm.BinDir, ex.Host())
				} else {
					env.Logf(provision.LevelInfo, "php-fpm versions on %s: %s", ex.Host(), strings.Join(vs, ", "))
					checkValidatePermission(ctx, env, ex, vs, c.Opt("isolated_sites", "0") != "0")
				}
			}
			if d := c.DeployUser(); d != "" {
				checkDeployUser(ctx, env, c, d)
			}
			env.Logf(provision.LevelInfo, "web server ready; the system's %s must include: %s", c.Site.Web.Type, s.IncludeLine)
			return nil
		}()
		if err != nil {
			st.Status, st.Message = entities.StatusError, err.Error()
			errs = append(errs, err)
		}
		states = append(states, st)
	}
	if c.Site.DBServer.Type != "" {
		st := provision.ServiceState{Kind: entities.KindDB, Status: entities.StatusEnabled}
		err := func() error {
			svc, err := dbService(ctx, env, c)
			if err != nil {
				return err
			}
			defer svc.Close()
			v, err := svc.Verify(ctx)
			if err != nil {
				return err
			}
			st.Version = v
			env.Logf(provision.LevelInfo, "%s %s at %s:%d: admin %s can create databases and users", c.Site.DBServer.Type, v, c.Site.DBServer.Host, c.Site.DBServer.Port, c.Site.DBServer.AdminUser)
			return nil
		}()
		if err != nil {
			st.Status, st.Message = entities.StatusError, err.Error()
			errs = append(errs, err)
		}
		states = append(states, st)
	}
	if len(states) == 0 {
		// Still reach a remote server over SSH: its host key is checked
		// (or recorded, when accepting a new one was asked), and a server
		// that cannot be reached does not verify.
		if ref := c.Web(); ref.Host != "" && !ref.IsLocal() {
			ex, err := env.Connect(ctx, ref)
			if err != nil {
				return &provision.Changes{}, err
			}
			env.Logf(provision.LevelInfo, "reached %s over SSH", ex.Host())
		}
		env.LogFixf(provision.LevelWarning, []entities.Action{entities.Do("server.edit", c.Server, "http=nginx"), entities.Do("server.edit", c.Server, "db=mariadb")}, "server %s has no services; add a web server or a database server", c.Server)
	}
	ch := &provision.Changes{Services: states}
	if len(errs) == 1 {
		return ch, errs[0]
	}
	return ch, errors.Join(errs...)
}

// checkDeployUser tells what a remote deploy user lacks: the web
// server's group (its sites' files are its own with that group, and PHP
// writes them) and the privileged helper (isolated sites). Each is a
// warning that says what to do: shared sites need no more.
func checkDeployUser(ctx context.Context, env *engine.Env, c *provision.Job, user string) {
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return
	}
	group := c.System.WebGroup
	if group == "" {
		group = c.System.WebUser
	}
	if res, err := ex.Run(ctx, exec.Command{Name: "id", Args: []string{"-nG"}}); err == nil {
		if !slices.Contains(strings.Fields(string(res.Stdout)), group) {
			env.Logf(provision.LevelWarning, "%s is not in the group %s on %s: PHP cannot write the sites' uploads and %s cannot remove what PHP wrote; as root there: usermod -aG %s %s",
				user, group, ex.Host(), user, exec.Quote(group), exec.Quote(user))
		}
	}
	checkFPMUmask(ctx, env, ex, user)
	h := priv.Client{Ex: ex, Path: c.System.FPM.Helper}
	if ok, msg := h.Check(ctx); ok {
		env.Logf(provision.LevelInfo, "%s", msg)
		checkHelperConfig(ctx, env, c, h)
	} else {
		env.Logf(provision.LevelWarning, "%s", msg)
	}
}

// checkValidatePermission warns of each php-fpm version whose php.ini
// leaves opcache.validate_permission off with opcache on: the shared
// pool (the administrator's) then runs, for a shared site's include, a
// script an isolated site's pool compiled (its settings), without a
// look at whether www-data may read it. aegir's own pools turn it on.
//
// It is a warning when the server hosts isolated sites (the job's
// isolated_sites option), else a line of information.
func checkValidatePermission(ctx context.Context, env *engine.Env, ex exec.Executor, versions []string, isolated bool) {
	var off []string
	for _, v := range versions {
		bin := fpm.BinDir + "/php-fpm" + v
		res, err := ex.Run(ctx, exec.Command{Name: bin, Args: []string{"-i"}, Shown: "-i [its configuration]"})
		if err != nil {
			env.Logf(provision.LevelDebug, "could not read %s's configuration on %s: %v", bin, ex.Host(), err)
			continue
		}
		out := string(res.Stdout)
		if strings.Contains(out, "\nopcache.enable => On") && strings.Contains(out, "\nopcache.validate_permission => Off") {
			off = append(off, v)
		}
	}
	level := provision.LevelInfo
	if isolated {
		level = provision.LevelWarning
	}
	if len(off) > 0 {
		env.Logf(level, "php-fpm %s on %s runs with opcache.validate_permission off: a shared site's PHP may include an isolated site's settings once that site's pool compiled them (aegir's pools turn it on, the shared pool is yours); as root there: echo 'opcache.validate_permission = 1' > /etc/php/VERSION/fpm/conf.d/99-aegir.ini for each, then reload php-fpm (docs/isolation.md)",
			strings.Join(off, ", "), ex.Host())
	}
}

// fpmUmasks prints each php-fpm master's pid and umask (root's
// php-fpmX.Y processes; their workers have the same).
const fpmUmasks = `for p in $(pgrep -u root -x 'php-fpm[0-9.]*'); do printf '%s %s\n' "$p" "$(sed -n 's/^Umask:[[:space:]]*//p' /proc/$p/status)"; done`

// checkFPMUmask warns when a php-fpm master on a deploy user's server
// runs with a umask that takes group write away: what a shared site's
// PHP makes itself with mkdir() or fopen() in its setgid files directory
// is then not group-writable, and the deploy user cannot remove what is
// in it (the site's delete leaves it). WordPress's and Drupal's own
// directories and files get their modes set (the directory's, Drupal's
// file_chmod_directory 0775), a plugin's need not.
func checkFPMUmask(ctx context.Context, env *engine.Env, ex exec.Executor, user string) {
	res, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", fpmUmasks}, Shown: "-c [the umasks of php-fpm's masters]"})
	if err != nil {
		env.Logf(provision.LevelDebug, "could not read php-fpm's umask on %s: %v", ex.Host(), err)
		return
	}
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		pid, mask, ok := strings.Cut(l, " ")
		m, err := strconv.ParseUint(strings.TrimSpace(mask), 8, 32)
		if !ok || err != nil {
			continue
		}
		if m&0o020 != 0 {
			bad = append(bad, fmt.Sprintf("pid %s, umask %04o", pid, m))
		}
	}
	if len(bad) > 0 {
		env.Logf(provision.LevelWarning, "php-fpm on %s runs with a umask that takes group write away (%s): what a shared site's PHP code makes itself with mkdir() in its files directory is not group-writable, and %s cannot remove what is in it (its delete leaves it); as root there: systemctl edit php8.2-fpm (each version), add [Service] UMask=0002, then systemctl restart it",
			ex.Host(), strings.Join(bad, "; "), user)
	}
}

// checkHelperConfig compares the helper's configuration
// (priv.DefaultConfigFile on the server) with what aegir needs of it:
// each platform of the server (the job's platform_roots option) below
// one of its roots, and its php-fpm pool and runtime directories
// aegir's. Each difference is a warning that says what to write there.
func checkHelperConfig(ctx context.Context, env *engine.Env, c *provision.Job, h priv.Client) {
	hc, err := h.Config(ctx)
	if err != nil {
		env.Logf(provision.LevelWarning, "could not read the privileged helper's configuration on %s: %v; upgrade the helper (docs/remote-servers.md, step 5)", h.Ex.Host(), errorLine(err))
		return
	}
	file := hc.File
	if file == "" {
		file = priv.DefaultConfigFile
	}
	var missing []string
	for _, root := range strings.Split(c.Opt("platform_roots", ""), "\n") {
		if root == "" {
			continue
		}
		below := false
		for _, r := range hc.Roots {
			if strings.HasPrefix(root, strings.TrimSuffix(r, "/")+"/") {
				below = true
			}
		}
		if !below {
			missing = append(missing, root)
		}
	}
	if len(missing) > 0 {
		env.Logf(provision.LevelWarning, "the privileged helper on %s may not touch the platform roots %s (its roots: %s): isolated sites there cannot be installed; as root there, add their parent directory to roots: in %s",
			h.Ex.Host(), strings.Join(missing, ", "), strings.Join(hc.Roots, ", "), file)
	}
	rt, err := fpm.New(h.Ex, fpm.Config{FPMSpec: c.System.FPM}, env)
	if err != nil {
		return
	}
	mine := rt.Config()
	for _, d := range [][3]string{{"runtime_dir", hc.RuntimeDir, mine.RuntimeDir}, {"pool_dir", hc.PoolDir, mine.PoolDir}} {
		if d[1] != d[2] {
			env.Logf(provision.LevelWarning, "the privileged helper on %s has php_fpm.%s %s, aegir %s: the sites' pools, sockets and logs would not be where aegir looks; as root there, set php_fpm.%s: %s in %s (or aegir's php_fpm.%s to %s)",
				h.Ex.Host(), d[0], d[1], d[2], d[0], d[2], file, d[0], d[1])
		}
	}
	if len(missing) == 0 && hc.RuntimeDir == mine.RuntimeDir && hc.PoolDir == mine.PoolDir {
		env.Logf(provision.LevelInfo, "the privileged helper's roots on %s hold the server's platforms, and its php-fpm directories are aegir's", h.Ex.Host())
	}
}
