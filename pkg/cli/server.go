package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	pexec "github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/web"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// serverFlags are the settings of server add and server edit.
type serverFlags struct {
	host, sshUser, sshKey, remoteHome            string
	sshPort                                      int
	acceptHostKey, forgetHostKey                 bool
	http, httpTestCmd, httpRestartCmd, phpFPM    string
	httpListenIP                                 string
	httpPort, httpsPort                          int
	db, dbHost, dbAdminUser, dbAdminPasswordFile string
	dbPort                                       int
	dbTunnel                                     bool
	queue                                        bool
}

func (f *serverFlags) register(fs *pflag.FlagSet, edit bool) {
	if edit {
		fs.BoolVar(&f.forgetHostKey, "forget-host-key", false, "forget the SSH host keys recorded for the server's address (every master's), before its verify: with --accept-host-key it records the key the server offers now")
	}
	fs.StringVar(&f.host, "host", "", "host name or address of the server (localhost with no --ssh-user: this machine)")
	fs.StringVar(&f.sshUser, "ssh-user", "", "SSH user on a remote server")
	intFlag(fs, &f.sshPort, "ssh-port", 22, "SSH port")
	fs.StringVar(&f.sshKey, "ssh-key", "", "private key file for SSH (default: ~/.ssh/id_ed25519 or id_rsa, or the agent)")
	fs.BoolVar(&f.acceptHostKey, "accept-host-key", false, "record the server's SSH host key on first contact (a changed key is always refused)")
	fs.StringVar(&f.remoteHome, "remote-home", "", "aegir home on the remote server (default .aegir in the SSH user's home)")
	fs.StringVar(&f.http, "http", "", "web service: nginx or apache")
	intFlag(fs, &f.httpPort, "http-port", 80, "HTTP port of the web service")
	intFlag(fs, &f.httpsPort, "https-port", 443, "HTTPS port of the web service")
	fs.StringVar(&f.httpTestCmd, "http-test-cmd", "", "command that tests the web server's config (default nginx -t / apache2ctl configtest)")
	fs.StringVar(&f.httpRestartCmd, "http-restart-cmd", "", "command that reloads the web server (default nginx -s reload / apache2ctl graceful)")
	fs.StringVar(&f.httpListenIP, "http-listen-ip", "", "address the sites' virtual hosts listen on (default: every address)")
	fs.StringVar(&f.phpFPM, "php-fpm", "", "php-fpm socket path or host:port (detected when not given)")
	fs.StringVar(&f.db, "db", "", "database service: mariadb, mysql or postgresql")
	fs.StringVar(&f.dbHost, "db-host", "", "address clients connect to (default: the server's host; 127.0.0.1 for localhost)")
	intFlag(fs, &f.dbPort, "db-port", 0, "database port (default 3306, or 5432 for postgresql)")
	fs.StringVar(&f.dbAdminUser, "db-admin-user", "", "database admin user (default root, or postgres)")
	fs.StringVar(&f.dbAdminPasswordFile, "db-admin-password-file", "", "file holding the admin password, mode 0600 (never passed on the command line)")
	fs.BoolVar(&f.dbTunnel, "db-tunnel", false, "reach the database as its admin through an SSH tunnel to the server (default on for a remote server whose --db-host is a loopback address or a socket)")
	fs.BoolVar(&f.queue, "queue", false, "only queue the verify task for the dispatcher; print its id")
	// On server edit, empty puts these back to their defaults.
	allowEmpty(fs, "ssh-user", "http-test-cmd", "http-restart-cmd", "http-listen-ip", "php-fpm", "db-admin-user")
}

// givenFlags are the names of the flags given on the command line.
func givenFlags(fs *pflag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	return set
}

// apply validates the flags that were given (set) and copies them onto v.
func (f *serverFlags) apply(set map[string]bool, v *entities.Server) error {
	ch := func(name string) bool { return set[name] }
	if ch("host") || v.Host == "" {
		if err := entities.ValidateHost("--host", f.host); err != nil {
			return err
		}
		v.Host = f.host
	}
	if ch("ssh-user") {
		if err := entities.ValidateUser("--ssh-user", f.sshUser); err != nil {
			return err
		}
		v.SSHUser = f.sshUser
	}
	if ch("ssh-port") || v.SSHPort == 0 {
		if err := entities.ValidatePort("--ssh-port", f.sshPort); err != nil {
			return err
		}
		v.SSHPort = f.sshPort
	}
	if ch("ssh-key") {
		if err := readableFile("--ssh-key", f.sshKey); err != nil {
			return err
		}
		v.SSHKey = f.sshKey
	}
	if ch("accept-host-key") {
		v.AcceptHostKey = f.acceptHostKey
	}
	if ch("remote-home") {
		if err := entities.ValidateServerPath("--remote-home", f.remoteHome); err != nil {
			return err
		}
		v.RemoteHome = f.remoteHome
	}
	if err := f.applyHTTP(ch, v); err != nil {
		return err
	}
	return f.applyDB(ch, v)
}

