package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// stateLocator is where the state is: the state key (a PostgreSQL DSN, or
// a SQLite file's absolute path), else AEGIR_HOME/aegir.db.
func (a *App) stateLocator() string {
	if s := a.cfg.GetString("state"); s != "" {
		return s
	}
	return filepath.Join(a.home, "aegir.db")
}

// stateShown is the state's locator to print: a DSN without its password.
func (a *App) stateShown() string {
	if s := a.stateLocator(); store.IsPostgres(s) {
		return store.RedactDSN(s)
	}
	return a.stateLocator()
}

// openState opens the state (create: make it if missing, as aegir init).
// A PostgreSQL state's password comes from state_password_file, else from
// the PostgreSQL environment (PGPASSWORD, ~/.pgpass): never from the
// command line or the DSN in the config (checkState refuses one).
func (a *App) openState(create bool) (*store.Store, error) {
	loc := a.stateLocator()
	o, err := a.stateOptions(loc)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenWith(a.ctx, loc, create, o)
	var moved *store.MovedError
	if errors.As(err, &moved) && !create && a.readOnlyCmd {
		// A command that only reads shows the old state as it was at the
		// move; it could not change it (read only).
		ro, rerr := store.OpenReadOnlyWith(a.ctx, loc, o)
		if rerr == nil {
			a.warnf("%s; shown read only, as it was then (set state: %s in aegir.yaml, or AEGIR_STATE, for the state in use)", a.movedErr(moved).Error(), moved.To)
			return ro, nil
		}
	}
	if errors.As(err, &moved) {
		return nil, a.movedErr(moved)
	}
	var dbe *store.DBError
	switch {
	case errors.As(err, &dbe):
		return nil, dbErr(dbe, "fix state in "+a.stateSource(), "the password (state_password_file, PGPASSWORD or ~/.pgpass)")
	case errors.Is(err, store.ErrNotInitialized):
		hint := "run: aegir init (or point --home / AEGIR_HOME at an existing aegir home)"
		if src := a.configSource("state"); src != "" {
			hint = "check state in " + src + " (a mistyped path or database?); if it is the right one and new, aegir init makes an empty state there"
		}
		return nil, &Error{Code: ExitUsage, Err: fmt.Errorf("%w (named by %s)", err, a.stateSetting()), Hint: hint}
	case err != nil && store.IsPostgres(loc):
		return nil, &Error{Err: err, Code: ExitFailed, Hint: "check the state key (aegir.yaml or AEGIR_STATE), that the database exists and is reachable, and the password (state_password_file, PGPASSWORD or ~/.pgpass)"}
	}
	return st, err
}

// stateSource is where the state key was set: the config file or
// AEGIR_STATE (its default, when unset, is no PostgreSQL state).
func (a *App) stateSource() string {
	if src := a.configSource("state"); src != "" {
		return src
	}
	return "aegir.yaml (or AEGIR_STATE)"
}

// dbErr is the error for a PostgreSQL state's server refusing it: exit 2
// for what the user's settings name wrong (a database missing, a setting
// the server does not know), as for a state not initialised; exit 1 for
// the rest. fix says how to fix the setting, password where the password
// comes from.
func dbErr(e *store.DBError, fix, password string) error {
	switch e.Problem {
	case store.ProblemNoDatabase:
		return &Error{Code: ExitUsage, Err: e, Hint: fmt.Sprintf("create it (createdb -O %s %s, docs/masters.md step 1), or %s", e.User, e.Database, fix)}
	case store.ProblemUnknownSetting:
		return &Error{Code: ExitUsage, Err: e, Hint: fix + ": a parameter of its URL is neither a connection parameter nor a server setting"}
	case store.ProblemAuth:
		return &Error{Code: ExitFailed, Err: e, Hint: "check the user in the URL and " + password}
	case store.ProblemPermission:
		return &Error{Code: ExitFailed, Err: e, Hint: fmt.Sprintf("make %s the database's owner (ALTER DATABASE %s OWNER TO %s; docs/masters.md step 1)", e.User, e.Database, e.User)}
	}
	return &Error{Code: ExitFailed, Err: e, Hint: "check that the PostgreSQL server is up and reachable from this master, or " + fix}
}

