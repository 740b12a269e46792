package privhelper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	osexec "os/exec"
	"os/user"
	"path"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
	"github.com/aegir-project/aegir/pkg/provision/priv"
)

// refused is an argument the helper does not take: exit 2.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }

func refuse(format string, args ...any) error { return refused{fmt.Errorf(format, args...)} }

// Invoked reports whether the running program is the helper: its file or
// the name it was started by is priv.Name. The aegir binary installed as
// the helper then does the helper's operations and nothing else.
func Invoked(argv0 string) bool {
	if path.Base(argv0) == priv.Name {
		return true
	}
	exe, err := os.Executable()
	return err == nil && path.Base(exe) == priv.Name
}

// Main runs one operation (args: OP ARGS...) with the configuration in
// configFile and returns the exit status: 0 done, 1 failed, 2 refused.
func Main(args []string, configFile string, stdout, stderr io.Writer) int {
	l := newLog()
	defer l.close()
	who := os.Getenv("SUDO_USER")
	if who == "" {
		who = strconv.Itoa(os.Getuid())
	}
	what := strings.Join(args, " ")
	out, err := run(context.Background(), args, configFile, l)
	var r refused
	switch {
	case err == nil:
		if len(args) > 0 && args[0] != priv.OpVersion {
			l.info(fmt.Sprintf("by %s: %s: %s", who, what, out))
		}
		fmt.Fprintln(stdout, out)
		return 0
	case errors.As(err, &r):
		l.warning(fmt.Sprintf("by %s: refused %s: %v", who, what, err))
		fmt.Fprintf(stderr, "%s: refused: %v\n", priv.Name, err)
		return priv.ExitRefused
	default:
		l.warning(fmt.Sprintf("by %s: failed %s: %v", who, what, err))
		fmt.Fprintf(stderr, "%s: %v\n", priv.Name, err)
		return priv.ExitFailed
	}
}

func run(ctx context.Context, args []string, configFile string, l *logger) (string, error) {
	if len(args) == 0 {
		return "", refuse("no operation: %s", ops)
	}
	op, args := args[0], args[1:]
	if op == priv.OpVersion {
		sum, err := priv.SelfSum()
		return priv.Name + " " + priv.Protocol + " " + sum, err
	}
	if op == priv.OpRunAs {
		return "", runAs(args, configFile, l)
	}
	n, ok := arity[op]
	if !ok {
		return "", refuse("unknown operation %q: %s", op, ops)
	}
	if op == priv.OpChown && len(args) > 0 && args[0] == "-R" {
		n++
	}
	if len(args) != n {
		return "", refuse("%s takes %d arguments, not %d", op, n, len(args))
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("must run as root: sudo -n %s %s", priv.DefaultPath, op)
	}
	c, err := LoadConfig(configFile)
	if err != nil {
		return "", fmt.Errorf("its configuration: %v (docs/remote-servers.md, step 5)", err)
	}
	h := &helper{c: c, file: configFile, log: l}
	return h.do(ctx, op, args)
}

const ops = "version, config, run-as, user-add, user-del, pool-write, pool-remove, fpm-reload, runtime, runtime-remove, chown, remove"

// config is what the config operation answers (priv.HelperConfig).
func (h *helper) config() (string, error) {
	rt, err := h.runtime()
	if err != nil {
		return "", err
	}
	cfg := rt.Config()
	b, err := json.Marshal(priv.HelperConfig{File: h.file, DeployUser: h.c.DeployUser, Roots: h.c.Roots, PoolDir: cfg.PoolDir, RuntimeDir: cfg.RuntimeDir})
	return string(b), err
}

var arity = map[string]int{priv.OpUserAdd: 1, priv.OpUserDel: 1, priv.OpPoolWrite: 3, priv.OpPoolRemove: 2, priv.OpFPMReload: 1,
	priv.OpRuntime: 2, priv.OpRuntimeRemove: 1, priv.OpChown: 2, priv.OpRemove: 1, priv.OpConfig: 0}

type helper struct {
	c    *Config
	file string // c's
	log  *logger
}

// runtime is php-fpm on this machine as the configuration says.
func (h *helper) runtime() (*fpm.Runtime, error) {
	env := &engine.Env{Log: provision.LoggerFunc(func(level, msg string) {
		if level != provision.LevelDebug {
			h.log.info(msg)
		}
	})}
	return fpm.New(exec.NewLocal(), fpm.Config{FPMSpec: h.c.Spec(), WebUser: h.c.WebUser, WebGroup: h.c.WebGroup}, env)
}