func service(v *entities.Server, kind string) *entities.Service {
	for i := range v.Services {
		if v.Services[i].Kind == kind {
			return &v.Services[i]
		}
	}
	return nil
}

func (f *serverFlags) applyHTTP(ch func(string) bool, v *entities.Server) error {
	sv := service(v, entities.KindHTTP)
	if sv == nil {
		if !ch("http") {
			for _, n := range []string{"http-port", "https-port", "http-test-cmd", "http-restart-cmd", "php-fpm", "http-listen-ip"} {
				if ch(n) {
					return invalid("--"+n, "", "needs a web service: add --http nginx or --http apache")
				}
			}
			return nil
		}
		v.Services = append(v.Services, entities.Service{Kind: entities.KindHTTP, Port: f.httpPort, HTTPSPort: f.httpsPort})
		sv = &v.Services[len(v.Services)-1]
	}
	if ch("http") {
		if err := entities.ValidateOneOf("--http", f.http, entities.ServiceTypes[entities.KindHTTP]...); err != nil {
			return err
		}
		sv.Type = f.http
	}
	if ch("http-port") {
		sv.Port = f.httpPort
	}
	if ch("https-port") {
		sv.HTTPSPort = f.httpsPort
	}
	if err := entities.ValidatePort("--http-port", sv.Port); err != nil {
		return err
	}
	if err := entities.ValidatePort("--https-port", sv.HTTPSPort); err != nil {
		return err
	}
	if sv.Port == sv.HTTPSPort {
		return invalid("--https-port", fmt.Sprint(sv.HTTPSPort), "must differ from --http-port")
	}
	for _, c := range []struct {
		name string
		val  string
		dst  *string
	}{{"http-test-cmd", f.httpTestCmd, &sv.TestCmd}, {"http-restart-cmd", f.httpRestartCmd, &sv.RestartCmd}, {"php-fpm", f.phpFPM, &sv.PHPFPM}} {
		if !ch(c.name) {
			continue
		}
		if strings.ContainsAny(c.val, "\n\r\x00") {
			return invalid("--"+c.name, c.val, "must be one line")
		}
		*c.dst = c.val
	}
	if ch("http-listen-ip") {
		if f.httpListenIP != "" && net.ParseIP(f.httpListenIP) == nil {
			return invalid("--http-listen-ip", f.httpListenIP, "must be an IP address of the server, like 127.0.0.1 or ::1")
		}
		sv.ListenIP = f.httpListenIP
	}
	if sv.PHPFPM != "" {
		// The web back end's own rule: what it would refuse is not recorded.
		if err := web.CheckPHPFPM("--php-fpm", sv.PHPFPM); err != nil {
			return err
		}
	}
	return nil
}

func (f *serverFlags) applyDB(ch func(string) bool, v *entities.Server) error {
	sv := service(v, entities.KindDB)
	if sv == nil {
		if !ch("db") {
			for _, n := range []string{"db-host", "db-port", "db-admin-user", "db-admin-password-file", "db-tunnel"} {
				if ch(n) {
					return invalid("--"+n, "", "needs a database service: add --db mariadb, mysql or postgresql")
				}
			}
			return nil
		}
		v.Services = append(v.Services, entities.Service{Kind: entities.KindDB})
		sv = &v.Services[len(v.Services)-1]
	}
	if ch("db") {
		if err := entities.ValidateOneOf("--db", f.db, entities.ServiceTypes[entities.KindDB]...); err != nil {
			return err
		}
		sv.Type = f.db
	}
	if ch("db-host") {
		if err := entities.ValidateHost("--db-host", f.dbHost); err != nil {
			return err
		}
		sv.DBHost = f.dbHost
	}
	if sv.DBHost == "" {
		sv.DBHost = v.Host
		if v.IsLocal() {
			sv.DBHost = "127.0.0.1"
		}
	}
	if ch("db-port") {
		// 0 is no port, here as for every other port flag; the default
		// is what an unset --db-port gives.
		if err := entities.ValidatePort("--db-port", f.dbPort); err != nil {
			return err
		}
		sv.Port = f.dbPort
	}
	if sv.Port == 0 {
		sv.Port = 3306
		if sv.Type == entities.TypePostgreSQL {
			sv.Port = 5432
		}
	}
	if err := entities.ValidatePort("--db-port", sv.Port); err != nil {
		return err
	}
	if ch("db-admin-user") {
		if err := entities.ValidateUser("--db-admin-user", f.dbAdminUser); err != nil {
			return err
		}
		sv.AdminUser = f.dbAdminUser
	}
	if sv.AdminUser == "" {
		sv.AdminUser = "root"
		if sv.Type == entities.TypePostgreSQL {
			sv.AdminUser = "postgres"
		}
	}
	if ch("db-admin-password-file") {
		if err := secretFile("--db-admin-password-file", f.dbAdminPasswordFile); err != nil {
			return err
		}
		sv.AdminPasswordFile = f.dbAdminPasswordFile
	}
	return applyDBTunnel(f.dbTunnel, ch("db-tunnel"), v, sv)
}