// movedErr is the error for a state that state migrate moved: use the
// new one, or take the mark off this one (state reopen).
func (a *App) movedErr(m *store.MovedError) error {
	pw := ""
	if store.IsPostgres(m.To) {
		pw = ", with state_password_file if its user needs a password"
	}
	return &Error{Code: ExitUsage,
		Err: fmt.Errorf("the state %s (%s) was moved to %s on %s by aegir state migrate: its records are kept there now, not here",
			m.Path, a.stateSetting(), m.To, m.At.UTC().Format("2006-01-02 15:04 UTC")),
		Hint: fmt.Sprintf("set state: %s in aegir.yaml (or AEGIR_STATE)%s; to use this old state again instead, as it was at the move: aegir state reopen", m.To, pw)}
}

// stateSetting says which setting named the state: the state key in the
// config file or AEGIR_STATE, or the default.
func (a *App) stateSetting() string {
	if src := a.configSource("state"); src != "" {
		return "state in " + src
	}
	return "the default state, AEGIR_HOME/aegir.db"
}

// stateOptions are the options to open the state at loc with: a
// PostgreSQL state's password from state_password_file.
func (a *App) stateOptions(loc string) (store.Options, error) {
	var o store.Options
	if store.IsPostgres(loc) {
		if f := a.cfg.GetString("state_password_file"); f != "" {
			pw, err := readPasswordFile(f)
			if err != nil {
				return o, a.configInvalid("state_password_file", f, err.Error())
			}
			o.Password = pw
		}
	}
	return o, nil
}

// checkState is the state key's rule: a postgres:// DSN without a
// password, or a SQLite file's absolute path.
func checkState(s string) error {
	if s == "" {
		return nil
	}
	if store.IsPostgres(s) {
		if store.DSNHasPassword(s) {
			return fmt.Errorf("must not hold a password (it would sit in the config file or the environment): put it in a file named by state_password_file, in PGPASSWORD or in ~/.pgpass")
		}
		return store.CheckDSN(s)
	}
	if strings.Contains(s, "://") {
		return fmt.Errorf("must be a postgres:// (or postgresql://) URL or the absolute path of a SQLite file")
	}
	if !filepath.IsAbs(s) && strings.Contains(s, "=") {
		return fmt.Errorf("must be a postgres://USER@HOST[:PORT]/DB URL (PostgreSQL's key=value form, host=... dbname=..., is not taken: write it as a URL) or the absolute path of a SQLite file")
	}
	if err := entities.ValidateAbsPath("state", s); err != nil {
		return err
	}
	if fi, err := os.Stat(s); err == nil && fi.IsDir() {
		return fmt.Errorf("is a directory: must be a SQLite file's path, such as %s", filepath.Join(s, "aegir.db"))
	}
	return nil
}

