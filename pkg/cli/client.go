package cli

import (
	"strconv"

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

// ClientEditOptions are client edit's: the client, its new email
// (EmailSet: --email was given, empty for no address) and its quotas
// (each applied when its flag was given; 0 or empty: no limit).
type ClientEditOptions struct {
	*App
	Name     string
	Email    string
	EmailSet bool
	// QuotaSites and QuotaBackups are counts, QuotaDisk a size (10G), as
	// given; nil: not given.
	QuotaSites   *string
	QuotaDisk    *string
	QuotaBackups *string
}

func newClientEditCmd(a *App, runF func(*ClientEditOptions) error) *cobra.Command {
	o := &ClientEditOptions{App: a}
	var sites, disk, backups string
	cmd := &cobra.Command{
		Use: "edit NAME", Short: "Change a client's email and quotas", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.EmailSet = args[0], cmd.Flags().Changed("email")
			o.QuotaSites, o.QuotaDisk, o.QuotaBackups = givenValue(cmd, "quota-sites", sites), givenValue(cmd, "quota-disk", disk), givenValue(cmd, "quota-backups", backups)
			return runWith(o, runF, runClientEdit)
		},
	}
	cmd.Flags().StringVar(&o.Email, "email", "", "the client's email address")
	cmd.Flags().StringVar(&sites, "quota-sites", "", "the most live sites the client may have (0: no limit)")
	cmd.Flags().StringVar(&disk, "quota-disk", "", "the most disk its sites' databases and files may take, e.g. 10G (0: no limit)")
	cmd.Flags().StringVar(&backups, "quota-backups", "", "the most backups its sites keep in all; the backup queue deletes the oldest beyond (0: no limit)")
	allowEmpty(cmd.Flags(), "email", "quota-sites", "quota-disk", "quota-backups") // no email address, no limit
	return cmd
}

// givenValue is v when flag was given, else nil.
func givenValue(cmd *cobra.Command, flag, v string) *string {
	if !cmd.Flags().Changed(flag) {
		return nil
	}
	return &v
}

// quotaCount reads a count quota: a whole number, 0 or empty for none.
func quotaCount(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, invalid(field, s, "must be a whole number, 0 for no limit")
	}
	return n, nil
}

func runClientEdit(o *ClientEditOptions) error {
	if err := entities.ValidateEmail("--email", o.Email); err != nil {
		return err
	}
	var sites, disk, backups int64
	var err error
	if o.QuotaSites != nil {
		if sites, err = quotaCount("--quota-sites", *o.QuotaSites); err != nil {
			return err
		}
	}
	if o.QuotaDisk != nil {
		if disk, err = entities.ParseSize("--quota-disk", *o.QuotaDisk); err != nil {
			return err
		}
	}
	if o.QuotaBackups != nil {
		if backups, err = quotaCount("--quota-backups", *o.QuotaBackups); err != nil {
			return err
		}
	}
	st, v, err := lookup(o.App, o.Name, (*store.Store).GetClient)
	if err != nil {
		return err
	}
	if o.EmailSet {
		v.Email = o.Email
	}
	if o.QuotaSites != nil {
		v.QuotaSites = sites
	}
	if o.QuotaDisk != nil {
		v.QuotaDisk = disk
	}
	if o.QuotaBackups != nil {
		v.QuotaBackups = backups
	}
	if err := st.UpdateClient(o.ctx, v); err != nil {
		return err
	}
	return o.print(v)
}