// applyDBTunnel sets whether the database is reached through an SSH
// tunnel: as --db-tunnel says; else, for a new service of a remote server,
// when it listens where only that server reaches it (loopback or socket).
func applyDBTunnel(tunnel, given bool, v *entities.Server, sv *entities.Service) error {
	if given {
		if tunnel && v.IsLocal() {
			return invalid("--db-tunnel", "", "needs a remote server reached over SSH (--host and --ssh-user); this one is this machine")
		}
		sv.DBTunnel = tunnel
		return nil
	}
	if sv.ID == 0 && !v.IsLocal() {
		sv.DBTunnel = entities.IsLoopbackHost(sv.DBHost)
	}
	if v.IsLocal() {
		sv.DBTunnel = false
	}
	return nil
}

func readableFile(field, p string) error {
	if err := entities.ValidateAbsPath(field, p); err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return invalid(field, p, "must be a readable file on this machine")
	}
	if !st.Mode().IsRegular() {
		return invalid(field, p, "must be a regular file")
	}
	if f, err := os.Open(p); err != nil {
		return invalid(field, p, "must be readable by this user")
	} else {
		f.Close()
	}
	return nil
}

// secretFile is readableFile for a file that holds a secret: like ssh
// with a private key, it refuses one that its group or others may read.
func secretFile(field, p string) error {
	if err := readableFile(field, p); err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return invalid(field, p, "must be a readable file on this machine")
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return &Error{Err: entities.Invalid(field, p, fmt.Sprintf("must be readable by its owner only (its mode is %04o)", perm)),
			Code: ExitUsage, Hint: "chmod 600 " + pexec.Quote(p)}
	}
	return nil
}

func (a *App) serverCmd() *cobra.Command {
	c := &cobra.Command{Use: "server", Short: "Servers and the services they run (web, database)"}
	c.AddCommand(newServerAddCmd(a, nil), newServerEditCmd(a, nil), newListCmd(a, &cobra.Command{Use: "list", Short: "List servers"}, runServerList, nil),
		newShowCmd(a, "Show a server and its services", (*store.Store).GetServer, nil), newTaskVerbCmd(a, "verify NAME", "Check a server: reachable, services installed, DB admin login, config written", entities.TaskServerVerify, runServerVerify, nil),
		newDeleteCmd(a, "server", "Delete a server that no platform or site uses", (*store.Store).DeleteServer, nil))
	return c
}

// ServerOptions are server add's and server edit's: the server's name,
// the settings flags and which of them were given (Set, by flag name).
type ServerOptions struct {
	*App
	Name  string
	Flags serverFlags
	Set   map[string]bool
}

// newServerCmd is server add or edit: the settings flags parsed into
// ServerOptions for run.
func newServerCmd(a *App, cmd *cobra.Command, edit bool, runF, run func(*ServerOptions) error) *cobra.Command {
	o := &ServerOptions{App: a}
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o.Name, o.Set = args[0], givenFlags(cmd.Flags())
		return runWith(o, runF, run)
	}
	o.Flags.register(cmd.Flags(), edit)
	return cmd
}

func newServerAddCmd(a *App, runF func(*ServerOptions) error) *cobra.Command {
	return newServerCmd(a, &cobra.Command{
		Use:   "add NAME --host HOST [--http nginx|apache] [--db mariadb|mysql|postgresql]",
		Short: "Add a server with its services, then verify it",
		Long: `Add a server. With --host localhost and no --ssh-user it is this machine;
anything else is reached over SSH, with its host key verified against the
host keys in the state, which every master sharing it trusts
(--accept-host-key records it on first contact; AEGIR_HOME/known_hosts is
written from them for rsync and ssh). The server is verified at once (use
--queue to leave that to the dispatcher).`,
	}, false, runF, runServerAdd)
}

func runServerAdd(o *ServerOptions) error {
	if err := entities.ValidateName("server name", o.Name); err != nil {
		return err
	}
	if !o.Set["host"] {
		return invalid("--host", "", "is required (use localhost for this machine)")
	}
	v := &entities.Server{Name: o.Name}
	if err := o.Flags.apply(o.Set, v); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	return o.saveServer(st, v, o.Flags.queue, st.AddServer)
}