// readPasswordFile reads a password file: its first line, which must not
// be empty, from a file no one else may read (mode 0600 or stricter).
func readPasswordFile(p string) (string, error) {
	if err := entities.ValidateAbsPath("state_password_file", p); err != nil {
		return "", err
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("must be a readable file on this machine")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("must be readable by its owner only (chmod 600 %s)", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("must be readable by this user")
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("must hold the password on its first line")
	}
	return pw, nil
}

func init() { extraCommands = append(extraCommands, (*App).stateCmd) }

func (a *App) stateCmd() *cobra.Command {
	c := &cobra.Command{Use: "state", Short: "The state database: copy it between SQLite and PostgreSQL"}
	c.AddCommand(newStateMigrateCmd(a, nil), newStateReopenCmd(a, nil))
	return c
}

// StateMigrateOptions are state migrate's: the target state, and the file
// of its PostgreSQL password.
type StateMigrateOptions struct {
	*App
	To, PasswordFile string
}

func newStateMigrateCmd(a *App, runF func(*StateMigrateOptions) error) *cobra.Command {
	o := &StateMigrateOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "migrate --to DSN|FILE",
		Short: "Copy the state into an empty PostgreSQL database or SQLite file",
		Long: `Copy every record of the state (the state key, else AEGIR_HOME/aegir.db)
into another one: a PostgreSQL database (--to postgres://USER@HOST/DB, which
must exist; aegir makes its tables) or a SQLite file (--to /path/aegir.db).
The target must be empty: a state with records is refused and left as it
was. The copy is one transaction: it writes all or nothing. Stop the
dispatchers first (hosting dispatch, hosting queued, the cron entry), copy,
then point the state key (aegir.yaml, or AEGIR_STATE) at the target. A task
processing under a live lease is refused (its dispatcher still runs); one
whose lease ran out is copied as it is, and the first hosting dispatch on
the new state rescues it.

The target's password is never given on the command line: --password-file
names a file (mode 0600) that holds it, else PGPASSWORD or ~/.pgpass.
docs/masters.md tells how several masters share a PostgreSQL state.

When the copy is done, the old state is marked moved (where to, and when):
every command that writes refuses it from then on (exit 2), so that a home
still pointing at it (a typo in aegir.yaml, AEGIR_STATE unset) does not go
on with a copy that no longer changes; list, show and log (and shell
completion) read it read only, with a warning; a hosting queued running on
it claims nothing more, lets its tasks finish and exits 2, and an aegir
serve stops answering and exits 2. aegir state reopen takes the
mark off. A moved state cannot be copied again (copy its new one instead),
and a copy back needs an empty target: a new file, or a new database.`,
		Example: `  aegir state migrate --to postgres://aegir@db1.example.com/aegir --password-file /root/.aegir-state-pw
  aegir state migrate --to /var/aegir/aegir.db`,
	}, o, runF, runStateMigrate)
	cmd.Flags().StringVar(&o.To, "to", "", "the target: postgres://USER@HOST[:PORT]/DB (no password) or a SQLite file's absolute path")
	cmd.Flags().StringVar(&o.PasswordFile, "password-file", "", "file holding the target PostgreSQL user's password (mode 0600)")
	return cmd
}

func runStateMigrate(o *StateMigrateOptions) error {
	var opts store.Options
	switch {
	case o.To == "":
		return invalid("--to", "", "is required: a postgres:// DSN or a SQLite file's absolute path")
	case store.IsPostgres(o.To) && store.DSNHasPassword(o.To):
		return invalid("--to", store.RedactDSN(o.To), "must not hold a password (a command line is visible to every user): use --password-file, PGPASSWORD or ~/.pgpass")
	case store.IsPostgres(o.To) && store.CheckDSN(o.To) != nil:
		return invalid("--to", store.RedactDSN(o.To), store.CheckDSN(o.To).Error())
	case !store.IsPostgres(o.To):
		if err := checkState(o.To); err != nil {
			rule := err.Error()
			var ie *entities.InvalidError
			if errors.As(err, &ie) {
				rule = ie.Rule
			}
			return invalid("--to", o.To, rule)
		}
		if o.PasswordFile != "" {
			return invalid("--password-file", o.PasswordFile, "is for a PostgreSQL target only")
		}
	}
	if o.PasswordFile != "" {
		pw, err := readPasswordFile(o.PasswordFile)
		if err != nil {
			return invalid("--password-file", o.PasswordFile, err.Error())
		}
		opts.Password = pw
	}
	src, err := o.Store()
	if err != nil {
		return err
	}
	expired, err := checkNoRunningTasks(o.ctx, src)
	if err != nil {
		return err
	}
	dst, err := store.OpenWith(o.ctx, o.To, true, opts)
	var dbe *store.DBError
	if errors.As(err, &dbe) {
		return dbErr(dbe, "fix --to", "the password (--password-file, PGPASSWORD or ~/.pgpass)")
	}
	var moved *store.MovedError
	if errors.As(err, &moved) {
		return &Error{Code: ExitUsage, Err: fmt.Errorf("the target %s is not empty: it is a state that was moved to %s on %s", moved.Path, moved.To, moved.At.UTC().Format("2006-01-02 15:04 UTC")),
			Hint: "copy into a new, empty database (or file); aegir never overwrites a state"}
	}
	if err != nil {
		return &Error{Err: err, Code: ExitFailed, Hint: "check that the target database exists and that its user may create tables in it"}
	}
	defer dst.Close()
	counts, err := store.CopyState(o.ctx, src, dst)
	if err != nil {
		return err
	}
	to := dst.Path()
	o.infof("copied the state %s to %s", src.Path(), to)
	if err := src.MarkMoved(o.ctx, to); err != nil {
		o.warnf("the old state %s could not be marked moved (%v): stop using it, since its records are no longer kept up to date", src.Path(), err)
	} else {
		o.infof("the old state %s is marked moved: aegir refuses it from now on (aegir state reopen takes the mark off)", src.Path())
	}
	for _, t := range expired {
		at := "had none"
		if t.LeaseUntil != nil {
			at = "ran out at " + t.LeaseUntil.Local().Format(time.RFC3339)
		}
		o.infof("task %d was left processing on master %s, whose lease %s: the first hosting dispatch on the new state rescues it (marks it failed, to retry)",
			t.ID, workerMaster(t.Worker), at)
	}
	set := "state: " + to
	if o.PasswordFile != "" {
		set += " and state_password_file: " + o.PasswordFile
	}
	o.infof("next: with the dispatchers stopped, set %s in aegir.yaml (or AEGIR_STATE), then start them again", set)
	return o.print(counts)
}

