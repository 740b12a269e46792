package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// normalizeAliases validates aliases and drops duplicates, keeping order.
func normalizeAliases(field, domain string, in []string) ([]string, error) {
	seen := map[string]bool{domain: true}
	out := []string{}
	for _, a := range in {
		d, err := entities.NormalizeDomain(field, a)
		if err != nil {
			return nil, err
		}
		if d == domain {
			return nil, invalid(field, a, "must differ from the site's own domain")
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out, nil
}

func (a *App) siteCmd() *cobra.Command {
	c := &cobra.Command{Use: "site", Short: "Sites: install, change, back up and move the sites you host"}
	c.AddCommand(newSiteInstallCmd(a, nil), newSiteListCmd(a, nil), newArgCmd(a, &cobra.Command{Use: "show DOMAIN", Short: "Show a site"}, runSiteShow, nil), newSiteEditCmd(a, nil))
	for _, v := range []struct{ use, short, typ string }{
		{"verify DOMAIN", "Re-apply a site's record (settings, vhost) and check its health: its database login (remade if gone), php-fpm, its answer", entities.TaskSiteVerify},
		{"disable DOMAIN", "Make a site answer with a \"site disabled\" page", entities.TaskSiteDisable},
		{"enable DOMAIN", "Serve a disabled site again", entities.TaskSiteEnable},
		{"cron DOMAIN", "Run a site's cron now", entities.TaskSiteCron},
		{"updatedb DOMAIN", "Run the site's pending database updates (Drupal update hooks, WordPress upgrade)", entities.TaskSiteUpdateDB},
	} {
		c.AddCommand(newTaskVerbCmd(a, v.use, v.short, v.typ, runSiteTask, nil))
	}
	c.AddCommand(newSiteDeleteCmd(a, nil), newSiteLoginResetCmd(a, nil), newSiteStatsCmd(a, nil))
	for _, f := range siteCommands {
		c.AddCommand(f(a))
	}
	return c
}

// siteCommands lets other files of this package add site verbs from their
// init functions (backup, restore, migrate, clone, cert, stats).
var siteCommands []func(*App) *cobra.Command

// SiteInstallOptions are site install's: the new site's domain, where it
// goes, its settings and its admin account. Profile, Language and HTTPS
// left empty take the configuration's defaults.
type SiteInstallOptions struct {
	*App
	Domain                                               string
	Platform, DBServer, Client, Profile, Language, HTTPS string
	// PHP is the PHP version (empty: the server's newest), Isolation
	// site or shared (empty: the config key isolation).
	PHP, Isolation  string
	Aliases         []string
	Redirect, Queue bool
	Account         siteAccount
}

func newSiteInstallCmd(a *App, runF func(*SiteInstallOptions) error) *cobra.Command {
	o := &SiteInstallOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:     "install DOMAIN --platform P [--db-server S] [--client C] [--profile X] [--alias A]... [--redirect]",
		Aliases: []string{"add"},
		Short:   "Install a new site on a platform",
		Long: `Record a site and install it: a database and user on the database server,
the site's settings, its files directories, the platform's installer, and a
virtual host for the domain and every alias. The install runs at once with
its log shown (--queue leaves it to the dispatcher); a failed install
removes everything it created.`,
	}, o, runF, runSiteInstall, &o.Domain)
	f := cmd.Flags()
	f.StringVar(&o.Platform, "platform", "", "the platform to install on")
	f.StringVar(&o.DBServer, "db-server", "", "the database server (default: the platform's server, if it has a database service)")
	f.StringVar(&o.Client, "client", "", "the client the site belongs to")
	f.StringVar(&o.Profile, "profile", "", "Drupal install profile (default from config: standard)")
	f.StringVar(&o.Language, "language", "", "the site's language code (default from config: en)")
	listFlag(f, &o.Aliases, "alias", "another domain the site answers to (repeatable)")
	f.BoolVar(&o.Redirect, "redirect", false, "aliases answer with a 301 redirect to the domain")
	f.StringVar(&o.HTTPS, "https", "", "HTTPS: off, on or required (default from config)")
	f.StringVar(&o.PHP, "php", "", "the PHP version X.Y the site runs, among those its server has (aegir server show; default: the newest)")
	f.StringVar(&o.Isolation, "isolation", "", "site: a Unix user and php-fpm pool of its own; shared: the server's pool, as the web server's user (default from config)")
	f.BoolVar(&o.Queue, "queue", false, "only queue the install task; print its id")
	o.Account.flags(f)
	return cmd
}

