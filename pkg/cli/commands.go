package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aegir-project/aegir/pkg/entities"
)

// verbSynonyms are the words people type for a verb: each answers for the
// verb of that name wherever a noun has one (site create is site install).
var verbSynonyms = map[string][]string{
	"install": {"create"},
	"show":    {"info"},
	"list":    {"ls"},
	"delete":  {"rm"},
}

// verbSuggestions are words of other tools that do not run a verb but are
// answered with it as a did-you-mean (aegir client create: client add).
var verbSuggestions = map[string][]string{
	"add":     {"create", "new"},
	"delete":  {"remove"},
	"install": {"new"},
	"show":    {"get", "view"},
	"edit":    {"update", "set"},
}

// strictTree makes the command tree strict, so that a script notices a
// typo: a group given an unknown verb (aegir server ad) exits 2 with a
// did-you-mean instead of printing its help and exiting 0, the verb
// synonyms resolve, and a wrong argument count names the command's own
// usage line.
func strictTree(c *cobra.Command) {
	if !c.HasParent() {
		// A noun is runnable now (runGroup) but its usage is its verbs.
		c.SetUsageTemplate(strings.Replace(c.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
		// cobra's own help and completion commands, made now (not when
		// the command runs) so that they are strict too.
		c.InitDefaultHelpCmd()
		c.InitDefaultCompletionCmd()
		strictHelp(c)
	}
	c.SuggestionsMinimumDistance = 2
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = runGroup
	}
	if args := c.Args; args != nil && c.RunE != nil && !c.HasSubCommands() {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				if !strings.Contains(err.Error(), cmd.CommandPath()) {
					err = fmt.Errorf("%s: %w", cmd.CommandPath(), err)
				}
				return &Error{Code: ExitUsage, Err: err, Hint: usageHint(cmd)}
			}
			return nil
		}
	}
	taken := map[string]bool{}
	for _, sub := range c.Commands() {
		taken[sub.Name()] = true
		for _, al := range sub.Aliases {
			taken[al] = true
		}
	}
	for _, sub := range c.Commands() {
		for _, w := range verbSuggestions[sub.Name()] {
			if !taken[w] {
				sub.SuggestFor = append(sub.SuggestFor, w)
			}
		}
		for _, syn := range verbSynonyms[sub.Name()] {
			if !taken[syn] {
				sub.Aliases = append(sub.Aliases, syn)
				taken[syn] = true
			}
		}
		strictTree(sub)
	}
}

// strictHelp makes "aegir help WORDS" about a command that does not exist
// exit 2 like the command itself, instead of printing the global help.
func strictHelp(root *cobra.Command) {
	h, _, err := root.Find([]string{"help"})
	if err != nil || h.Name() != "help" || h.Run == nil {
		return
	}
	run := h.Run
	h.Run = nil
	h.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			target, rest, err := root.Find(args)
			if err != nil {
				return unknownCommand(root, args[0])
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest[0])
			}
		}
		run(cmd, args)
		return nil
	}
}

// runGroup is what a noun without a verb does: its help when given
// nothing, exit 2 when given a word that is none of its verbs.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return unknownCommand(cmd, args[0])
}

// flagError is the error for a flag cobra could not parse: exit 2 with
// the command's usage line, or, after a word that is not a verb (site lst
// --platform p), the unknown verb.
func flagError(cmd *cobra.Command, err error) error {
	if cmd.HasSubCommands() && cmd.Flags().NArg() > 0 {
		return unknownCommand(cmd, cmd.Flags().Arg(0))
	}
	if derr := dashArg(cmd, err); derr != nil {
		return derr
	}
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		err = entities.Invalid("--"+iv.GetFlag().Name, iv.GetValue(), flagRule(iv))
	}
	return &Error{Code: ExitUsage, Err: err, Hint: usageHint(cmd)}
}

// flagRule is the rule a flag's value broke, in words rather than
// strconv's (parsing "maybe": invalid syntax).
func flagRule(iv *pflag.InvalidValueError) string {
	switch iv.GetFlag().Value.Type() {
	case "bool":
		return "must be true or false"
	case "duration":
		return "must be a duration such as 90s, 30m or 24h"
	}
	return iv.Unwrap().Error()
}

// dashArg is the error for an argument that starts with '-' and is no
// flag (site install -a.test): a value the user typed, refused by its own
// field's rule rather than as an unknown shorthand flag. nil when err is
// not that.
func dashArg(cmd *cobra.Command, err error) error {
	msg := err.Error()
	i := strings.LastIndex(msg, " in -")
	if !strings.HasPrefix(msg, "unknown shorthand flag: ") || i < 0 {
		return nil
	}
	value := msg[i+len(" in "):]
	args := placeholders(cmd)
	n := cmd.Flags().NArg() // the arguments before this one
	if n >= len(args) {
		return nil
	}
	field := args[n]
	var verr error
	switch field {
	case "DOMAIN", "NEWDOMAIN":
		if field == "DOMAIN" {
			field = "domain"
		}
		_, verr = entities.NormalizeDomain(field, value)
	case "NAME":
		verr = entities.ValidateName(cmd.Parent().Name()+" name", value)
	case "ID":
		verr = entities.Invalid(cmd.Parent().Name()+" ID", value, "must be a positive whole number")
	}
	if verr == nil {
		verr = entities.Invalid(field, value, "must not start with '-'")
	}
	return &Error{Code: ExitUsage, Err: verr, Hint: usageHint(cmd)}
}

// placeholders are the positional arguments a command's use line names:
// the upper-case words right after its name (clone DOMAIN NEWDOMAIN).
func placeholders(cmd *cobra.Command) []string {
	var out []string
	for _, w := range strings.Fields(cmd.Use)[1:] {
		if w != strings.ToUpper(w) || strings.ContainsAny(w, "-[|") {
			break
		}
		out = append(out, w)
	}
	return out
}

// usageHint is the hint of a command used wrongly: its usage line.
func usageHint(cmd *cobra.Command) string {
	return "usage: " + cmd.UseLine() + " (see: " + cmd.CommandPath() + " --help)"
}

// unknownCommand is the error for a word that is not a verb of cmd, with
// the verbs it is close to.
func unknownCommand(cmd *cobra.Command, word string) error {
	hint := "see the commands: " + cmd.CommandPath() + " --help"
	// An empty word (aegir site: or aegir '') is close to every verb.
	if s := cmd.SuggestionsFor(word); len(s) > 0 && word != "" {
		for i := range s {
			s[i] = cmd.CommandPath() + " " + s[i]
		}
		hint = "did you mean: " + strings.Join(s, " or ") + "?"
	}
	return &Error{Code: ExitUsage, Err: fmt.Errorf("unknown command %q for %q", word, cmd.CommandPath()), Hint: hint}
}
