package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func (a *App) platformCmd() *cobra.Command {
	c := &cobra.Command{Use: "platform", Short: "Platforms: code bases (Drupal, WordPress) on a web server, on which sites are published"}
	c.AddCommand(newPlatformAddCmd(a, nil),
		newByServerListCmd(a, &cobra.Command{Use: "list", Short: "List platforms"}, "only platforms on this server", runPlatformList, nil), newShowCmd(a, "Show a platform", (*store.Store).GetPlatform, nil),
		newTaskVerbCmd(a, "verify NAME", "Verify a platform: root readable, sites dir writable, core version and packages recorded", entities.TaskPlatformVerify, runPlatformTask, nil),
		newTaskVerbCmd(a, "import NAME", "Import the sites found on a platform as installed sites, and verify each", entities.TaskPlatformImport, runPlatformTask, nil),
		newTaskVerbCmd(a, "delete NAME", "Delete a platform that has no sites (its code stays on disk)", entities.TaskPlatformDelete, runPlatformTask, nil),
		newPlatformMigrateCmd(a, nil),
		newArgCmd(a, &cobra.Command{Use: "lock NAME", Short: "Lock a platform: it takes no new sites (install, clone, migrate onto it); verify, migrate away and delete still run"}, runPlatformLock, nil),
		newArgCmd(a, &cobra.Command{Use: "unlock NAME", Short: "Unlock a platform: new sites may be installed, cloned and migrated onto it again"}, runPlatformUnlock, nil),
	)
	return c
}

// PlatformAddOptions are platform add's: the platform's name, server,
// root and type, a drush of its own, and a directory to push its code from.
type PlatformAddOptions struct {
	*App
	Name, Server, Root, Type, Drush, PushFrom string
	// A platform aegir builds: the git repository and ref, composer
	// install after the checkout, or composer create-project of a package.
	Git, Ref, ComposerProject string
	Composer, Queue, Locked   bool
}

func newPlatformAddCmd(a *App, runF func(*PlatformAddOptions) error) *cobra.Command {
	o := &PlatformAddOptions{App: a}
	cmd := &cobra.Command{
		Use:   "add NAME --server S --root DIR [--type drupal|wordpress] [--push-from LOCALDIR | --git URL [--ref R] [--composer] | --composer-project PKG[:V]] [--locked]",
		Short: "Add a platform, then verify it",
		Long: `Add a platform: a code base at --root on the web server --server. Its type
and core version are detected by the verify task that runs at once (use
--queue to leave it to the dispatcher).

With --push-from, the verify task first copies the code from a directory
on this machine (the master) to --root on the server: rsync over SSH when
both ends have rsync (aegir's key and known_hosts, host keys checked
strictly), SFTP otherwise. Files are added and replaced, never deleted;
they belong to the server's SSH user. See docs/remote-servers.md.

With --git, the verify task first builds the platform on its server: git
clones URL (at the tag or branch --ref) into --root, which must not exist
yet, and records the commit; --composer then runs composer install
--no-dev in it. --composer-project PKG[:VERSION] instead makes the tree
with composer create-project. The server's git and composer do the work,
with the server's access to the repository; their output goes into the
verify task's log. A failed build leaves nothing at --root: fix the cause
and retry the task (aegir task retry ID). platform show gives the commit
and the core version (composer.lock's when it names the core package).
See docs/platforms.md.`,
	}
	bind(cmd, o, runF, runPlatformAdd, &o.Name)
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "the web server the platform is on")
	f.StringVar(&o.Root, "root", "", "the platform's directory on that server (absolute)")
	f.StringVar(&o.Type, "type", "", "drupal or wordpress (detected when not given)")
	f.StringVar(&o.Drush, "drush", "", "use this drush (path on the server) for Drupal steps instead of aegir's own")
	f.StringVar(&o.PushFrom, "push-from", "", "copy the platform's code from this directory on this machine to --root on the server first")
	f.StringVar(&o.Git, "git", "", "build the platform: clone this git repository (URL, user@host:path or a path on the server) into --root")
	f.StringVar(&o.Ref, "ref", "", "with --git: the tag or branch to check out (default: the repository's default branch)")
	f.BoolVar(&o.Composer, "composer", false, "with --git: run composer install --no-dev --no-interaction in the checkout")
	f.StringVar(&o.ComposerProject, "composer-project", "", "build the platform with composer create-project PKG[:VERSION] into --root")
	f.BoolVar(&o.Locked, "locked", false, "add it locked: no sites go on it until aegir platform unlock NAME (default from config: platform.locked)")
	f.BoolVar(&o.Queue, "queue", false, "only queue the verify task; print its id")
	return cmd
}

