package cli

import (
	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func (a *App) clientCmd() *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "Clients: the people or groups that run sites"}
	c.AddCommand(newClientAddCmd(a, nil), newListCmd(a, &cobra.Command{Use: "list", Short: "List clients"}, runClientList, nil), newShowCmd(a, "Show a client", (*store.Store).GetClient, nil),
		newClientEditCmd(a, nil), newDeleteCmd(a, "client", "Delete a client that has no sites", (*store.Store).DeleteClient, nil))
	return c
}

// ClientAddOptions are client add's: the new client's name and email.
type ClientAddOptions struct {
	*App
	Name  string
	Email string
}

func newClientAddCmd(a *App, runF func(*ClientAddOptions) error) *cobra.Command {
	o := &ClientAddOptions{App: a}
	cmd := bind(&cobra.Command{Use: "add NAME", Short: "Add a client"}, o, runF, runClientAdd, &o.Name)
	cmd.Flags().StringVar(&o.Email, "email", "", "the client's email address")
	return cmd
}

func runClientAdd(o *ClientAddOptions) error {
	v := &entities.Client{Name: o.Name, Email: o.Email}
	if err := entities.ValidateName("client name", v.Name); err != nil {
		return err
	}
	if err := entities.ValidateEmail("--email", v.Email); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	if err := st.AddClient(o.ctx, v); err != nil {
		return err
	}
	v, err = st.GetClient(o.ctx, v.Name)
	if err != nil {
		return err
	}
	return o.print(v)
}

func runClientList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) { return st.ListClients(o.ctx) })
}

// ClientEditOptions are client edit's: the client and its new email
// (EmailSet: --email was given, empty for no address).
type ClientEditOptions struct {
	*App
	Name     string
	Email    string
	EmailSet bool
}

func newClientEditCmd(a *App, runF func(*ClientEditOptions) error) *cobra.Command {
	o := &ClientEditOptions{App: a}
	cmd := &cobra.Command{
		Use: "edit NAME", Short: "Change a client's email", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.EmailSet = args[0], cmd.Flags().Changed("email")
			return runWith(o, runF, runClientEdit)
		},
	}
	cmd.Flags().StringVar(&o.Email, "email", "", "the client's email address")
	allowEmpty(cmd.Flags(), "email") // no email address
	return cmd
}

func runClientEdit(o *ClientEditOptions) error {
	if err := entities.ValidateEmail("--email", o.Email); err != nil {
		return err
	}
	st, v, err := lookup(o.App, o.Name, (*store.Store).GetClient)
	if err != nil {
		return err
	}
	if o.EmailSet {
		v.Email = o.Email
	}
	if err := st.UpdateClient(o.ctx, v); err != nil {
		return err
	}
	return o.print(v)
}
