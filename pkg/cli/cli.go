// Package cli is aegir's command line: the root command, global flags,
// configuration, exit codes, and one file per noun.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// Version is set at build time with -ldflags "-X .../pkg/cli.Version=...".
var Version = "dev"

// IOStreams are where a command reads and writes: results to Out, logs,
// progress and errors to Err.
type IOStreams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// App is one invocation of aegir: streams, configuration and the state
// store, opened on first use, and the global flags. It is what every
// command's Options hold as their dependencies (see options.go): a test
// makes one with newApp around buffers and a home of its own.
type App struct {
	IO  IOStreams
	cfg *viper.Viper
	st  *store.Store
	ctx context.Context
	// exclusive: a task is recorded on a site only when none is queued or
	// running on it (the API's requests), rather than queued behind it.
	exclusive bool
	// readOnlyCmd: the command only reads the state (list, show, log):
	// a state that state migrate moved is opened read only for it.
	readOnlyCmd bool

	// Global flags.
	home    string
	format  string
	fields  []string
	field   string
	verbose bool
	quiet   bool
	yes     bool
	noColor bool
}

// Main runs aegir with the process's streams and returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}

// Run runs aegir with args and streams and returns the exit code.
func Run(ctx context.Context, args []string, io IOStreams) int {
	a := newApp(ctx, io)
	root := a.rootCmd()
	root.SetArgs(rewriteAliases(root, args))
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	err := root.ExecuteContext(ctx)
	if a.st != nil {
		a.st.Close()
	}
	if err == nil {
		return ExitOK
	}
	return a.report(err)
}

// newApp is an invocation with streams io and an empty configuration
// (loadConfig fills it from the home, the environment and the defaults).
func newApp(ctx context.Context, io IOStreams) *App {
	return &App{IO: io, cfg: viper.New(), ctx: ctx, format: "table"}
}

