package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/store"
)

// Shell completion (aegir completion bash|zsh|fish, cobra's) knows the
// data: the arguments and flags that name a site, platform, server,
// client, task or backup complete from the state, opened read-only with
// no migration, and formats and statuses from their lists.

// completer lists the candidates of one kind of word from the state.
// A completer may offer words that do not start with prefix (they are
// left out), or only those that do.
type completer func(ctx context.Context, st *store.Store, prefix string) ([]string, error)

var (
	completeDomains   = stateNames("site")
	completePlatforms = stateNames("platform")
	completeServers   = stateNames("server")
	completeClients   = stateNames("client")
	// Task ids, newest first, each described by what it does.
	completeTasks = fromState(func(ctx context.Context, st *store.Store, _ string) ([]string, error) {
		ts, err := st.ListTasks(ctx, store.TaskFilter{Limit: 200})
		return names(ts, err, func(v *entities.Task) string {
			return fmt.Sprintf("%d\t%s %s (%s)", v.ID, v.Type, v.Target, v.Status)
		})
	})
	completeBackups = fromState(func(ctx context.Context, st *store.Store, _ string) ([]string, error) {
		bs, err := st.ListBackups(ctx, "")
		return names(bs, err, func(v *entities.Backup) string {
			return fmt.Sprintf("%d\t%s %s", v.ID, v.Site, v.Created.Local().Format(time.DateTime))
		})
	})
)

// stateNames completes the names of live records of a kind (site,
// platform, server, client) from the state.
func stateNames(kind string) completer {
	return fromState(func(ctx context.Context, st *store.Store, prefix string) ([]string, error) {
		return st.Names(ctx, kind, prefix)
	})
}

// fromState is a completer that reads the state: without one (no aegir
// home yet) it has nothing to offer.
func fromState(f completer) completer {
	return func(ctx context.Context, st *store.Store, prefix string) ([]string, error) {
		if st == nil {
			return nil, nil
		}
		return f(ctx, st, prefix)
	}
}

func names[T any](list []T, err error, name func(T) string) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		out = append(out, name(v))
	}
	return out, nil
}

// fixed is a completer of words known without the state.
func fixed(words ...string) completer {
	return func(context.Context, *store.Store, string) ([]string, error) { return words, nil }
}

// byNoun are the completers of NAME and ID arguments, by the noun of the
// command (server show NAME, task show ID).
var byNoun = map[string]completer{
	"client": completeClients, "server": completeServers, "platform": completePlatforms,
	"site": completeDomains, "task": completeTasks, "backup": completeBackups,
}

// byFlag are the completers of flag values, by flag name; statusByNoun
// those of --status.
var (
	byFlag = map[string]completer{
		"platform": completePlatforms, "server": completeServers, "db-server": completeServers,
		"client": completeClients, "site": completeDomains, "backup": completeBackups,
		"format": fixed(append(append([]string{}, output.Formats...), output.ListFormats...)...),
		"http":   fixed(entities.ServiceTypes[entities.KindHTTP]...),
		"db":     fixed(entities.ServiceTypes[entities.KindDB]...),
		"https":  fixed(entities.HTTPSModes...),
	}
	statusByNoun = map[string][]string{
		"site": entities.SiteStatuses, "task": entities.TaskStatuses,
	}
	typeByNoun = map[string]completer{
		"task":     func(context.Context, *store.Store, string) ([]string, error) { return engine.Tasks(), nil },
		"package":  fixed(entities.PackageModule, entities.PackageTheme, entities.PackageProfile, entities.PackagePlugin, entities.PackageCore),
		"platform": fixed(entities.PlatformTypes...),
	}
)

// recordByNoun are the records the list and show verbs of each noun
// print, whose keys --fields and --field complete.
var recordByNoun = map[string]any{
	"site": entities.Site{}, "platform": entities.Platform{}, "server": entities.Server{}, "client": entities.Client{},
	"task": entities.Task{}, "backup": entities.Backup{}, "cert": entities.Certificate{}, "package": entities.Package{},
	"service": entities.Service{},
}

