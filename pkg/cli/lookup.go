package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// getter finds one record by name in the state (a Store method value,
// e.g. (*store.Store).GetServer).
type getter[T any] func(st *store.Store, ctx context.Context, name string) (T, error)

// lookup opens the state and finds the record name with get.
func lookup[T any](a *App, name string, get getter[T]) (*store.Store, T, error) {
	var zero T
	st, err := a.Store()
	if err != nil {
		return nil, zero, err
	}
	v, err := get(st, a.ctx, name)
	return st, v, err
}

// ShowOptions are a noun's "show NAME": the record's name.
type ShowOptions struct {
	*App
	Name string
}

// newShowCmd is a noun's "show NAME": the record get finds, printed.
func newShowCmd[T any](a *App, short string, get getter[T], runF func(*ShowOptions) error) *cobra.Command {
	o := &ShowOptions{App: a}
	return bind(&cobra.Command{Use: "show NAME", Short: short}, o, runF, func(o *ShowOptions) error { return runShow(o, get) }, &o.Name)
}

func runShow[T any](o *ShowOptions, get getter[T]) error {
	_, v, err := lookup(o.App, o.Name, get)
	if err != nil {
		return err
	}
	return o.print(v)
}

// DeleteOptions are a noun's "delete NAME" that removes a record at
// once (no task): the record's name.
type DeleteOptions struct {
	*App
	Name string
}

// newDeleteCmd is noun's "delete NAME": the record del removes.
func newDeleteCmd(a *App, noun, short string, del func(st *store.Store, ctx context.Context, name string) error, runF func(*DeleteOptions) error) *cobra.Command {
	o := &DeleteOptions{App: a}
	return bind(&cobra.Command{Use: "delete NAME", Short: short}, o, runF, func(o *DeleteOptions) error { return runDelete(o, noun, del) }, &o.Name)
}

func runDelete(o *DeleteOptions, noun string, del func(st *store.Store, ctx context.Context, name string) error) error {
	st, err := o.Store()
	if err != nil {
		return err
	}
	if err := del(st, o.ctx, o.Name); err != nil {
		return err
	}
	o.infof("%s %s deleted", noun, o.Name)
	return nil
}

// siteName is the name a site is looked up by, from what the user typed
// as field (an argument or a flag): a valid domain, lower-cased. An alias
// is as good as the domain: the store finds a site by either.
func siteName(field, arg string) (string, error) {
	return entities.NormalizeDomain(field, arg)
}

// siteFilter is a --site flag's value as the domain that tasks and
// backups record: valid, lower-cased, and an alias of a live site turned
// into that site's domain. Empty stays empty (no filter).
func (a *App) siteFilter(st *store.Store, arg string) (string, error) {
	if arg == "" {
		return "", nil
	}
	d, err := siteName("--site", arg)
	if err != nil {
		return "", err
	}
	owner, err := st.NameOwner(a.ctx, d)
	if err != nil || owner == "" {
		return d, err
	}
	return owner, nil
}