func newServerEditCmd(a *App, runF func(*ServerOptions) error) *cobra.Command {
	return newServerCmd(a, &cobra.Command{
		Use:   "edit NAME [flags]",
		Short: "Change a server's settings or add a service, then verify it",
		Long: `Change a server's settings or add a service, then verify it.

A server whose SSH host key changed (reinstalled) is refused by every
master. Once you have checked the new key with the server's admin,
--forget-host-key --accept-host-key forgets the old key (in the state, for
every master, and in AEGIR_HOME/known_hosts) and records the one the
server offers at its verify. The edit's verify task logs the keys it
forgot.`,
	}, true, runF, runServerEdit)
}

func runServerEdit(o *ServerOptions) error {
	st, v, err := lookup(o.App, o.Name, (*store.Store).GetServer)
	if err != nil {
		return err
	}
	if err := o.Flags.apply(o.Set, v); err != nil {
		return err
	}
	save := st.UpdateServer
	if o.Flags.forgetHostKey {
		if v.IsLocal() {
			return invalid("--forget-host-key", "", "needs a remote server reached over SSH; this one is this machine")
		}
		line, err := o.forgetHostKeys(st, v)
		if err != nil {
			return err
		}
		// The edit's verify task keeps what it forgot.
		save = func(ctx context.Context, v *entities.Server) (*entities.Task, error) {
			t, err := st.UpdateServer(ctx, v)
			if err == nil {
				err = st.AppendLog(ctx, t.ID, line)
			}
			return t, err
		}
	}
	return o.saveServer(st, v, o.Flags.queue, save)
}

// forgetHostKeys forgets the host keys of v's address, in the state and
// the home's known_hosts, and returns the log line that says which.
func (o *ServerOptions) forgetHostKeys(st *store.Store, v *entities.Server) (entities.LogLine, error) {
	host := hosting.HostOf(v.Host, v.SSHPort)
	gone, err := o.knownHosts(st, filepath.Join(o.home, "known_hosts")).ForgetKeys(o.ctx, host)
	if err != nil {
		return entities.LogLine{}, fmt.Errorf("forgetting the host keys of %s: %w", host, err)
	}
	var keys []string
	for _, k := range gone {
		keys = append(keys, fmt.Sprintf("%s %s (recorded by %s at %s)", k.Type, k.Fingerprint, orUnknown(k.AddedBy), k.AddedAt.Format("2006-01-02 15:04 UTC")))
	}
	msg := fmt.Sprintf("the edit of server %s forgot no host key of %s: none was recorded", v.Name, host)
	if len(keys) > 0 {
		msg = fmt.Sprintf("the edit of server %s on master %s forgot the host key(s) of %s: %s", v.Name, queue.Master(), host, strings.Join(keys, ", "))
	}
	o.infof("%s", msg)
	return entities.LogLine{Time: time.Now(), Level: entities.LevelInfo, Message: msg}, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed master"
	}
	return "master " + s
}

func runServerList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) { return st.ListServers(o.ctx) })
}

func runServerVerify(o *TaskVerbOptions) error {
	st, v, err := lookup(o.App, o.Target, (*store.Store).GetServer)
	if err != nil {
		return err
	}
	t, err := st.QueueTask(o.ctx, o.Type, entities.TargetServer, v.ID, v.Name, nil)
	if err != nil {
		return err
	}
	return o.runOrQueue(t, o.Queue, func() (any, error) { return st.GetServer(o.ctx, v.Name) })
}

func (a *App) serviceCmd() *cobra.Command {
	c := &cobra.Command{Use: "service", Short: "Services: what each server runs (http: nginx, apache; db: mariadb, mysql, postgresql)"}
	c.AddCommand(newByServerListCmd(a, &cobra.Command{Use: "list [--server NAME]", Short: "List services"}, "only this server's services", runServiceList, nil))
	return c
}

func runServiceList(o *ByServerOptions) error {
	if err := validNames("--server", o.Server); err != nil {
		return err
	}
	return o.printStored(func(st *store.Store) (any, error) { return st.ListServices(o.ctx, o.Server) })
}

// saveServer saves a server with save (add or update), which records its
// verify task, then runs or queues that task and shows the server.
func (a *App) saveServer(st *store.Store, v *entities.Server, queue bool, save func(context.Context, *entities.Server) (*entities.Task, error)) error {
	// This machine's web server names the aegir home unquoted (its include
	// line): a home the back end would refuse for every task is refused
	// here, before anything is recorded.
	if v.IsLocal() && service(v, entities.KindHTTP) != nil {
		if err := entities.ValidateServerPath("aegir home", a.home); err != nil {
			return &Error{Code: ExitUsage, Err: err,
				Hint: "a local web server needs an aegir home such as /var/aegir: move it there and point AEGIR_HOME (or --home) at it"}
		}
	}
	t, err := save(a.ctx, v)
	if err != nil {
		return err
	}
	return a.runOrQueue(t, queue, func() (any, error) { return st.GetServer(a.ctx, v.Name) })
}
