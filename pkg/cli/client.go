package cli

import (
	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func (a *App) clientCmd() *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "Clients: the people or groups that run sites"}
	var email string
	add := &cobra.Command{
		Use: "add NAME", Short: "Add a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := &entities.Client{Name: args[0], Email: email}
			if err := entities.ValidateName("client name", v.Name); err != nil {
				return err
			}
			if err := entities.ValidateEmail("--email", v.Email); err != nil {
				return err
			}
			st, err := a.Store()
			if err != nil {
				return err
			}
			if err := st.AddClient(a.ctx, v); err != nil {
				return err
			}
			v, err = st.GetClient(a.ctx, v.Name)
			if err != nil {
				return err
			}
			return a.print(v)
		},
	}
	add.Flags().StringVar(&email, "email", "", "the client's email address")

	list := &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.Store()
			if err != nil {
				return err
			}
			v, err := st.ListClients(a.ctx)
			if err != nil {
				return err
			}
			return a.print(v)
		},
	}
	show := showCmd(a, "Show a client", (*store.Store).GetClient)
	var editEmail string
	edit := &cobra.Command{
		Use: "edit NAME", Short: "Change a client's email", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := entities.ValidateEmail("--email", editEmail); err != nil {
				return err
			}
			st, v, err := lookup(a, args[0], (*store.Store).GetClient)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("email") {
				v.Email = editEmail
			}
			if err := st.UpdateClient(a.ctx, v); err != nil {
				return err
			}
			return a.print(v)
		},
	}
	edit.Flags().StringVar(&editEmail, "email", "", "the client's email address")
	allowEmpty(edit.Flags(), "email") // no email address
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a client that has no sites", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.Store()
			if err != nil {
				return err
			}
			if err := st.DeleteClient(a.ctx, args[0]); err != nil {
				return err
			}
			a.infof("client %s deleted", args[0])
			return nil
		},
	}
	c.AddCommand(add, list, show, edit, del)
	return c
}