func runSiteInstall(o *SiteInstallOptions) error {
	st, t, err := o.record()
	if err != nil {
		return err
	}
	return o.runOrQueue(t, o.Queue, func() (any, error) { return st.GetSite(o.ctx, t.Target) })
}

// record checks the install's input and records the site and its install
// task (site install and the API's POST /api/sites).
func (o *SiteInstallOptions) record() (*store.Store, *entities.Task, error) {
	domain, err := entities.NormalizeDomain("domain", o.Domain)
	if err != nil {
		return nil, nil, err
	}
	if o.Platform == "" {
		return nil, nil, invalid("--platform", "", "is required: the platform to install on (aegir platform list)")
	}
	if err := validNames("--platform", o.Platform); err != nil {
		return nil, nil, err
	}
	aliases, err := normalizeAliases("--alias", domain, o.Aliases)
	if err != nil {
		return nil, nil, err
	}
	if err := validNames("--db-server", o.DBServer, "--client", o.Client); err != nil {
		return nil, nil, err
	}
	profile, language, https := o.Profile, o.Language, o.HTTPS
	if profile == "" {
		profile = o.cfg.GetString("site.profile")
	}
	if err := entities.ValidateProfile("--profile", profile); err != nil {
		return nil, nil, err
	}
	if language == "" {
		language = o.cfg.GetString("site.language")
	}
	if err := entities.ValidateLanguage("--language", language); err != nil {
		return nil, nil, err
	}
	if https == "" {
		https = o.cfg.GetString("https")
	}
	if err := entities.ValidateOneOf("--https", https, entities.HTTPSModes...); err != nil {
		return nil, nil, err
	}
	isolation := o.Isolation
	if isolation == "" {
		isolation = o.cfg.GetString("isolation")
	}
	if err := entities.ValidateOneOf("--isolation", isolation, entities.Isolations...); err != nil {
		return nil, nil, err
	}
	if err := entities.ValidatePHPVersion("--php", o.PHP); err != nil {
		return nil, nil, err
	}
	opts, err := o.Account.options()
	if err != nil {
		return nil, nil, err
	}
	st, err := o.Store()
	if err != nil {
		return nil, nil, err
	}
	p, err := st.GetPlatform(o.ctx, o.Platform)
	if err != nil {
		return nil, nil, err
	}
	if err := checkPHP(o.App, st, p.Server, o.PHP); err != nil {
		return nil, nil, err
	}
	dbServer := o.DBServer
	if dbServer == "" {
		dbServer, err = defaultDBServer(o.App, st, p)
		if err != nil {
			return nil, nil, err
		}
	}
	if err := checkDBReach(o.App, st, p.Server, dbServer); err != nil {
		return nil, nil, err
	}
	v := &entities.Site{Domain: domain, Aliases: aliases, Redirect: o.Redirect, Platform: p.Name, DBServer: dbServer,
		Client: o.Client, Profile: profile, Language: language, HTTPS: https, PHP: o.PHP, Isolation: isolation}
	t, err := st.AddSiteWithOptions(o.ctx, v, opts)
	return st, t, err
}

// checkPHP refuses a PHP version the web server web does not have, as its
// last verify found them; exit 2 with the versions it has.
func checkPHP(a *App, st *store.Store, web, version string) error {
	if version == "" {
		return nil
	}
	ws, err := st.GetServer(a.ctx, web)
	if err != nil {
		return err
	}
	var found []string
	if sv := service(ws, entities.KindHTTP); sv != nil {
		found = sv.PHPVersions
	}
	if len(found) == 0 {
		return &Error{Code: ExitUsage, Err: entities.Invalid("--php", version, "cannot be checked: the server "+web+" has no php-fpm versions recorded"),
			Hint: "run aegir server verify " + web + " (it lists the php-fpm versions it finds), then try again"}
	}
	if !slices.Contains(found, version) {
		return &Error{Code: ExitUsage, Err: entities.Invalid("--php", version, "is not on server "+web+" (it has "+strings.Join(found, ", ")+")"),
			Hint: fmt.Sprintf("choose one of %s, or install php%s-fpm on %s and run aegir server verify %s", strings.Join(found, ", "), version, web, web)}
	}
	return nil
}

