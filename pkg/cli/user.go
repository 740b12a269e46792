package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	extraCommands = append(extraCommands, (*App).userCmd, (*App).tokenCmd)
}

func (a *App) userCmd() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Users of the HTTP API (aegir serve): admins, and clients' users who see only their client's sites"}
	c.AddCommand(newUserAddCmd(a, nil), newListCmd(a, &cobra.Command{Use: "list", Short: "List users"}, runUserList, nil),
		newShowCmd(a, "Show a user", (*store.Store).GetUser, nil),
		newDeleteCmd(a, "user", "Delete a user and its tokens", (*store.Store).DeleteUser, nil))
	return c
}

// UserAddOptions are user add's: the new user's name, client and role.
type UserAddOptions struct {
	*App
	Name, Client, Role string
}

func newUserAddCmd(a *App, runF func(*UserAddOptions) error) *cobra.Command {
	o := &UserAddOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "add NAME --client C [--role client|admin]",
		Short: "Add a user of the HTTP API",
		Long: `Add a user of the HTTP API (aegir serve). A client's user (--role client, the
default) sees and changes only the sites of its client (--client), their
tasks, backups, certificates and statistics, and of platforms only the
names; an admin sees and changes everything. A user signs in with a token:
aegir token create --user NAME.`,
	}, o, runF, runUserAdd, &o.Name)
	f := cmd.Flags()
	f.StringVar(&o.Client, "client", "", "the client whose sites the user sees (required for a client's user)")
	f.StringVar(&o.Role, "role", entities.RoleClient, "client (only its client's sites) or admin (everything)")
	return cmd
}

func runUserAdd(o *UserAddOptions) error {
	if err := entities.ValidateName("user name", o.Name); err != nil {
		return err
	}
	if err := entities.ValidateOneOf("--role", o.Role, entities.Roles...); err != nil {
		return err
	}
	if err := validNames("--client", o.Client); err != nil {
		return err
	}
	if o.Role == entities.RoleClient && o.Client == "" {
		return invalid("--client", "", "is required for a client's user: the client whose sites it sees (aegir client list)")
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	u := &entities.User{Name: o.Name, Client: o.Client, Role: o.Role}
	if err := st.AddUser(o.ctx, u); err != nil {
		return err
	}
	u, err = st.GetUser(o.ctx, o.Name)
	if err != nil {
		return err
	}
	return o.print(u)
}

func runUserList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) { return st.ListUsers(o.ctx) })
}

func (a *App) tokenCmd() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "API tokens: made for a user, shown once, kept only as a hash"}
	c.AddCommand(newTokenCreateCmd(a, nil), newTokenListCmd(a, nil), newArgCmd(a, &cobra.Command{Use: "revoke ID", Short: "Revoke a token at once"}, runTokenRevoke, nil))
	return c
}

// TokenCreateOptions are token create's: whose token, how long it lasts
// (as typed: 90d, 12h, never) and its scope.
type TokenCreateOptions struct {
	*App
	User, Expires, Scope string
}

func newTokenCreateCmd(a *App, runF func(*TokenCreateOptions) error) *cobra.Command {
	o := &TokenCreateOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "create --user NAME [--expires 90d] [--scope read|write]",
		Short: "Make a token for a user of the HTTP API and print it, once",
		Long: `Make a token for a user of the HTTP API and print it on standard output. It is
shown this once: the state keeps only its SHA-256. Give it as
"Authorization: Bearer TOKEN". A read token only reads; a write token also
starts tasks (install, backup, restore, login-reset ...).`,
	}, o, runF, runTokenCreate)
	f := cmd.Flags()
	f.StringVar(&o.User, "user", "", "the user the token signs in as")
	f.StringVar(&o.Expires, "expires", "90d", "how long the token lasts: days (90d), hours (12h), minutes (30m), or never")
	f.StringVar(&o.Scope, "scope", entities.ScopeRead, "read (only reads) or write (also starts tasks)")
	return cmd
}

// parseExpiry reads a token's lifetime: Nd, or a Go duration (12h, 30m),
// or never (0).
func parseExpiry(field, s string) (time.Duration, error) {
	const rule = "must be a number of days (90d), hours (12h) or minutes (30m), or never"
	if s == "never" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 36500 {
			return 0, invalid(field, s, rule)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < time.Minute {
			return 0, invalid(field, s, rule+" (at least 1m)")
		}
	}
	return d, nil
}

// tokenCreated is what token create prints: the token's record and its
// secret, this once.
type tokenCreated struct {
	*entities.Token `yaml:",inline"`
	Secret          string `json:"token" yaml:"token"`
}

func runTokenCreate(o *TokenCreateOptions) error {
	if o.User == "" {
		return invalid("--user", "", "is required: the user the token signs in as (aegir user list)")
	}
	if err := entities.ValidateName("--user", o.User); err != nil {
		return err
	}
	ttl, err := parseExpiry("--expires", o.Expires)
	if err != nil {
		return err
	}
	if err := entities.ValidateOneOf("--scope", o.Scope, entities.Scopes...); err != nil {
		return err
	}
	if !o.plainTable() {
		if err := o.checkPrint(tokenCreated{Token: &entities.Token{}}); err != nil {
			return err
		}
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	t, secret, err := st.CreateToken(o.ctx, o.User, o.Scope, ttl)
	if err != nil {
		return err
	}
	if o.plainTable() {
		fmt.Fprintln(o.IO.Out, secret)
		until := "never expires"
		if t.Expires != nil {
			until = "expires " + t.Expires.Local().Format(time.DateTime)
		}
		o.infof("token %d for %s (%s, %s): it is shown only now; revoke it with aegir token revoke %d", t.ID, t.User, t.Scope, until, t.ID)
		return nil
	}
	return o.print(tokenCreated{Token: t, Secret: secret})
}

// TokenListOptions are token list's: the user whose tokens to list (empty: all).
type TokenListOptions struct {
	*App
	User string
}

func newTokenListCmd(a *App, runF func(*TokenListOptions) error) *cobra.Command {
	o := &TokenListOptions{App: a}
	cmd := bind(&cobra.Command{Use: "list [--user NAME]", Short: "List tokens (never their secrets)"}, o, runF, runTokenList)
	cmd.Flags().StringVar(&o.User, "user", "", "only this user's tokens")
	return cmd
}

func runTokenList(o *TokenListOptions) error {
	if err := validNames("--user", o.User); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	if o.User != "" {
		if _, err := st.GetUser(o.ctx, o.User); err != nil {
			return err
		}
	}
	v, err := st.ListTokens(o.ctx, o.User)
	if err != nil {
		return err
	}
	return o.print(v)
}

func runTokenRevoke(o *ArgOptions) error {
	id, err := strconv.ParseInt(o.Arg, 10, 64)
	if err != nil || id < 1 {
		return invalid("token ID", o.Arg, "must be a positive whole number (aegir token list shows them)")
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	t, err := st.RevokeToken(o.ctx, id)
	if err != nil {
		return err
	}
	if o.plainTable() {
		o.infof("token %d of %s revoked", t.ID, t.User)
		return nil
	}
	return o.print(t)
}
