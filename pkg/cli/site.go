package cli

import (
	"errors"
	"fmt"
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
	c.AddCommand(a.siteInstallCmd(), a.siteListCmd(), a.siteShowCmd(), a.siteEditCmd())
	for _, v := range []struct{ use, short, typ string }{
		{"verify DOMAIN", "Re-apply a site's record (settings, vhost) and check its health: its database login (remade if gone), php-fpm, its answer", entities.TaskSiteVerify},
		{"disable DOMAIN", "Make a site answer with a \"site disabled\" page", entities.TaskSiteDisable},
		{"enable DOMAIN", "Serve a disabled site again", entities.TaskSiteEnable},
		{"cron DOMAIN", "Run a site's cron now", entities.TaskSiteCron},
		{"updatedb DOMAIN", "Run the site's pending database updates (Drupal update hooks, WordPress upgrade)", entities.TaskSiteUpdateDB},
	} {
		c.AddCommand(a.siteTaskCmd(v.use, v.short, v.typ, nil))
	}
	c.AddCommand(a.siteDeleteCmd(), a.siteLoginResetCmd(), a.siteStatsCmd())
	for _, f := range siteCommands {
		c.AddCommand(f(a))
	}
	return c
}

// siteCommands lets other files of this package add site verbs from their
// init functions (backup, restore, migrate, clone, cert, stats).
var siteCommands []func(*App) *cobra.Command