// site is the runtime of the site of domain (its user named by the rule).
func (h *helper) site(domain, version, root string) (fpm.Site, error) {
	if err := entities.ValidateDomain("domain", domain, false); err != nil {
		return fpm.Site{}, refused{err}
	}
	if err := entities.ValidatePHPVersion("version", version); err != nil {
		return fpm.Site{}, refused{err}
	}
	if root == "" {
		root = h.c.Roots[0]
	}
	return fpm.Site{Domain: domain, User: entities.SiteUnixUser(domain), Version: version, Root: root}, nil
}

func changed(b bool) string {
	if b {
		return "changed"
	}
	return "unchanged"
}

func (h *helper) do(ctx context.Context, op string, args []string) (string, error) {
	if op == priv.OpChown {
		return h.chown(args)
	}
	if op == priv.OpRemove {
		return h.remove(args[0])
	}
	if op == priv.OpConfig {
		return h.config()
	}
	rt, err := h.runtime()
	if err != nil {
		return "", err
	}
	switch op {
	case priv.OpUserAdd, priv.OpUserDel:
		s, err := h.site(args[0], "", "")
		if err != nil {
			return "", err
		}
		if op == priv.OpUserDel {
			return "ok", rt.RemoveUser(ctx, s)
		}
		made, err := rt.EnsureUser(ctx, s)
		if made {
			return "created", err
		}
		return "exists", err
	case priv.OpPoolWrite, priv.OpPoolRemove:
		root := ""
		if op == priv.OpPoolWrite {
			if root, err = h.under("platform root", args[2], true); err != nil {
				return "", err
			}
		}
		if args[1] == "" {
			return "", refuse("give the pool's PHP version (8.2)")
		}
		s, err := h.site(args[0], args[1], root)
		if err != nil {
			return "", err
		}
		if op == priv.OpPoolWrite {
			if ok, err := rt.HasUser(ctx, s); err != nil || !ok {
				return "", errors.Join(err, refuse("%s has no user of aegir's (%s): %s first", s.Domain, s.User, priv.OpUserAdd))
			}
			if _, err := h.openDir(root); err != nil {
				return "", err
			}
		}
		did, err := rt.ApplyPool(ctx, s, op == priv.OpPoolRemove)
		if err == nil && op == priv.OpPoolRemove {
			if rerr := os.Remove(rt.Socket(s.User)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
			}
		}
		return changed(did), err
	case priv.OpFPMReload:
		if args[0] == "" || entities.ValidatePHPVersion("version", args[0]) != nil {
			return "", refuse("invalid PHP version %q: must be MAJOR.MINOR, like 8.2", args[0])
		}
		return "ok", rt.Reload(ctx, args[0])
	case priv.OpRuntime:
		s, err := h.site(args[0], "", "")
		if err != nil {
			return "", err
		}
		u := ""
		switch args[1] {
		case "drop":
			// A site made shared: its tmp and sessions go once its
			// pool and user are gone (they served the pool).
			if ok, err := rt.HasUser(ctx, s); err != nil || ok {
				return "", errors.Join(err, refuse("%s still has its user %s: %s first", s.Domain, s.User, priv.OpUserDel))
			}
			return "ok", rt.DropOwnDirs(ctx, s.Domain)
		case "site":
			if ok, err := rt.HasUser(ctx, s); err != nil || !ok {
				return "", errors.Join(err, refuse("%s has no user of aegir's (%s): %s first", s.Domain, s.User, priv.OpUserAdd))
			}
			u = s.User
		case "shared":
		default:
			return "", refuse("the isolation must be site, shared or drop, not %q", args[1])
		}
		if err := rt.EnsureDirs(ctx, s.Domain, u); err != nil {
			return "", err
		}
		return "ok", rt.WriteLogrotate(ctx)
	case priv.OpRuntimeRemove:
		s, err := h.site(args[0], "", "")
		if err != nil {
			return "", err
		}
		return "ok", rt.RemoveDirs(ctx, s.Domain)
	}
	return "", refuse("unknown operation %q", op)
}

// under checks that p is a clean absolute path strictly below one of the
// roots (or, with orRoot, a root itself) and returns it.
func (h *helper) under(field, p string, orRoot bool) (string, error) {
	if err := entities.ValidateAbsPath(field, p); err != nil {
		return "", refused{err}
	}
	for _, r := range h.c.Roots {
		if p == r && !orRoot {
			return "", refuse("%s %s is one of the roots itself: only what lies below them", field, p)
		}
		if p == r || strings.HasPrefix(p, r+"/") {
			return p, nil
		}
	}
	return "", refuse("%s %s is outside the helper's roots (%s)", field, p, strings.Join(h.c.Roots, ", "))
}