// checkDBReach refuses a database server that a site on the web server
// web could not reach at the address its settings would say: one that
// listens on its own loopback, for a site on another machine.
func checkDBReach(a *App, st *store.Store, web, dbServer string) error {
	ws, err := st.GetServer(a.ctx, web)
	if err != nil {
		return err
	}
	ds, err := st.GetServer(a.ctx, dbServer)
	if err != nil {
		return err
	}
	if why := ds.DBReachableFrom(ws); why != "" {
		return &Error{Code: ExitUsage, Err: entities.Invalid("--db-server", dbServer, why),
			Hint: fmt.Sprintf("give %s an address %s reaches (aegir server edit %s --db-host ADDRESS), or pick a database server on %s", dbServer, web, dbServer, web)}
	}
	return nil
}

// defaultDBServer picks the platform's own server when it runs a database,
// else the only database server there is.
func defaultDBServer(a *App, st *store.Store, p *entities.Platform) (string, error) {
	servers, err := st.ListServers(a.ctx)
	if err != nil {
		return "", err
	}
	var withDB []string
	for _, s := range servers {
		if service(s, entities.KindDB) != nil {
			if s.Name == p.Server {
				return s.Name, nil
			}
			withDB = append(withDB, s.Name)
		}
	}
	switch len(withDB) {
	case 1:
		return withDB[0], nil
	case 0:
		return "", &Error{Code: ExitUsage, Err: entities.Invalid("--db-server", "", "no server has a database service"),
			Hint: "add one: aegir server edit " + p.Server + " --db mariadb"}
	}
	return "", &Error{Code: ExitUsage, Err: entities.Invalid("--db-server", "", "is required: several servers have a database service"),
		Hint: "pick one of: aegir service list"}
}

// SiteListOptions are site list's: its filters.
type SiteListOptions struct {
	*App
	Filter store.SiteFilter
}

func newSiteListCmd(a *App, runF func(*SiteListOptions) error) *cobra.Command {
	o := &SiteListOptions{App: a}
	cmd := bind(&cobra.Command{Use: "list [--platform P] [--client C] [--status S]", Short: "List sites"}, o, runF, runSiteList)
	f := cmd.Flags()
	f.StringVar(&o.Filter.Platform, "platform", "", "only sites on this platform")
	f.StringVar(&o.Filter.Client, "client", "", "only this client's sites")
	f.StringVar(&o.Filter.Status, "status", "", "only sites in this status (default: all but deleted)")
	f.StringVar(&o.Filter.Server, "server", "", "only sites on this web server")
	f.StringVar(&o.Filter.DBServer, "db-server", "", "only sites on this database server")
	return cmd
}

func runSiteList(o *SiteListOptions) error {
	f := o.Filter
	if f.Status != "" {
		if err := entities.ValidateOneOf("--status", f.Status, entities.SiteStatuses...); err != nil {
			return err
		}
	}
	if err := validNames("--platform", f.Platform, "--client", f.Client, "--server", f.Server, "--db-server", f.DBServer); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	v, err := st.ListSites(o.ctx, f)
	if err != nil {
		return err
	}
	if len(v) == 0 {
		if err := filtersExist(o.ctx, nameFilter{f.Platform, finder(st, (*store.Store).GetPlatform)}, nameFilter{f.Client, finder(st, (*store.Store).GetClient)},
			nameFilter{f.Server, finder(st, (*store.Store).GetServer)}, nameFilter{f.DBServer, finder(st, (*store.Store).GetServer)}); err != nil {
			return err
		}
	}
	return o.print(v)
}

func runSiteShow(o *ArgOptions) error {
	st, v, err := o.site(o.Arg)
	if err != nil {
		return err
	}
	if err := o.siteDetails(st, v); err != nil {
		return err
	}
	return o.print(v)
}

