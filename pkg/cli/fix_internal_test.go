package cli

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// heardFailure is a notifier that keeps what it heard.
type heardFailure struct{ f *queue.Failure }

func (h *heardFailure) Notify(_ context.Context, f *queue.Failure) error { h.f = f; return nil }

func TestWordFix(t *testing.T) {
	for _, c := range []struct {
		a    entities.Action
		want string
	}{
		{entities.Do("site.cert", "a.example", "cert=FILE", "key=FILE"), "aegir site cert a.example --cert FILE --key FILE"},
		{entities.Do("server.edit", "db1", "db-admin-password-file=FILE"), "aegir server edit db1 --db-admin-password-file FILE"},
		{entities.Do("server.edit", "web1", "php-fpm=SOCKET|HOST:PORT"), "aegir server edit web1 --php-fpm SOCKET|HOST:PORT"},
		{entities.Do("server.edit", "web 1", "accept-host-key"), "aegir server edit 'web 1' --accept-host-key"},
		{entities.Do("backup.list", "", "site=a.example"), "aegir backup list --site a.example"},
		{entities.Do("site.login-reset", "a.example"), "aegir site login-reset a.example"},
		{entities.Do("site.edit", "a.example", "https=on"), "aegir site edit a.example --https on"},
		{entities.Do("server.list", ""), "aegir server list"},
		{entities.Do("site.edit", "x.example", "remove-alias=it's"), `aegir site edit x.example --remove-alias 'it'"'"'s'`},
	} {
		if got := wordFix(c.a); got != c.want {
			t.Errorf("wordFix(%+v) = %q, want %q", c.a, got, c.want)
		}
	}
	fix := []entities.Action{entities.Do("server.edit", "web1", "php-fpm=SOCKET|HOST:PORT"), entities.Do("site.verify", "a.example")}
	if got, want := wordHint("start php-fpm, or set where it listens, then verify the site", fix),
		"start php-fpm, or set where it listens, then verify the site: aegir server edit web1 --php-fpm SOCKET|HOST:PORT; aegir site verify a.example"; got != want {
		t.Errorf("wordHint = %q, want %q", got, want)
	}
	if got := wordHint("", fix[1:]); got != "run: aegir site verify a.example" {
		t.Errorf("wordHint without a hint = %q", got)
	}
	if got := wordHint("nothing to run", nil); got != "nothing to run" {
		t.Errorf("wordHint without a fix = %q", got)
	}
}