// openDir opens the directory p, each of its components without
// following a symbolic link.
func (h *helper) openDir(p string) (int, error) {
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, refuse("%s: %s in it is a symbolic link or not a directory", p, c)
		}
		if err != nil {
			return -1, fmt.Errorf("%s: %w", p, err)
		}
		fd = nfd
	}
	return fd, nil
}

// openParent opens the directory of p (openDir) and checks p itself: not
// a symbolic link. It returns the directory and p's name in it; absent
// says p is not there.
func (h *helper) openParent(p string) (dir int, name string, absent bool, err error) {
	dir, err = h.openDir(path.Dir(p))
	if err != nil {
		return -1, "", false, err
	}
	name = path.Base(p)
	var st unix.Stat_t
	err = unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return dir, name, true, nil
	}
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		err = refuse("%s is a symbolic link", p)
	}
	if err != nil {
		unix.Close(dir)
		return -1, "", false, err
	}
	return dir, name, false, nil
}

// ids is who files may be given to and taken from: the deploy user, the
// web server's user, and aegir's sites' users.
type ids struct {
	c                              *Config
	deploy, web, deployGID, webGID int
	site                           map[int]bool // uid -> an aegir site user
}

func (h *helper) ids() (*ids, error) {
	d, err := user.Lookup(h.c.DeployUser)
	if err != nil {
		return nil, fmt.Errorf("deploy_user %s: %v", h.c.DeployUser, err)
	}
	w, err := user.Lookup(h.c.WebUser)
	if err != nil {
		return nil, fmt.Errorf("web_user %s: %v", h.c.WebUser, err)
	}
	g, err := user.LookupGroup(h.c.WebGroup)
	if err != nil {
		return nil, fmt.Errorf("web_group %s: %v", h.c.WebGroup, err)
	}
	i := &ids{c: h.c, site: map[int]bool{}}
	i.deploy, _ = strconv.Atoi(d.Uid)
	i.deployGID, _ = strconv.Atoi(d.Gid)
	i.web, _ = strconv.Atoi(w.Uid)
	i.webGID, _ = strconv.Atoi(g.Gid)
	return i, nil
}

// owner is the uid of a name files may be given to (-1: keep).
func (i *ids) owner(name string) (int, error) {
	switch name {
	case "":
		return -1, nil
	case i.c.DeployUser:
		return i.deploy, nil
	case i.c.WebUser:
		return i.web, nil
	}
	if uid, _, ok := lookupSiteUser(name); ok {
		return uid, nil
	}
	return 0, refuse("owner %q is neither the deploy user %s, the web server's user %s nor one of aegir's sites' users", name, i.c.DeployUser, i.c.WebUser)
}

// group is the gid of a group files may be given to (-1: keep).
func (i *ids) group(name string) (int, error) {
	switch name {
	case "":
		return -1, nil
	case i.c.WebGroup:
		return i.webGID, nil
	}
	if g, err := user.LookupGroup(name); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		if gid == i.deployGID {
			return gid, nil
		}
		if _, sgid, ok := lookupSiteUser(name); ok && sgid == gid {
			return gid, nil
		}
	}
	return 0, refuse("group %q is neither the web server's group %s, the deploy user's nor one of aegir's sites' groups", name, i.c.WebGroup)
}

// mayTake reports whether a file of uid may change hands: it is the
// deploy user's, the web server's or an aegir site's.
func (i *ids) mayTake(uid int) bool {
	if uid == i.deploy || uid == i.web {
		return true
	}
	if ok, seen := i.site[uid]; seen {
		return ok
	}
	ok := false
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		_, _, ok = lookupSiteUser(u.Username)
	}
	i.site[uid] = ok
	return ok
}

// chown gives PATH (with -R, and what it holds) to OWNER[:GROUP]. PATH
// lies below a root; no link is followed (links are left as they are);
// a file of another owner than the deploy, web or a site user, or a file
// with more than one name (a hard link), is refused.
func (h *helper) chown(args []string) (string, error) {
	recursive := args[0] == "-R"
	if recursive {
		args = args[1:]
	}
	p, err := h.under("path", args[1], false)
	if err != nil {
		return "", err
	}
	i, err := h.ids()
	if err != nil {
		return "", err
	}
	o, g, _ := strings.Cut(args[0], ":")
	uid, err := i.owner(o)
	if err != nil {
		return "", err
	}
	gid, err := i.group(g)
	if err != nil {
		return "", err
	}
	dir, name, absent, err := h.openParent(p)
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	if absent {
		return "", fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	n := 0
	if err := chownAt(dir, name, p, uid, gid, recursive, i, &n); err != nil {
		return "", err
	}
	return fmt.Sprintf("ok %d", n), nil
}

func chownAt(dir int, name, full string, uid, gid int, recursive bool, i *ids, n *int) error {
	// One open file for the check and the change: a name swapped
	// meanwhile changes nothing but what was checked.
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil // left as it is
	case !i.mayTake(int(st.Uid)):
		return refuse("%s belongs to uid %d, not to the deploy user, the web server's or a site's user: left as it is", full, st.Uid)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1:
		return refuse("%s has %d names (hard links): left as it is", full, st.Nlink)
	}
	if recursive && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err := eachEntry(fd, ".", full, func(dfd int, c string) error {
			return chownAt(dfd, c, full+"/"+c, uid, gid, true, i, n)
		})
		if err != nil {
			return err
		}
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %s: %w", full, err)
	}
	*n++
	return nil
}

