package cli

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// listValue is a repeatable flag whose values may also be given
// comma-separated. Unlike pflag's string slices (read as CSV, which stops
// at a newline and drops an empty value), every part is kept as typed, so
// that the flag's validation sees "x.test\nlisten 1" and "" and refuses
// them instead of taking "x.test" or nothing.
type listValue struct {
	p   *[]string
	set bool
}

func (v *listValue) Set(s string) error {
	parts := strings.Split(s, ",")
	if !v.set {
		*v.p = parts
	} else {
		*v.p = append(*v.p, parts...)
	}
	v.set = true
	return nil
}

func (v *listValue) Type() string { return "strings" }

func (v *listValue) String() string {
	if len(*v.p) == 0 {
		return "" // no default to show in the help
	}
	return "[" + strings.Join(*v.p, ",") + "]"
}

// listFlag defines a listValue flag.
func listFlag(fs *pflag.FlagSet, p *[]string, name, usage string) {
	fs.Var(&listValue{p: p}, name, usage)
}

// validNames checks the names given to name flags (field, value pairs;
// an empty value is a flag not given): a name that cannot exist is
// invalid input (exit 2), not a record that was not found or an empty list.
func validNames(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if err := entities.ValidateName(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// intValue is a whole-number flag written in decimal digits, as people
// and scripts write ports and counts. pflag's own reads 010 as octal (8),
// 0x50 as 80 and takes "+80" and "8_080"; this one refuses them.
type intValue struct{ p *int }

func (v *intValue) Set(s string) error {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return errors.New("must be a whole number in decimal digits")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("is out of range")
	}
	*v.p = n
	return nil
}

func (v *intValue) Type() string   { return "int" }
func (v *intValue) String() string { return strconv.Itoa(*v.p) }

// intFlag defines an intValue flag with its default.
func intFlag(fs *pflag.FlagSet, p *int, name string, def int, usage string) {
	*p = def
	fs.Var(&intValue{p: p}, name, usage)
}

// emptyOK is the annotation of a flag whose empty value means something
// (server edit --http-test-cmd ”: back to the default command; site edit
// --client ”: no client).
const emptyOK = "aegir-empty-ok"

// allowEmpty marks the named flags of fs as taking an empty value.
func allowEmpty(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, emptyOK, []string{"true"}); err != nil {
			panic(err) // a flag name misspelt here
		}
	}
}

// emptyFlag refuses a text flag given with an empty value, unless
// allowEmpty says what empty means for it: --https ” or --site "$UNSET"
// is a mistake (as --alias ” is), not the default, nor a filter left off
// that lists, and then deletes, everything.
func emptyFlag(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if err == nil && f.Value.Type() == "string" && f.Value.String() == "" && f.Annotations[emptyOK] == nil {
			err = &Error{Code: ExitUsage, Err: entities.Invalid("--"+f.Name, "", "must not be empty"),
				Hint: "give --" + f.Name + " a value, or leave it out (see: " + cmd.CommandPath() + " --help)"}
		}
	})
	return err
}

// nameFilter is a list's filter by the name of a record (--client acme)
// and how to find that record.
type nameFilter struct {
	name string
	find func(ctx context.Context, name string) error
}

// filtersExist is for a list that came back empty: a filter naming no
// record is a name mistyped (--client acm), not a client with no sites, so
// it is exit 3 with the list to look in. A filter naming a record that
// exists (or none given) leaves the empty list as it is.
func filtersExist(ctx context.Context, fs ...nameFilter) error {
	for _, f := range fs {
		if f.name != "" {
			if err := f.find(ctx, f.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// finder makes a nameFilter's find from a store getter.
func finder[T any](st *store.Store, get getter[T]) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		_, err := get(st, ctx, name)
		return err
	}
}
