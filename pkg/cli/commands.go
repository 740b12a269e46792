package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// verbSynonyms are the words people type for a verb: each answers for the
// verb of that name wherever a noun has one (site create is site install).
var verbSynonyms = map[string][]string{
	"install": {"create"},
	"show":    {"info"},
	"list":    {"ls"},
	"delete":  {"rm"},
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
		for _, syn := range verbSynonyms[sub.Name()] {
			if !taken[syn] {
				sub.Aliases = append(sub.Aliases, syn)
				taken[syn] = true
			}
		}
		strictTree(sub)
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
	return &Error{Code: ExitUsage, Err: err, Hint: usageHint(cmd)}
}

// usageHint is the hint of a command used wrongly: its usage line.
func usageHint(cmd *cobra.Command) string {
	return "usage: " + cmd.UseLine() + " (see: " + cmd.CommandPath() + " --help)"
}

// unknownCommand is the error for a word that is not a verb of cmd, with
// the verbs it is close to.
func unknownCommand(cmd *cobra.Command, word string) error {
	hint := "see the commands: " + cmd.CommandPath() + " --help"
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		for i := range s {
			s[i] = cmd.CommandPath() + " " + s[i]
		}
		hint = "did you mean: " + strings.Join(s, " or ") + "?"
	}
	return &Error{Code: ExitUsage, Err: fmt.Errorf("unknown command %q for %q", word, cmd.CommandPath()), Hint: hint}
}