func runPlatformAdd(o *PlatformAddOptions) error {
	if err := entities.ValidateName("platform name", o.Name); err != nil {
		return err
	}
	if o.Server == "" {
		return invalid("--server", "", "is required: the web server the platform is on (aegir server list)")
	}
	if err := validNames("--server", o.Server); err != nil {
		return err
	}
	if err := entities.ValidateServerPath("--root", o.Root); err != nil {
		return err
	}
	if o.Type != "" {
		if err := entities.ValidateOneOf("--type", o.Type, entities.PlatformTypes...); err != nil {
			return err
		}
	}
	if o.Drush != "" {
		if err := entities.ValidateAbsPath("--drush", o.Drush); err != nil {
			return err
		}
	}
	opts := map[string]string{}
	if o.PushFrom != "" {
		if err := localDir("--push-from", o.PushFrom); err != nil {
			return err
		}
		opts["push_from"] = o.PushFrom
	}
	p := &entities.Platform{Name: o.Name, Server: o.Server, Root: o.Root, Type: o.Type, Drush: o.Drush,
		Locked: o.Locked || o.cfg.GetBool("platform.locked")}
	if err := o.buildSettings(p, opts); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	if len(opts) == 0 {
		opts = nil
	}
	t, err := st.AddPlatformWithOptions(o.ctx, p, opts)
	if err != nil {
		return err
	}
	return o.runOrQueue(t, o.Queue, func() (any, error) { return st.GetPlatform(o.ctx, p.Name) })
}

// buildSettings checks the build flags and puts them in p (its record)
// and opts (its verify task's options, which the back end builds from).
func (o *PlatformAddOptions) buildSettings(p *entities.Platform, opts map[string]string) error {
	switch {
	case o.Git == "" && o.Ref != "":
		return invalid("--ref", o.Ref, "needs --git: the repository to check it out from")
	case o.Git == "" && o.Composer:
		return invalid("--composer", "", "needs --git: composer install runs in the checkout")
	case o.ComposerProject != "" && (o.Git != "" || o.Composer):
		return invalid("--composer-project", o.ComposerProject, "makes the tree itself: give it without --git and --composer")
	case (o.Git != "" || o.ComposerProject != "") && o.PushFrom != "":
		return invalid("--push-from", o.PushFrom, "copies a tree that exists: give it without --git and --composer-project")
	}
	if o.Git != "" {
		if err := entities.ValidateGitURL("--git", o.Git); err != nil {
			return err
		}
		p.GitURL, opts["git_url"] = o.Git, o.Git
	}
	if o.Ref != "" {
		if err := entities.ValidateGitRef("--ref", o.Ref); err != nil {
			return err
		}
		p.GitRef, opts["git_ref"] = o.Ref, o.Ref
	}
	if o.Composer {
		p.Composer = entities.ComposerInstall
	}
	if o.ComposerProject != "" {
		if err := entities.ValidateComposerPackage("--composer-project", o.ComposerProject); err != nil {
			return err
		}
		p.Composer = entities.ComposerProject + o.ComposerProject
	}
	if p.Composer != "" {
		opts["composer"] = p.Composer
	}
	return nil
}

func runPlatformList(o *ByServerOptions) error {
	if err := validNames("--server", o.Server); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	v, err := st.ListPlatforms(o.ctx, o.Server)
	if err != nil {
		return err
	}
	if len(v) == 0 {
		if err := filtersExist(o.ctx, nameFilter{o.Server, finder(st, (*store.Store).GetServer)}); err != nil {
			return err
		}
	}
	return o.print(v)
}

func runPlatformTask(o *TaskVerbOptions) error {
	st, p, err := lookup(o.App, o.Target, (*store.Store).GetPlatform)
	if err != nil {
		return err
	}
	t, err := st.QueuePlatformTask(o.ctx, p, o.Type, nil)
	if err != nil {
		return err
	}
	var after func() (any, error) // a deleted platform has no record to show
	if o.Type != entities.TaskPlatformDelete {
		after = func() (any, error) { return st.GetPlatform(o.ctx, p.Name) }
	}
	return o.runOrQueue(t, o.Queue, after)
}

func runPlatformLock(o *ArgOptions) error   { return setPlatformLock(o, true) }
func runPlatformUnlock(o *ArgOptions) error { return setPlatformLock(o, false) }

// setPlatformLock locks or unlocks the platform o.Arg and shows it.
func setPlatformLock(o *ArgOptions, locked bool) error {
	st, p, err := lookup(o.App, o.Arg, (*store.Store).GetPlatform)
	if err != nil {
		return err
	}
	if err := st.LockPlatform(o.ctx, p.ID, locked); err != nil {
		return err
	}
	word := "unlocked: new sites may go on it"
	if locked {
		word = "locked: it takes no new sites (aegir platform unlock " + p.Name + " to open it again)"
	}
	o.infof("platform %s %s", p.Name, word)
	p, err = st.GetPlatform(o.ctx, p.Name)
	if err != nil {
		return err
	}
	return o.print(p)
}

// localDir checks that p is an absolute path to a directory on this
// machine.
func localDir(field, p string) error {
	if err := entities.ValidateAbsPath(field, p); err != nil {
		return err
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		return invalid(field, p, "must be a directory on this machine")
	}
	return nil
}