// siteDetails adds what site show prints beside the record: the site's
// statistics and certificate (site show, and the API's).
func (a *App) siteDetails(st *store.Store, v *entities.Site) error {
	var err error
	if v.Stats, err = st.SiteStats(a.ctx, v); err != nil {
		return err
	}
	v.Cert, err = siteCert(a, st, v)
	return err
}

// SiteStatsOptions are site stats': the site, and whether to show the
// statistics last read instead of reading them again.
type SiteStatsOptions struct {
	*App
	Domain string
	Cached bool
}

func newSiteStatsCmd(a *App, runF func(*SiteStatsOptions) error) *cobra.Command {
	o := &SiteStatsOptions{App: a}
	cmd := bind(&cobra.Command{Use: "stats DOMAIN", Short: "Read and show a site's users, active users, posts and comments"}, o, runF, runSiteStats, &o.Domain)
	cmd.Flags().BoolVar(&o.Cached, "cached", false, "show what the statistics queue last read, without reading again")
	return cmd
}

func runSiteStats(o *SiteStatsOptions) error {
	st, v, err := o.site(o.Domain)
	if err != nil {
		return err
	}
	if !o.Cached {
		t, err := o.queueOn(st, v, entities.TaskSiteStats, nil)
		if err != nil {
			return err
		}
		done, err := o.runTask(t)
		if err != nil {
			return err
		}
		if err := taskExit(done); err != nil {
			return err
		}
		o.taskDone(done, false)
	}
	s, err := st.SiteStats(o.ctx, v)
	if err != nil {
		return err
	}
	if s == nil {
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("no statistics of %s yet", v.Domain), Hint: "run: aegir site stats " + v.Domain}
	}
	return o.print(s)
}

// SiteEditOptions are site edit's: the aliases to add and remove, the
// redirection, the client (ClientSet: --client was given, empty for no
// client) and the HTTPS mode.
type SiteEditOptions struct {
	*App
	Domain                    string
	AddAliases, RemoveAliases []string
	Redirect, NoRedirect      bool
	Client, HTTPS             string
	PHP, Isolation            string
	ClientSet, Queue, DryRun  bool
}

func newSiteEditCmd(a *App, runF func(*SiteEditOptions) error) *cobra.Command {
	o := &SiteEditOptions{App: a}
	cmd := &cobra.Command{
		Use:   "edit DOMAIN [--add-alias A] [--remove-alias A] [--redirect|--no-redirect] [--client C] [--https MODE] [--php X.Y] [--isolation site|shared]",
		Short: "Change a site's aliases, redirection, client, HTTPS mode, PHP version or isolation, then verify it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Domain, o.ClientSet = args[0], cmd.Flags().Changed("client")
			return runWith(o, runF, runSiteEdit)
		},
	}
	f := cmd.Flags()
	listFlag(f, &o.AddAliases, "add-alias", "add an alias (repeatable)")
	listFlag(f, &o.RemoveAliases, "remove-alias", "remove an alias (repeatable)")
	f.BoolVar(&o.Redirect, "redirect", false, "aliases redirect to the domain")
	f.BoolVar(&o.NoRedirect, "no-redirect", false, "aliases serve the site themselves")
	f.StringVar(&o.Client, "client", "", "move the site to this client ('': to no client)")
	allowEmpty(f, "client")
	f.StringVar(&o.HTTPS, "https", "", "HTTPS: off, on or required")
	f.StringVar(&o.PHP, "php", "", "the PHP version X.Y the site runs, among those its server has (aegir server show)")
	f.StringVar(&o.Isolation, "isolation", "", "site: a Unix user and php-fpm pool of its own; shared: the server's pool")
	f.BoolVar(&o.Queue, "queue", false, "only queue the verify task; print its id")
	dryRunFlag(f, &o.DryRun)
	return cmd
}