// completeKeys completes --field KEY and, after its last comma, --fields
// a,b,c with the keys of what the command prints.
func completeKeys(several bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		noun := cmd.Name()
		if cmd.HasParent() && cmd.Parent().HasParent() {
			noun = cmd.Parent().Name()
		}
		rec, ok := recordByNoun[noun]
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		done, part := "", toComplete
		directive := cobra.ShellCompDirectiveNoFileComp
		if several {
			if i := strings.LastIndex(toComplete, ","); i >= 0 {
				done, part = toComplete[:i+1], toComplete[i+1:]
			}
			directive |= cobra.ShellCompDirectiveNoSpace // room for ,next
		}
		var out []cobra.Completion
		for _, k := range output.Keys(rec) {
			if strings.HasPrefix(k, part) {
				out = append(out, done+k)
			}
		}
		return out, directive
	}
}

// newWords are the verbs whose arguments name something new: nothing to
// complete from the state.
var newWords = map[string]bool{"add": true, "install": true, "create": true}

// addCompletions gives every command of the tree its argument and flag
// completion.
func (a *App) addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		a.completeArgs(c)
		noun := ""
		if c.HasParent() && c.Parent() != root {
			noun = c.Parent().Name()
		} else if c != root {
			noun = c.Name()
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			comp := byFlag[f.Name]
			switch f.Name {
			case "status":
				if st, ok := statusByNoun[noun]; ok {
					comp = fixed(st...)
				}
			case "type":
				comp = typeByNoun[noun]
			}
			if comp != nil {
				_ = c.RegisterFlagCompletionFunc(f.Name, a.completion(comp))
			}
			if f.Name == "fields" || f.Name == "field" {
				_ = c.RegisterFlagCompletionFunc(f.Name, completeKeys(f.Name == "fields"))
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeArgs sets the argument completion of a verb from the words of
// its Use line: DOMAIN, SRC and DST are sites; NAME, ID and OLD are of
// the verb's noun (server show NAME, task show ID); NEW is a platform of
// platform migrate OLD NEW.
func (a *App) completeArgs(c *cobra.Command) {
	if !c.HasParent() || c.ValidArgsFunction != nil {
		return
	}
	if newWords[c.Name()] {
		c.ValidArgsFunction = cobra.NoFileCompletions // a new name: nothing known to offer
		return
	}
	noun := c.Parent().Name()
	var comps []completer
	for _, w := range strings.Fields(c.Use)[1:] {
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") || strings.ToUpper(w) != w {
			break
		}
		switch w {
		case "DOMAIN", "SRC", "DST":
			comps = append(comps, completeDomains)
		case "NAME", "ID", "OLD":
			comps = append(comps, byNoun[noun])
		case "NEW":
			if noun == "platform" {
				comps = append(comps, completePlatforms)
			} else {
				comps = append(comps, nil)
			}
		default:
			comps = append(comps, nil)
		}
	}
	if len(comps) == 0 {
		return
	}
	c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= len(comps) || comps[len(args)] == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.completion(comps[len(args)])(cmd, args, toComplete)
	}
}

// completion runs comp against the state of the aegir home the command
// line names (--home, AEGIR_HOME or ~/.aegir): its state key's (a SQLite
// file or a PostgreSQL state, as aegir.yaml or AEGIR_STATE say), opened
// read-only; a home without a state (none yet, a config that does not
// load, a state that does not answer within the timeout) completes
// nothing.
func (a *App) completion(comp completer) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(a.ctx, 2*time.Second)
		defer cancel()
		var st *store.Store
		if err := a.loadConfig(cmd); err == nil {
			loc := a.stateLocator()
			if o, err := a.stateOptions(loc); err == nil {
				if st, err = store.OpenReadOnlyWith(ctx, loc, o); err != nil {
					st = nil
				}
			}
		}
		if st != nil {
			defer st.Close()
		}
		words, err := comp(ctx, st, toComplete)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		for _, w := range words {
			if strings.HasPrefix(w, toComplete) {
				out = append(out, w)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