// eachEntry opens the directory name in dir (never through a link) and
// calls fn with it for each of its entries, until one fails.
func eachEntry(dir int, name, full string, fn func(dfd int, entry string) error) error {
	dfd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	f := os.NewFile(uintptr(dfd), full)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	for _, c := range names {
		if err != nil {
			break
		}
		err = fn(dfd, c)
	}
	return err
}

// remove removes PATH, below a root, and what it holds, never through a
// link. An absent PATH is no error.
func (h *helper) remove(arg string) (string, error) {
	p, err := h.under("path", arg, false)
	if err != nil {
		return "", err
	}
	dir, name, absent, err := h.openParent(p)
	if errors.Is(err, unix.ENOENT) {
		return "absent", nil
	}
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	if absent {
		return "absent", nil
	}
	return "ok", removeAt(dir, name, p)
}

func removeAt(dir int, name, full string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dir, name, 0)
	}
	err := eachEntry(dir, name, full, func(dfd int, c string) error { return removeAt(dfd, c, full+"/"+c) })
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dir, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("remove %s: %w", full, err)
	}
	return nil
}

// logger says what the helper did to syslog (authpriv: the journal keeps
// it with sudo's own lines), or to stderr where there is no syslog.
type logger struct{ w *syslog.Writer }

func newLog() *logger {
	w, _ := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_NOTICE, priv.Name)
	return &logger{w: w}
}

func (l *logger) info(s string) {
	if l.w == nil || l.w.Notice(s) != nil {
		fmt.Fprintln(os.Stderr, priv.Name+": "+s)
	}
}

// warning logs a refusal or failure, which Main also prints.
func (l *logger) warning(s string) {
	if l.w != nil {
		_ = l.w.Warning(s)
	}
}

func (l *logger) close() {
	if l.w != nil {
		l.w.Close()
	}
}

var envRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// runAs becomes a site's user (aegir's ae-* user, its own group only)
// and runs PROGRAM there with NAME=VALUE added to a fixed environment:
// as sudo -u would, for that user alone. It returns only when it could
// not.
func runAs(args []string, configFile string, l *logger) error {
	if len(args) < 3 {
		return refuse("run-as takes USER [NAME=VALUE...] -- PROGRAM [ARGS...]")
	}
	name := args[0]
	if err := entities.ValidateSystemName("user", name, "user"); err != nil {
		return refused{err}
	}
	uid, gid, ok := lookupSiteUser(name)
	if !ok {
		return refuse("user %q is not one of aegir's sites' users", name)
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "USER=" + name, "LOGNAME=" + name, "HOME=/"}
	i := 1
	for ; i < len(args) && args[i] != "--"; i++ {
		if !envRe.MatchString(args[i]) || strings.ContainsAny(args[i], "\x00") {
			return refuse("%q is not NAME=VALUE", args[i])
		}
		env = append(env, args[i])
	}
	if i+1 >= len(args) {
		return refuse("run-as: no program after --")
	}
	argv := args[i+1:]
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root: sudo -n %s %s", priv.DefaultPath, priv.OpRunAs)
	}
	if _, err := LoadConfig(configFile); err != nil {
		return fmt.Errorf("its configuration: %v (docs/remote-servers.md, step 5)", err)
	}
	prog, err := osexec.LookPath(argv[0])
	if strings.Contains(argv[0], "/") {
		prog, err = argv[0], nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	l.info(fmt.Sprintf("by %s: run-as %s: %s (%d arguments)", os.Getenv("SUDO_USER"), name, prog, len(argv)-1))
	l.close()
	// Groups first, then the group, then the user: once the user is set,
	// nothing else may change.
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	if err := syscall.Setuid(uid); err != nil {
		return err
	}
	if os.Geteuid() != uid || os.Getegid() != gid {
		return errors.New("could not become " + name)
	}
	return syscall.Exec(prog, argv, env)
}