func runSiteEdit(o *SiteEditOptions) error {
	if o.Redirect && o.NoRedirect {
		return invalid("--redirect", "", "cannot be given with --no-redirect")
	}
	if o.HTTPS != "" {
		if err := entities.ValidateOneOf("--https", o.HTTPS, entities.HTTPSModes...); err != nil {
			return err
		}
	}
	if err := validNames("--client", o.Client); err != nil {
		return err
	}
	if o.Isolation != "" {
		if err := entities.ValidateOneOf("--isolation", o.Isolation, entities.Isolations...); err != nil {
			return err
		}
	}
	if err := entities.ValidatePHPVersion("--php", o.PHP); err != nil {
		return err
	}
	for _, l := range []struct {
		field string
		names []string
	}{{"--add-alias", o.AddAliases}, {"--remove-alias", o.RemoveAliases}} {
		for _, n := range l.names {
			if _, err := entities.NormalizeDomain(l.field, n); err != nil {
				return err
			}
		}
	}
	st, v, err := o.site(o.Domain)
	if err != nil {
		return err
	}
	if err := notInstalled(v); err != nil {
		return err
	}
	aliases := append([]string{}, v.Aliases...)
	for _, r := range o.RemoveAliases {
		d, err := entities.NormalizeDomain("--remove-alias", r)
		if err != nil {
			return err
		}
		found := false
		for i, x := range aliases {
			if x == d {
				aliases = append(aliases[:i], aliases[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			return invalid("--remove-alias", r, "is not an alias of "+v.Domain)
		}
	}
	aliases, err = normalizeAliases("--add-alias", v.Domain, append(aliases, o.AddAliases...))
	if err != nil {
		return err
	}
	v.Aliases = aliases
	if o.Redirect {
		v.Redirect = true
	}
	if o.NoRedirect {
		v.Redirect = false
	}
	if o.ClientSet {
		v.Client = o.Client
	}
	if o.HTTPS != "" {
		v.HTTPS = o.HTTPS
	}
	if o.PHP != "" {
		if err := checkPHP(o.App, st, v.Server, o.PHP); err != nil {
			return err
		}
		v.PHP = o.PHP
	}
	if o.Isolation != "" {
		v.Isolation = o.Isolation
	}
	if o.DryRun {
		old, err := st.GetSiteByID(o.ctx, v.ID)
		if err != nil {
			return err
		}
		r, err := o.runner()
		if err != nil {
			return err
		}
		pl, err := r.PlanEdit(o.ctx, old, v)
		if err != nil {
			return err
		}
		return o.showPlan(pl)
	}
	t, err := st.UpdateSite(o.ctx, v)
	if err != nil {
		return err
	}
	return o.runOrQueue(t, o.Queue, func() (any, error) { return st.GetSite(o.ctx, v.Domain) })
}

func runSiteTask(o *TaskVerbOptions) error {
	st, v, err := o.site(o.Target)
	if err != nil {
		return err
	}
	return o.queueSiteTask(st, v, o.Type, nil, o.Queue, func() (any, error) { return st.GetSiteByID(o.ctx, v.ID) })
}

// SiteDeleteOptions are site delete's: the site, whether to skip the
// backup taken first, and whether to record it deleted with what cannot
// be reached left behind.
type SiteDeleteOptions struct {
	*App
	Domain                         string
	NoBackup, Force, Queue, DryRun bool
}

func newSiteDeleteCmd(a *App, runF func(*SiteDeleteOptions) error) *cobra.Command {
	o := &SiteDeleteOptions{App: a}
	cmd := bind(&cobra.Command{Use: "delete DOMAIN [--no-backup] [--force]", Short: "Back up a site, then remove its vhost, files, database and user"},
		o, runF, runSiteDelete, &o.Domain)
	f := cmd.Flags()
	f.BoolVar(&o.Queue, "queue", false, "only queue the task; print its id")
	f.BoolVar(&o.NoBackup, "no-backup", false, "do not take a backup first")
	dryRunFlag(f, &o.DryRun)
	f.BoolVar(&o.Force, "force", false, "remove what can be reached (a database server that is down, say) and record the site deleted; the task log lists what is left to do by hand")
	return cmd
}

func runSiteDelete(o *SiteDeleteOptions) error {
	opts := map[string]string{}
	if o.NoBackup {
		opts["no_backup"] = "1"
	}
	if o.Force {
		opts["force"] = "1"
	}
	st, v, err := o.site(o.Domain)
	if err != nil {
		return err
	}
	if o.DryRun {
		return o.planSiteTask(v, entities.TaskSiteDelete, opts)
	}
	q := "Delete " + v.Domain + ": its virtual host, files, database and user? A backup is taken first."
	if o.NoBackup {
		q = "Delete " + v.Domain + ": its virtual host, files, database and user, WITHOUT a backup? It cannot be brought back."
	}
	if err := o.confirm(q); err != nil {
		return err
	}
	return o.queueSiteTask(st, v, entities.TaskSiteDelete, opts, o.Queue, nil) // a deleted site has no record to show
}

func newSiteLoginResetCmd(a *App, runF func(*ArgOptions) error) *cobra.Command {
	return newArgCmd(a, &cobra.Command{
		Use: "login-reset DOMAIN", Short: "Print a one-time login link for the site's admin account",
		Long: `Print a link that logs whoever opens it in as the site's administrator,
once, within 24 hours, and lands on the dashboard. It is printed here only:
it is in no log and no file. WordPress: aegir's must-use plugin
(wp-content/mu-plugins/aegir-login.php, put in place by every install and
verify) takes the link; the site keeps only a hash of its token, which is
in the link's #fragment, so no web server log sees it. The link opens a
page with a "Log in" button (it needs JavaScript), so a mail scanner or a
chat preview that opens it first neither uses it up nor logs in. Drupal:
Drupal's own one-time login link (user 1).`,
	}, runSiteLoginReset, runF)
}

func runSiteLoginReset(o *ArgOptions) error {
	st, v, err := o.site(o.Arg)
	if err != nil {
		return err
	}
	_, link, err := o.loginReset(st, v)
	if err != nil {
		return err
	}
	if o.plainTable() {
		fmt.Fprintln(o.IO.Out, link)
		return nil
	}
	return o.print(struct {
		Domain string `json:"domain" yaml:"domain"`
		Link   string `json:"login_link" yaml:"login_link"`
	}{v.Domain, link})
}

// loginReset runs a login-reset task on site v now and returns the task
// and the one-time link it made (site login-reset, and the API's).
func (a *App) loginReset(st *store.Store, v *entities.Site) (*entities.Task, string, error) {
	t, err := a.queueOn(st, v, entities.TaskSiteLoginReset, nil)
	if err != nil {
		return nil, "", err
	}
	done, link, err := a.runTaskLink(t)
	if err != nil {
		return t, "", err
	}
	if err := taskExit(done); err != nil {
		return done, "", err
	}
	a.taskDone(done, false)
	if link == "" {
		return done, "", &Error{Code: ExitFailed, Err: fmt.Errorf("the platform gave no login link for %s", v.Domain), Hint: "see the task log: aegir task log " + fmt.Sprint(t.ID)}
	}
	return done, link, nil
}

// site opens the store and finds the live site named by a DOMAIN
// argument; a deleted one is not found, with a hint to restore it.
func (a *App) site(arg string) (*store.Store, *entities.Site, error) {
	st, v, err := a.liveSite(arg)
	if errors.Is(err, store.ErrNotFound) {
		if b, _, derr := st.DeletedSiteBackup(a.ctx, v.Domain, 0); derr == nil {
			return nil, nil, &Error{Code: ExitNotFound, Err: fmt.Errorf("site %s was deleted", v.Domain),
				Hint: fmt.Sprintf("bring it back from its backup of %s: aegir site restore %s", b.Created.Local().Format(time.DateTime), v.Domain)}
		}
		return nil, nil, err
	}
	return st, v, err
}

// liveSite opens the store and finds the live site named by a DOMAIN
// argument: its domain or an alias, in any case. When none is found the
// error is a store.NotFoundError and the site returned holds the domain
// looked for.
func (a *App) liveSite(arg string) (*store.Store, *entities.Site, error) {
	domain, err := siteName("domain", arg)
	if err != nil {
		return nil, nil, err
	}
	st, err := a.Store()
	if err != nil {
		return nil, nil, err
	}
	v, err := st.GetSite(a.ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return st, &entities.Site{Domain: domain}, err
	}
	return st, v, err
}