func (a *App) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "aegir",
		Short: "Host hundreds of Drupal and WordPress sites on your own servers",
		Long: `aegir keeps a model of your servers, platforms (code bases) and sites, turns
every change into a task, and carries tasks out on local and remote servers:
databases, web server virtual hosts, installs, backups, restores, migrations.

Start with: aegir init, then aegir server add, aegir platform add, aegir site install.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := emptyFlag(cmd); err != nil {
				return err
			}
			return a.loadConfig(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.home, "home", "", "aegir home: state, config, backups (env AEGIR_HOME; default ~/.aegir)")
	pf.StringVar(&a.format, "format", "table", "output format of lists and records: table, json, yaml or csv; lists also ids (one key a line) or count")
	listFlag(pf, &a.fields, "fields", "keys to print, comma-separated (e.g. domain,status)")
	pf.StringVar(&a.field, "field", "", "print only the bare value of this key (a line a record; a line an element of a record's list)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "task logs with the commands run and their output, and debug lines")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only results and errors, not task logs")
	pf.BoolVarP(&a.yes, "yes", "y", false, "answer yes to every prompt")
	pf.BoolVar(&a.noColor, "no-color", false, "never color the output")
	root.SetFlagErrorFunc(flagError)

	root.AddCommand(
		a.initCmd(), a.versionCmd(),
		a.clientCmd(), a.serverCmd(), a.serviceCmd(), a.platformCmd(), a.siteCmd(),
		a.taskCmd(), a.packageCmd(), a.provisionCmd(), a.docsCmd(),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	strictTree(root)
	a.addCompletions(root)
	return root
}

// extraCommands lets files of this package add nouns from init functions.
var extraCommands []func(*App) *cobra.Command

// loadConfig resolves AEGIR_HOME and reads aegir.yaml: flags > env AEGIR_* >
// the config file > defaults.
func (a *App) loadConfig(cmd *cobra.Command) error {
	a.readOnlyCmd = readOnlyVerbs[cmd.Name()]
	v := a.cfg
	setDefaults(v)
	v.SetEnvPrefix("AEGIR")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	if err := a.resolveHome(cmd); err != nil {
		return err
	}
	known := v.AllKeys() // the defaults' keys: the file is not read yet
	v.SetConfigFile(filepath.Join(a.home, "aegir.yaml"))
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil && !errors.Is(err, os.ErrNotExist) {
		var nf viper.ConfigFileNotFoundError
		if !errors.As(err, &nf) && !os.IsNotExist(errors.Unwrap(err)) && !strings.Contains(err.Error(), "no such file") {
			// One line: YAML's errors list their lines below one another.
			msg := strings.Join(strings.Fields(err.Error()), " ")
			return &Error{Code: ExitUsage, Err: fmt.Errorf("config file %s: %s", v.ConfigFileUsed(), msg), Hint: "fix the YAML in that file (docs/configuration.md lists the keys)"}
		}
	}
	if err := a.checkConfig(known); err != nil {
		return err
	}
	// Global flags given on the command line win; otherwise env and file.
	bindString(cmd.Flags(), v, "format", &a.format)
	if !contains(output.Formats, a.format) && !contains(output.ListFormats, a.format) {
		return usageErr(fmt.Errorf("invalid --format %q: must be one of %s (lists also: %s)", a.format,
			strings.Join(output.Formats, ", "), strings.Join(output.ListFormats, ", ")))
	}
	if a.field != "" && len(a.fields) > 0 {
		return invalid("--field", a.field, "cannot be given with --fields: --field prints one key, --fields several")
	}
	if !cmd.Flags().Changed("no-color") && v.GetBool("no_color") {
		a.noColor = true
	}
	if os.Getenv("NO_COLOR") != "" {
		a.noColor = true
	}
	return nil
}

// resolveHome sets the aegir home: --home, else AEGIR_HOME, else ~/.aegir.
func (a *App) resolveHome(cmd *cobra.Command) error {
	if !cmd.Flags().Changed("home") {
		a.home = os.Getenv("AEGIR_HOME")
	}
	if a.home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return &Error{Code: ExitUsage, Err: errors.New("cannot find your home directory"), Hint: "set AEGIR_HOME or pass --home DIR"}
		}
		a.home = filepath.Join(h, ".aegir")
	}
	abs, err := filepath.Abs(a.home)
	if err != nil {
		return err
	}
	field := "--home"
	if !cmd.Flags().Changed("home") {
		field = "AEGIR_HOME"
	}
	if err := entities.ValidateAbsPath(field, abs); err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return invalid(field, abs, "must be a directory (the aegir home), not a file")
	}
	a.home = abs
	return nil
}

func bindString(fs *pflag.FlagSet, v *viper.Viper, key string, dst *string) {
	if fs.Changed(key) {
		return
	}
	if s := v.GetString(key); s != "" {
		*dst = s
	}
}

// readOnlyVerbs are the commands that only read the state.
var readOnlyVerbs = map[string]bool{"list": true, "show": true, "log": true}

// Store opens the state database (it must exist: aegir init makes it).
func (a *App) Store() (*store.Store, error) {
	if a.st != nil {
		return a.st, nil
	}
	st, err := a.openState(false)
	if err != nil {
		return nil, err
	}
	a.st = st
	return st, nil
}

// print writes v in the chosen format; a table fits the terminal.
func (a *App) print(v any) error { return a.printTo(a.IO.Out, v) }

// checkPrint says whether a record like v (its zero value) can be printed
// in the chosen format and keys: for a command that prints its record
// only after its work, so that a bad --format, --fields or --field is
// exit 2 before anything was done.
func (a *App) checkPrint(v any) error { return a.printTo(io.Discard, v) }

func (a *App) printTo(w io.Writer, v any) error {
	err := output.Write(w, v, output.Options{Format: a.format, Fields: a.fields, Field: a.field,
		Width: termWidth(w), Color: a.colorOn(w)})
	var fe *output.FieldError
	var fmtErr *output.FormatError
	if errors.As(err, &fe) || errors.As(err, &fmtErr) {
		return usageErr(err)
	}
	return err
}

// plainTable says the output is the default table, no keys chosen: the
// form for people, where commands may print a sentence instead of a record.
func (a *App) plainTable() bool {
	return a.format == "table" && len(a.fields) == 0 && a.field == ""
}

// infof writes a status line to stderr unless --quiet.
func (a *App) infof(format string, args ...any) {
	if !a.quiet {
		fmt.Fprintf(a.IO.Err, format+"\n", args...)
	}
}

// warnf writes a warning to stderr, --quiet or not.
func (a *App) warnf(format string, args ...any) {
	fmt.Fprintf(a.IO.Err, a.paint(a.IO.Err, output.StatusColor(entities.TaskWarning), "warning:")+" "+format+"\n", args...)
}

// rewriteAliases turns the drush-style colon form (site:install) and the
// classic hyphenated form (site-install, hosting-dispatch,
// provision-verify) of the first word into the noun and verb words.
func rewriteAliases(root *cobra.Command, args []string) []string {
	skip := false // the previous word was a global flag that takes a value
	for i, arg := range args {
		if skip {
			skip = false
			continue
		}
		if arg == "--" {
			break
		}
		if arg == cobra.ShellCompRequestCmd || arg == cobra.ShellCompNoDescRequestCmd {
			continue // shell completion of the words that follow
		}
		if strings.HasPrefix(arg, "-") {
			name := strings.TrimLeft(strings.SplitN(arg, "=", 2)[0], "-")
			f := root.PersistentFlags().Lookup(name)
			if f == nil && len(name) == 1 {
				f = root.PersistentFlags().ShorthandLookup(name)
			}
			skip = f != nil && !strings.Contains(arg, "=") && f.Value.Type() != "bool"
			continue
		}
		var noun, verb string
		if n, v, ok := strings.Cut(arg, ":"); ok {
			noun, verb = n, v
		} else if n, v, ok := strings.Cut(arg, "-"); ok {
			noun, verb = n, v
		} else {
			break
		}
		if c, _, err := root.Find([]string{noun}); err == nil && c != root && c.Name() == noun {
			out := append([]string{}, args[:i]...)
			out = append(out, noun, verb)
			return append(out, args[i+1:]...)
		}
		break
	}
	return args
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