func (a *App) siteInstallCmd() *cobra.Command {
	var o struct {
		platform, dbServer, client, profile, language, https string
		aliases                                              []string
		redirect, queue                                      bool
	}
	var account siteAccount
	cmd := &cobra.Command{
		Use:     "install DOMAIN --platform P [--db-server S] [--client C] [--profile X] [--alias A]... [--redirect]",
		Aliases: []string{"add"},
		Short:   "Install a new site on a platform",
		Long: `Record a site and install it: a database and user on the database server,
the site's settings, its files directories, the platform's installer, and a
virtual host for the domain and every alias. The install runs at once with
its log shown (--queue leaves it to the dispatcher); a failed install
removes everything it created.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := entities.NormalizeDomain("domain", args[0])
			if err != nil {
				return err
			}
			if o.platform == "" {
				return invalid("--platform", "", "is required: the platform to install on (aegir platform list)")
			}
			if err := validNames("--platform", o.platform); err != nil {
				return err
			}
			aliases, err := normalizeAliases("--alias", domain, o.aliases)
			if err != nil {
				return err
			}
			if o.dbServer != "" {
				if err := entities.ValidateName("--db-server", o.dbServer); err != nil {
					return err
				}
			}
			if o.client != "" {
				if err := entities.ValidateName("--client", o.client); err != nil {
					return err
				}
			}
			if o.profile == "" {
				o.profile = a.cfg.GetString("site.profile")
			}
			if err := entities.ValidateProfile("--profile", o.profile); err != nil {
				return err
			}
			if o.language == "" {
				o.language = a.cfg.GetString("site.language")
			}
			if err := entities.ValidateLanguage("--language", o.language); err != nil {
				return err
			}
			if o.https == "" {
				o.https = a.cfg.GetString("https")
			}
			if err := entities.ValidateOneOf("--https", o.https, entities.HTTPSOff, entities.HTTPSOn, entities.HTTPSRequired); err != nil {
				return err
			}
			opts, err := account.options()
			if err != nil {
				return err
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			p, err := st.GetPlatform(a.ctx, o.platform)
			if err != nil {
				return err
			}
			if o.dbServer == "" {
				o.dbServer, err = defaultDBServer(a, st, p)
				if err != nil {
					return err
				}
			}
			if err := checkDBReach(a, st, p.Server, o.dbServer); err != nil {
				return err
			}
			v := &entities.Site{Domain: domain, Aliases: aliases, Redirect: o.redirect, Platform: p.Name, DBServer: o.dbServer,
				Client: o.client, Profile: o.profile, Language: o.language, HTTPS: o.https}
			t, err := st.AddSiteWithOptions(a.ctx, v, opts)
			if err != nil {
				return err
			}
			return a.runOrQueue(t, o.queue, func() (any, error) { return st.GetSite(a.ctx, domain) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.platform, "platform", "", "the platform to install on")
	f.StringVar(&o.dbServer, "db-server", "", "the database server (default: the platform's server, if it has a database service)")
	f.StringVar(&o.client, "client", "", "the client the site belongs to")
	f.StringVar(&o.profile, "profile", "", "Drupal install profile (default from config: standard)")
	f.StringVar(&o.language, "language", "", "the site's language code (default from config: en)")
	listFlag(f, &o.aliases, "alias", "another domain the site answers to (repeatable)")
	f.BoolVar(&o.redirect, "redirect", false, "aliases answer with a 301 redirect to the domain")
	f.StringVar(&o.https, "https", "", "HTTPS: off, on or required (default from config)")
	f.BoolVar(&o.queue, "queue", false, "only queue the install task; print its id")
	account.flags(f)
	return cmd
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

func (a *App) siteListCmd() *cobra.Command {
	var f store.SiteFilter
	cmd := &cobra.Command{
		Use: "list [--platform P] [--client C] [--status S]", Short: "List sites", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Status != "" {
				if err := entities.ValidateOneOf("--status", f.Status, entities.SiteStatuses...); err != nil {
					return err
				}
			}
			if err := validNames("--platform", f.Platform, "--client", f.Client, "--server", f.Server, "--db-server", f.DBServer); err != nil {
				return err
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			v, err := st.ListSites(a.ctx, f)
			if err != nil {
				return err
			}
			if len(v) == 0 {
				if err := filtersExist(a.ctx, nameFilter{f.Platform, finder(st, (*store.Store).GetPlatform)}, nameFilter{f.Client, finder(st, (*store.Store).GetClient)},
					nameFilter{f.Server, finder(st, (*store.Store).GetServer)}, nameFilter{f.DBServer, finder(st, (*store.Store).GetServer)}); err != nil {
					return err
				}
			}
			return a.print(v)
		},
	}
	cmd.Flags().StringVar(&f.Platform, "platform", "", "only sites on this platform")
	cmd.Flags().StringVar(&f.Client, "client", "", "only this client's sites")
	cmd.Flags().StringVar(&f.Status, "status", "", "only sites in this status (default: all but deleted)")
	cmd.Flags().StringVar(&f.Server, "server", "", "only sites on this web server")
	cmd.Flags().StringVar(&f.DBServer, "db-server", "", "only sites on this database server")
	return cmd
}

func (a *App) siteShowCmd() *cobra.Command {
	return &cobra.Command{
		Use: "show DOMAIN", Short: "Show a site", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, v, err := a.site(args[0])
			if err != nil {
				return err
			}
			if v.Stats, err = st.SiteStats(a.ctx, v); err != nil {
				return err
			}
			if v.Cert, err = siteCert(a, st, v); err != nil {
				return err
			}
			return a.print(v)
		},
	}
}

func (a *App) siteStatsCmd() *cobra.Command {
	var cached bool
	cmd := &cobra.Command{
		Use: "stats DOMAIN", Short: "Read and show a site's users, active users, posts and comments", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, v, err := a.site(args[0])
			if err != nil {
				return err
			}
			if !cached {
				t, err := st.QueueSiteTask(a.ctx, v, entities.TaskSiteStats, nil)
				if err != nil {
					return err
				}
				done, err := a.runTask(t)
				if err != nil {
					return err
				}
				if err := taskExit(done); err != nil {
					return err
				}
				a.taskDone(done, false)
			}
			s, err := st.SiteStats(a.ctx, v)
			if err != nil {
				return err
			}
			if s == nil {
				return &Error{Code: ExitNotFound, Err: fmt.Errorf("no statistics of %s yet", v.Domain), Hint: "run: aegir site stats " + v.Domain}
			}
			return a.print(s)
		},
	}
	cmd.Flags().BoolVar(&cached, "cached", false, "show what the statistics queue last read, without reading again")
	return cmd
}

func (a *App) siteEditCmd() *cobra.Command {
	var o struct {
		add, remove          []string
		redirect, noRedirect bool
		client, https        string
		queue                bool
	}
	cmd := &cobra.Command{
		Use:   "edit DOMAIN [--add-alias A] [--remove-alias A] [--redirect|--no-redirect] [--client C] [--https MODE]",
		Short: "Change a site's aliases, redirection, client or HTTPS mode, then verify it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.redirect && o.noRedirect {
				return invalid("--redirect", "", "cannot be given with --no-redirect")
			}
			if o.https != "" {
				if err := entities.ValidateOneOf("--https", o.https, entities.HTTPSOff, entities.HTTPSOn, entities.HTTPSRequired); err != nil {
					return err
				}
			}
			if o.client != "" {
				if err := entities.ValidateName("--client", o.client); err != nil {
					return err
				}
			}
			for _, l := range []struct {
				field string
				names []string
			}{{"--add-alias", o.add}, {"--remove-alias", o.remove}} {
				for _, n := range l.names {
					if _, err := entities.NormalizeDomain(l.field, n); err != nil {
						return err
					}
				}
			}
			st, v, err := a.site(args[0])
			if err != nil {
				return err
			}
			if err := notInstalled(v); err != nil {
				return err
			}
			aliases := append([]string{}, v.Aliases...)
			for _, r := range o.remove {
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
			aliases, err = normalizeAliases("--add-alias", v.Domain, append(aliases, o.add...))
			if err != nil {
				return err
			}
			v.Aliases = aliases
			if o.redirect {
				v.Redirect = true
			}
			if o.noRedirect {
				v.Redirect = false
			}
			if cmd.Flags().Changed("client") {
				v.Client = o.client
			}
			if o.https != "" {
				v.HTTPS = o.https
			}
			t, err := st.UpdateSite(a.ctx, v)
			if err != nil {
				return err
			}
			return a.runOrQueue(t, o.queue, func() (any, error) { return st.GetSite(a.ctx, v.Domain) })
		},
	}
	f := cmd.Flags()
	listFlag(f, &o.add, "add-alias", "add an alias (repeatable)")
	listFlag(f, &o.remove, "remove-alias", "remove an alias (repeatable)")
	f.BoolVar(&o.redirect, "redirect", false, "aliases redirect to the domain")
	f.BoolVar(&o.noRedirect, "no-redirect", false, "aliases serve the site themselves")
	f.StringVar(&o.client, "client", "", "move the site to this client ('': to no client)")
	allowEmpty(f, "client")
	f.StringVar(&o.https, "https", "", "HTTPS: off, on or required")
	f.BoolVar(&o.queue, "queue", false, "only queue the verify task; print its id")
	return cmd
}

// siteTaskCmd is a verb that records one task on a site and runs it.
func (a *App) siteTaskCmd(use, short, typ string, opts func(cmd *cobra.Command) (map[string]string, error)) *cobra.Command {
	var queue bool
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o map[string]string
			if opts != nil {
				var err error
				if o, err = opts(cmd); err != nil {
					return err
				}
			}
			st, v, err := a.site(args[0])
			if err != nil {
				return err
			}
			if typ == entities.TaskSiteDelete {
				q := "Delete " + v.Domain + ": its virtual host, files, database and user? A backup is taken first."
				if o["no_backup"] == "1" {
					q = "Delete " + v.Domain + ": its virtual host, files, database and user, WITHOUT a backup? It cannot be brought back."
				}
				if err := a.confirm(q); err != nil {
					return err
				}
			}
			t, err := st.QueueSiteTask(a.ctx, v, typ, o)
			if err != nil {
				return err
			}
			return a.runOrQueue(t, queue, func() (any, error) {
				if typ == entities.TaskSiteDelete || typ == entities.TaskSiteLoginReset {
					return nil, nil
				}
				return st.GetSiteByID(a.ctx, v.ID)
			})
		},
	}
	cmd.Flags().BoolVar(&queue, "queue", false, "only queue the task; print its id")
	return cmd
}

func (a *App) siteDeleteCmd() *cobra.Command {
	var noBackup, force bool
	cmd := a.siteTaskCmd("delete DOMAIN [--no-backup] [--force]", "Back up a site, then remove its vhost, files, database and user",
		entities.TaskSiteDelete, func(cmd *cobra.Command) (map[string]string, error) {
			o := map[string]string{}
			if noBackup {
				o["no_backup"] = "1"
			}
			if force {
				o["force"] = "1"
			}
			return o, nil
		})
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not take a backup first")
	cmd.Flags().BoolVar(&force, "force", false, "remove what can be reached (a database server that is down, say) and record the site deleted; the task log lists what is left to do by hand")
	return cmd
}

func (a *App) siteLoginResetCmd() *cobra.Command {
	return &cobra.Command{
		Use: "login-reset DOMAIN", Short: "Print a one-time login link for the site's admin account", Args: cobra.ExactArgs(1),
		Long: `Print a link that logs whoever opens it in as the site's administrator,
once, within 24 hours, and lands on the dashboard. It is printed here only:
it is in no log and no file. WordPress: aegir's must-use plugin
(wp-content/mu-plugins/aegir-login.php, put in place by every install and
verify) takes the link; the site keeps only a hash of its token, which is
in the link's #fragment, so no web server log sees it. The link opens a
page with a "Log in" button (it needs JavaScript), so a mail scanner or a
chat preview that opens it first neither uses it up nor logs in. Drupal:
Drupal's own one-time login link (user 1).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, v, err := a.site(args[0])
			if err != nil {
				return err
			}
			t, err := st.QueueSiteTask(a.ctx, v, entities.TaskSiteLoginReset, nil)
			if err != nil {
				return err
			}
			done, out, err := a.runTaskOutcome(t)
			if err != nil {
				return err
			}
			if err := taskExit(done); err != nil {
				return err
			}
			a.taskDone(done, false)
			if out.LoginLink == "" {
				return &Error{Code: ExitFailed, Err: fmt.Errorf("the platform gave no login link for %s", v.Domain), Hint: "see the task log: aegir task log " + fmt.Sprint(t.ID)}
			}
			if a.plainTable() {
				fmt.Fprintln(a.IO.Out, out.LoginLink)
				return nil
			}
			return a.print(struct {
				Domain string `json:"domain" yaml:"domain"`
				Link   string `json:"login_link" yaml:"login_link"`
			}{v.Domain, out.LoginLink})
		},
	}
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
