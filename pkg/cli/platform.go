package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func (a *App) platformCmd() *cobra.Command {
	c := &cobra.Command{Use: "platform", Short: "Platforms: code bases (Drupal, WordPress) on a web server, on which sites are published"}

	var server, root, typ, drush, pushFrom string
	var queue bool
	add := &cobra.Command{
		Use:   "add NAME --server S --root DIR [--type drupal|wordpress] [--push-from LOCALDIR]",
		Short: "Add a platform, then verify it",
		Long: `Add a platform: a code base at --root on the web server --server. Its type
and core version are detected by the verify task that runs at once (use
--queue to leave it to the dispatcher).

With --push-from, the verify task first copies the code from a directory
on this machine (the master) to --root on the server: rsync over SSH when
both ends have rsync (aegir's key and known_hosts, host keys checked
strictly), SFTP otherwise. Files are added and replaced, never deleted;
they belong to the server's SSH user. See docs/remote-servers.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := entities.ValidateName("platform name", args[0]); err != nil {
				return err
			}
			if server == "" {
				return invalid("--server", "", "is required: the web server the platform is on (aegir server list)")
			}
			if err := validNames("--server", server); err != nil {
				return err
			}
			if err := entities.ValidateServerPath("--root", root); err != nil {
				return err
			}
			if typ != "" {
				if err := entities.ValidateOneOf("--type", typ, entities.PlatformDrupal, entities.PlatformWordPress); err != nil {
					return err
				}
			}
			if drush != "" {
				if err := entities.ValidateAbsPath("--drush", drush); err != nil {
					return err
				}
			}
			var opts map[string]string
			if pushFrom != "" {
				if err := localDir("--push-from", pushFrom); err != nil {
					return err
				}
				opts = map[string]string{"push_from": pushFrom}
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			p := &entities.Platform{Name: args[0], Server: server, Root: root, Type: typ, Drush: drush}
			t, err := st.AddPlatformWithOptions(a.ctx, p, opts)
			if err != nil {
				return err
			}
			return a.runOrQueue(t, queue, func() (any, error) { return st.GetPlatform(a.ctx, p.Name) })
		},
	}
	add.Flags().StringVar(&server, "server", "", "the web server the platform is on")
	add.Flags().StringVar(&root, "root", "", "the platform's directory on that server (absolute)")
	add.Flags().StringVar(&typ, "type", "", "drupal or wordpress (detected when not given)")
	add.Flags().StringVar(&drush, "drush", "", "use this drush (path on the server) for Drupal steps instead of aegir's own")
	add.Flags().StringVar(&pushFrom, "push-from", "", "copy the platform's code from this directory on this machine to --root on the server first")
	add.Flags().BoolVar(&queue, "queue", false, "only queue the verify task; print its id")

	var listServer string
	list := &cobra.Command{
		Use: "list", Short: "List platforms", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validNames("--server", listServer); err != nil {
				return err
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			v, err := st.ListPlatforms(a.ctx, listServer)
			if err != nil {
				return err
			}
			if len(v) == 0 {
				if err := filtersExist(a.ctx, nameFilter{listServer, finder(st, (*store.Store).GetServer)}); err != nil {
					return err
				}
			}
			return a.print(v)
		},
	}
	list.Flags().StringVar(&listServer, "server", "", "only platforms on this server")
	show := showCmd(a, "Show a platform", (*store.Store).GetPlatform)
	c.AddCommand(add, list, show,
		a.platformTaskCmd("verify NAME", "Verify a platform: root readable, sites dir writable, core version and packages recorded", entities.TaskPlatformVerify),
		a.platformTaskCmd("import NAME", "Import the sites found on a platform as installed sites, and verify each", entities.TaskPlatformImport),
		a.platformTaskCmd("delete NAME", "Delete a platform that has no sites (its code stays on disk)", entities.TaskPlatformDelete),
	)
	return c
}

// platformTaskCmd is a verb that records one task on a platform.
func (a *App) platformTaskCmd(use, short, typ string) *cobra.Command {
	var queue bool
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, p, err := lookup(a, args[0], (*store.Store).GetPlatform)
			if err != nil {
				return err
			}
			t, err := st.QueuePlatformTask(a.ctx, p, typ, nil)
			if err != nil {
				return err
			}
			return a.runOrQueue(t, queue, func() (any, error) {
				if typ == entities.TaskPlatformDelete {
					return nil, nil
				}
				return st.GetPlatform(a.ctx, p.Name)
			})
		},
	}
	cmd.Flags().BoolVar(&queue, "queue", false, "only queue the task; print its id")
	return cmd
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
