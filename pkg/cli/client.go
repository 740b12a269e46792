package cli

import (
	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func (a *App) clientCmd() *cobra.Command {
	c := &cobra.Command{Use: "client", Short: "Clients: the people or groups that run sites"}
	c.AddCommand(newClientAddCmd(a, nil), newClientListCmd(a, nil), newShowCmd(a, "Show a client", (*store.Store).GetClient, nil),
		newClientEditCmd(a, nil), newClientDeleteCmd(a, nil))
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
	cmd := &cobra.Command{
		Use: "add NAME", Short: "Add a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runWith(o, runF, runClientAdd)
		},
	}
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

// ClientListOptions are client list's: none but the invocation.
type ClientListOptions struct{ *App }

func newClientListCmd(a *App, runF func(*ClientListOptions) error) *cobra.Command {
	o := &ClientListOptions{App: a}
	return &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runWith(o, runF, runClientList) },
	}
}

func runClientList(o *ClientListOptions) error {
	st, err := o.Store()
	if err != nil {
		return err
	}
	v, err := st.ListClients(o.ctx)
	if err != nil {
		return err
	}
	return o.print(v)
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

// ClientDeleteOptions are client delete's: the client's name.
type ClientDeleteOptions struct {
	*App
	Name string
}

func newClientDeleteCmd(a *App, runF func(*ClientDeleteOptions) error) *cobra.Command {
	o := &ClientDeleteOptions{App: a}
	return &cobra.Command{
		Use: "delete NAME", Short: "Delete a client that has no sites", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runWith(o, runF, runClientDelete)
		},
	}
}

func runClientDelete(o *ClientDeleteOptions) error {
	st, err := o.Store()
	if err != nil {
		return err
	}
	if err := st.DeleteClient(o.ctx, o.Name); err != nil {
		return err
	}
	o.infof("client %s deleted", o.Name)
	return nil
}
