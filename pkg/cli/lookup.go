package cli

import (
	"context"

	"github.com/spf13/cobra"

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

// showCmd is a noun's "show NAME": the record get finds, printed.
func showCmd[T any](a *App, short string, get getter[T]) *cobra.Command {
	return &cobra.Command{
		Use: "show NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, v, err := lookup(a, args[0], get)
			if err != nil {
				return err
			}
			return a.print(v)
		},
	}
}