// checkNoRunningTasks refuses a copy of a state a dispatcher is working
// on: a task processing under a live lease would sit processing in the
// copy forever (its worker renews and ends it in the old state). A task
// whose lease ran out is copied as it is, and returned: its dispatcher is
// gone, and the first dispatch on the copy rescues it as it would have on
// the old state (docs/masters.md).
func checkNoRunningTasks(ctx context.Context, st *store.Store) ([]*entities.Task, error) {
	running, err := st.ProcessingTasks(ctx)
	if err != nil {
		return nil, err
	}
	now := st.Now()
	var expired []*entities.Task
	for _, t := range running {
		if t.LeaseUntil == nil || !t.LeaseUntil.After(now) {
			expired = append(expired, t)
			continue
		}
		more := ""
		if len(running) > 1 {
			more = fmt.Sprintf(" (and %d more tasks are processing)", len(running)-1)
		}
		return nil, &Error{Code: ExitUsage,
			Err: fmt.Errorf("task %d is running on master %s (lease until %s)%s: nothing was copied",
				t.ID, workerMaster(t.Worker), t.LeaseUntil.Local().Format(time.RFC3339), more),
			Hint: fmt.Sprintf("stop the dispatchers (hosting dispatch, hosting queued, and the cron entry) on every master first, let their tasks end, then run state migrate again (a dispatcher that was killed lets go of its task when the lease runs out, at %s)", t.LeaseUntil.Local().Format(time.RFC3339))}
	}
	return expired, nil
}

// workerMaster is the master of a task's worker ("pid@master/machine",
// queue.WorkerID; an older aegir's "pid@master").
func workerMaster(w string) string {
	if _, m, ok := strings.Cut(w, "@"); ok && m != "" {
		m, _, _ = strings.Cut(m, "/")
		return m
	}
	if w == "" {
		return "(unknown)"
	}
	return w
}

// StateReopenOptions are state reopen's: the invocation alone.
type StateReopenOptions struct{ *App }

func newStateReopenCmd(a *App, runF func(*StateReopenOptions) error) *cobra.Command {
	return bind(&cobra.Command{
		Use:   "reopen",
		Short: "Use a state that state migrate moved again: take its moved mark off",
		Long: `After state migrate, the old state is marked moved and every command
refuses it. state reopen takes that mark off the state the state key names
(else AEGIR_HOME/aegir.db), to go back to it: its records are as they were
at the move, without anything done on the new state since. To carry those
over instead, copy the new state into an empty target (state migrate --to
a new file or database, from a home whose state key names the new one).`,
		Example: `  aegir state reopen`,
		Args:    cobra.NoArgs,
	}, &StateReopenOptions{App: a}, runF, runStateReopen)
}

func runStateReopen(o *StateReopenOptions) error {
	loc := o.stateLocator()
	opts, err := o.stateOptions(loc)
	if err != nil {
		return err
	}
	opts.AllowMoved = true
	st, err := store.OpenWith(o.ctx, loc, false, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := st.Moved(o.ctx)
	if err != nil {
		return err
	}
	if m == nil {
		o.infof("the state %s is not marked moved: nothing to do", st.Path())
		return nil
	}
	if _, err := st.ClearMoved(o.ctx); err != nil {
		return err
	}
	o.infof("the state %s is in use again (it had been moved to %s on %s): its records are as they were then",
		st.Path(), m.To, m.At.UTC().Format("2006-01-02 15:04 UTC"))
	return nil
}
