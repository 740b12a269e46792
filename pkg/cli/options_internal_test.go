package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/store"
)

// testApp is an invocation for a run function: buffers for its streams,
// the default configuration, and a fresh state in a home of its own.
func testApp(t *testing.T) *App {
	t.Helper()
	a := newApp(context.Background(), IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	setDefaults(a.cfg)
	a.home = filepath.Join(t.TempDir(), "home")
	// The sites' logs and the logrotate file of the tasks it runs are
	// the test's, as newHome's are.
	a.cfg.Set("php_fpm.runtime_dir", filepath.Join(filepath.Dir(a.home), "runtime"))
	a.cfg.Set("php_fpm.logrotate_file", filepath.Join(filepath.Dir(a.home), "logrotate.conf"))
	st, err := a.openState(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.st = st
	return a
}

// stdout is what a's commands printed as their results.
func stdout(a *App) string { return a.IO.Out.(*bytes.Buffer).String() }

// exitOf reports err as Main would and returns the exit code and the
// lines written to stderr for it.
func exitOf(a *App, err error) (int, string) {
	var b bytes.Buffer
	saved := a.IO.Err
	a.IO.Err = &b
	defer func() { a.IO.Err = saved }()
	return a.report(err), b.String()
}

// state is the whole of a's state as the lists show it, to check that a
// refused command wrote nothing.
func state(t *testing.T, a *App) string {
	t.Helper()
	st, ctx := a.st, a.ctx
	var parts []any
	add := func(v any, err error) {
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, v)
	}
	add(st.ListClients(ctx))
	add(st.ListServers(ctx))
	add(st.ListPlatforms(ctx, ""))
	add(st.ListSites(ctx, store.SiteFilter{}))
	add(st.ListTasks(ctx, store.TaskFilter{}))
	add(st.ListBackups(ctx, ""))
	b, err := json.Marshal(parts)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// refused runs run, which must refuse its input as bad: exit 2, one line
// naming the field and the rule (want is part of it), and nothing
// written to the state.
func refused(t *testing.T, a *App, want string, run func() error) {
	t.Helper()
	before := state(t, a)
	err := run()
	if err == nil {
		t.Fatalf("want a refusal naming %q, got none", want)
	}
	code, errs := exitOf(a, err)
	first, _, _ := strings.Cut(errs, "\n")
	if code != ExitUsage || !strings.Contains(first, want) || !strings.HasPrefix(first, "error: ") {
		t.Fatalf("want exit 2 with one line naming %q, got exit %d:\n%s", want, code, errs)
	}
	if after := state(t, a); after != before {
		t.Fatalf("a refused command changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

// parse runs cmd (a constructor given a runF that keeps its options) on
// args and fails the test if the parsing does.
func parse(t *testing.T, cmd *cobra.Command, args ...string) {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%s %s: %v", cmd.Name(), strings.Join(args, " "), err)
	}
}

// kept is a runF that keeps the options it is given in *dst.
func kept[O any](dst *O) func(O) error {
	return func(o O) error {
		*dst = o
		return nil
	}
}