// TestErrorFixWorded: an error with a fix says its commands in the hint
// line, and under --format json carries the actions with their commands.
func TestErrorFixWorded(t *testing.T) {
	perr := provision.Errorf(provision.ErrInvalidContext, "bring a certificate that covers every name", "the certificate does not cover b.example").
		With(entities.Do("site.cert", "a.example", "cert=FILE", "key=FILE"))
	for _, err := range []error{
		&Error{Code: ExitFailed, Err: perr, Hint: perr.Hint, Fix: perr.Fix},
		&errTaskFailed{ID: 7, Msg: perr.Error(), Hint: perr.Hint, Fix: perr.Fix},
	} {
		a := testApp(t)
		code, errs := exitOf(a, err)
		if code != ExitFailed || !strings.Contains(errs, "\nhint: bring a certificate that covers every name: aegir site cert a.example --cert FILE --key FILE\n") {
			t.Fatalf("exit %d, stderr:\n%s", code, errs)
		}
		a.format = "json"
		code, errs = exitOf(a, err)
		var v struct {
			Error string `json:"error"`
			Hint  string `json:"hint"`
			Fix   []struct {
				Verb    string         `json:"verb"`
				Target  string         `json:"target"`
				Args    []entities.Arg `json:"args"`
				Command string         `json:"command"`
			} `json:"fix"`
			Code int `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(errs), &v); err != nil {
			t.Fatalf("%v: %s", err, errs)
		}
		if code != ExitFailed || v.Code != ExitFailed || len(v.Fix) != 1 || v.Fix[0].Verb != "site.cert" || v.Fix[0].Target != "a.example" ||
			len(v.Fix[0].Args) != 2 || v.Fix[0].Args[1] != (entities.Arg{Name: "key", Value: "FILE"}) ||
			v.Fix[0].Command != "aegir site cert a.example --cert FILE --key FILE" || !strings.HasSuffix(v.Hint, ": "+v.Fix[0].Command) {
			t.Fatalf("exit %d, JSON error: %s", code, errs)
		}
	}
	// A store conflict's fix too.
	a := testApp(t)
	code, errs := exitOf(a, &store.ConflictError{Msg: "site \"a.example\" already exists", Hint: "see it", Fix: []entities.Action{entities.Do("site.show", "a.example")}})
	if code != ExitUsage || !strings.Contains(errs, "\nhint: see it: aegir site show a.example\n") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
}

// builtAction is an Action the code builds with entities.Do, as written.
type builtAction struct {
	pos  string
	verb string
	args []string // the arguments' names
}

// builtActions finds every call of entities.Do outside tests in the
// repository's Go code. The verb and each argument's name must be a
// literal there (an argument may add its value: "site="+domain).
func builtActions(t *testing.T) []builtAction {
	t.Helper()
	root := filepath.Join("..", "..")
	var found []builtAction
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inEntities := f.Name.Name == "entities"
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); !ok || x.Name != "entities" || fn.Sel.Name != "Do" {
					return true
				}
			case *ast.Ident:
				if !inEntities || fn.Name != "Do" {
					return true
				}
			default:
				return true
			}
			b := builtAction{pos: fset.Position(call.Pos()).String()}
			if len(call.Args) < 2 {
				t.Errorf("%s: entities.Do needs a verb and a target", b.pos)
				return true
			}
			if call.Ellipsis.IsValid() {
				t.Errorf("%s: entities.Do's arguments must be written out, not spread", b.pos)
				return true
			}
			verb, ok := literal(call.Args[0], false)
			if !ok {
				t.Errorf("%s: entities.Do's verb is not a literal", b.pos)
				return true
			}
			b.verb = verb
			for _, e := range call.Args[2:] {
				name, ok := literal(e, true)
				if !ok {
					t.Errorf("%s: an argument of entities.Do does not start with its name as a literal", b.pos)
					return true
				}
				name, _, _ = strings.Cut(name, "=")
				b.args = append(b.args, name)
			}
			found = append(found, b)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// literal is the string literal e is, or with prefix the literal e starts
// with ("site=" + domain).
func literal(e ast.Expr, prefix bool) (string, bool) {
	for prefix {
		b, ok := e.(*ast.BinaryExpr)
		if !ok || b.Op != token.ADD {
			break
		}
		e = b.X
	}
	l, ok := e.(*ast.BasicLit)
	if !ok || l.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(l.Value)
	return s, err == nil
}

// TestFixCommands: every Action the code builds words as a real command,
// each argument as a real flag of it, so that renaming a command or a flag
// fails here rather than in a hint that sends the administrator nowhere.
func TestFixCommands(t *testing.T) {
	root := newApp(t.Context(), IOStreams{}).rootCmd()
	built := builtActions(t)
	if len(built) < 40 {
		t.Fatalf("found only %d calls of entities.Do: the search is broken", len(built))
	}
	for _, p := range checkActions(root, built) {
		t.Error(p)
	}
}

// checkActions says what in built is no command or no flag of it.
func checkActions(root *cobra.Command, built []builtAction) []string {
	var problems []string
	for _, b := range built {
		cmd, rest, err := root.Find(strings.Split(b.verb, "."))
		if err != nil || len(rest) > 0 || cmd.CommandPath() != "aegir "+strings.ReplaceAll(b.verb, ".", " ") || cmd.HasSubCommands() {
			problems = append(problems, b.pos+": verb "+strconv.Quote(b.verb)+" is no command")
			continue
		}
		cmd.InitDefaultHelpFlag()
		for _, name := range b.args {
			if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
				problems = append(problems, b.pos+": "+cmd.CommandPath()+" has no flag --"+name)
			}
		}
	}
	return problems
}

// TestCheckActionsFails: the check finds a verb that is no command, a
// group of commands, and a flag a command does not have; it passes a
// command's own, inherited and help flags.
func TestCheckActionsFails(t *testing.T) {
	root := newApp(t.Context(), IOStreams{}).rootCmd()
	got := checkActions(root, []builtAction{
		{pos: "1", verb: "site.no-such"},
		{pos: "2", verb: "site"},
		{pos: "3", verb: "site.cert", args: []string{"cert", "key", "no-such-flag"}},
		{pos: "4", verb: "server.edit", args: []string{"accept-host-key", "format", "help"}},
		{pos: "5", verb: "nosuch.verify"},
	})
	want := []string{`1: verb "site.no-such" is no command`, `2: verb "site" is no command`, "3: aegir site cert has no flag --no-such-flag", `5: verb "nosuch.verify" is no command`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestNotifierWordsHint: a failed task's notice says the commands of its
// fix, in its hint and its log's hint line, and the stored task is left
// as it is.
func TestNotifierWordsHint(t *testing.T) {
	task := &entities.Task{ID: 9, Hint: "verify the site again", Fix: []entities.Action{entities.Do("site.verify", "a.example")}}
	tail := []entities.LogLine{{Level: provision.LevelError, Message: "boom"}, {Level: provision.LevelInfo, Message: "hint: verify the site again"},
		{Level: provision.LevelWarning, Message: "let ACME issue one", Fix: []entities.Action{entities.Do("site.cert", "a.example")}}}
	var h heardFailure
	if err := (wordedNotifier{&h}).Notify(t.Context(), &queue.Failure{Task: task, LogTail: tail}); err != nil {
		t.Fatal(err)
	}
	want := "verify the site again: aegir site verify a.example"
	if h.f == nil || h.f.Hint != want || h.f.LogTail[1].Message != "hint: "+want || h.f.LogTail[0].Message != "boom" {
		t.Fatalf("heard %+v", h.f)
	}
	if h.f.LogTail[2].Message != "let ACME issue one: aegir site cert a.example" || tail[2].Message != "let ACME issue one" {
		t.Fatalf("a log line's fix is not worded in the notice, or the task's line changed: %q, %q", h.f.LogTail[2].Message, tail[2].Message)
	}
	// The notice's own actions (its footer) are worded as commands too.
	if h.f.Word == nil || h.f.Word(entities.Do("task.retry", "9")) != "aegir task retry 9" {
		t.Fatalf("the notice words no action as a command")
	}
	if task.Hint != "verify the site again" || tail[1].Message != "hint: verify the site again" {
		t.Fatalf("the notice changed the task: %+v %+v", task, tail)
	}
}

// backEndLiterals are the string literals of the back end, the queue, the
// store and hosting outside tests, each with its position.
func backEndLiterals(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, dir := range []string{"provision", "store", "queue", "hosting"} {
		err := filepath.WalkDir(filepath.Join("..", dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if l, ok := n.(*ast.BasicLit); ok && l.Kind == token.STRING {
					if s, err := strconv.Unquote(l.Value); err == nil {
						out[fset.Position(l.Pos()).String()] = s
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestBackEndWordsNoCommands: what the back end, the queue, the store and
// hosting say names no command of the command line ("aegir site verify
// D"): they say what to do in the model's terms, with actions (Fix) that
// each front end words as its own commands, so that an API client is
// never told to run a command it cannot run.
func TestBackEndWordsNoCommands(t *testing.T) {
	root := newApp(t.Context(), IOStreams{}).rootCmd()
	var paths []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if !s.HasSubCommands() && s.Parent() != root {
				paths = append(paths, s.CommandPath()+" ")
			}
			walk(s)
		}
	}
	walk(root)
	lits := backEndLiterals(t)
	if len(lits) < 1000 {
		t.Fatalf("found only %d string literals: the search is broken", len(lits))
	}
	for pos, s := range lits {
		for _, p := range paths {
			if strings.Contains(s+" ", p) {
				t.Errorf("%s: %q names the command %q: say it in the model's terms and put the action in a Fix", pos, s, strings.TrimSpace(p))
			}
		}
	}
}
