package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/store"
)

// Exit codes (docs/exit-codes.md).
const (
	ExitOK       = 0 // success, including a task that ended in warning
	ExitFailed   = 1 // the task failed, or an operation could not be done
	ExitUsage    = 2 // bad usage or invalid input; nothing was written
	ExitNotFound = 3 // a named client, server, platform, site, task or backup does not exist
	ExitBusy     = 4 // the target is busy: another task holds it
)

// Error is an error with its exit code, a hint that says what to do and
// the actions that do it (worded as commands after the hint).
type Error struct {
	Err  error
	Hint string
	Fix  []entities.Action
	Code int
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func usageErr(err error) error { return &Error{Err: err, Code: ExitUsage} }

// invalid is the usual bad-input error: one line naming the field and rule.
func invalid(field, value, rule string) error {
	return &Error{Err: entities.Invalid(field, value, rule), Code: ExitUsage}
}

// errTaskFailed carries a failed task's exit; its log was already shown.
type errTaskFailed struct {
	ID   int64
	Msg  string
	Hint string
	Fix  []entities.Action
	Task *entities.Task // for the end line: what failed, after how long
}

func (e *errTaskFailed) Error() string {
	if e.Task != nil {
		return fmt.Sprintf("%s (task %d): %s", taskSentence(e.Task, false), e.ID, e.Msg)
	}
	return fmt.Sprintf("task %d failed: %s", e.ID, e.Msg)
}

// classify maps an error to its exit code, its hint and the actions the
// hint proposes (the hint without their wording: see wordHint).
func classify(err error) (code int, hint string, fix []entities.Action) {
	var ce *Error
	if errors.As(err, &ce) {
		code, hint, fix = ce.Code, ce.Hint, ce.Fix
		if code == 0 {
			code = ExitFailed
		}
		if hint != "" || len(fix) > 0 {
			return code, hint, fix
		}
	}
	var inv *entities.InvalidError
	var nf *store.NotFoundError
	var cf *store.ConflictError
	var tf *errTaskFailed
	var held *store.HeldError
	var qe *entities.QuotaError
	switch {
	case errors.As(err, &held):
		return ExitBusy, fmt.Sprintf("wait for task %d to end, then try again", held.Holder.ID), []entities.Action{entities.Do("task.log", strconv.FormatInt(held.Holder.ID, 10), "follow")}
	case errors.As(err, &qe):
		return ExitUsage, qe.Hint(), qe.Fix()
	case errors.As(err, &inv):
		return ExitUsage, "", nil
	case errors.As(err, &nf):
		return ExitNotFound, "", listKind(nf.Kind)
	case errors.As(err, &cf):
		return ExitUsage, cf.Hint, cf.Fix
	case errors.As(err, &tf):
		if tf.Hint == "" && len(tf.Fix) == 0 {
			id := strconv.FormatInt(tf.ID, 10)
			return ExitFailed, "read the log, and after fixing the cause retry the task", []entities.Action{entities.Do("task.log", id), entities.Do("task.retry", id)}
		}
		return ExitFailed, tf.Hint, tf.Fix
	case errors.Is(err, store.ErrNotInitialized):
		return ExitUsage, "run: aegir init (or point --home / AEGIR_HOME at an existing aegir home)", nil
	}
	if ce != nil {
		return code, hint, fix
	}
	if isCobraUsage(err) {
		return ExitUsage, "see: aegir --help", nil
	}
	return ExitFailed, "", nil
}

// listKind is the action that lists the records of a kind a name was not
// found among.
func listKind(kind string) []entities.Action {
	if a, ok := listActions[kind]; ok {
		return []entities.Action{a}
	}
	return nil
}

var listActions = map[string]entities.Action{
	"site": entities.Do("site.list", ""), "server": entities.Do("server.list", ""), "platform": entities.Do("platform.list", ""),
	"client": entities.Do("client.list", ""), "task": entities.Do("task.list", ""),
	"backup": entities.Do("backup.list", ""), "deleted site": entities.Do("backup.list", ""),
	"certificate": entities.Do("cert.list", ""), "user": entities.Do("user.list", ""), "token": entities.Do("token.list", ""),
}

// wordFix words an action as the command that does it: the verb's words
// (site.cert: aegir site cert), the target, and each argument as its flag
// (the argument names are the settings' names, which are the flags').
// Placeholders (FILE, SOCKET|HOST:PORT) stay as they are; other values
// are quoted for a shell.
func wordFix(a entities.Action) string {
	w := []string{"aegir"}
	w = append(w, strings.Split(a.Verb, ".")...)
	if a.Target != "" {
		w = append(w, wordValue(a.Target))
	}
	for _, arg := range a.Args {
		w = append(w, "--"+arg.Name)
		if arg.Value != "" {
			w = append(w, wordValue(arg.Value))
		}
	}
	return strings.Join(w, " ")
}

// wordValue is v quoted for a shell unless it is a placeholder.
func wordValue(v string) string {
	if strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_|:") == "" {
		return v
	}
	return exec.Quote(v)
}

// wordHint is a hint followed by the commands of its actions: "bring a
// certificate that covers every name: aegir site cert a.example --cert
// FILE --key FILE", the commands in the order the hint names them.
func wordHint(hint string, fix []entities.Action) string {
	if len(fix) == 0 {
		return hint
	}
	cmds := make([]string, len(fix))
	for i, a := range fix {
		cmds[i] = wordFix(a)
	}
	if hint == "" {
		hint = "run"
	}
	return hint + ": " + strings.Join(cmds, "; ")
}

// fixJSON is an action in an error's JSON form: the action and the command
// that does it.
type fixJSON struct {
	entities.Action
	Command string `json:"command"`
}

func fixesJSON(fix []entities.Action) []fixJSON {
	var v []fixJSON
	for _, a := range fix {
		v = append(v, fixJSON{Action: a, Command: wordFix(a)})
	}
	return v
}

// isCobraUsage recognizes the argument errors cobra makes itself.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "received ", "unknown flag", "unknown shorthand", "required flag", "invalid argument", "flag needs an argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// impossibleName turns a client, server or platform not found under a
// name no record can have (--platform ../etc) into the invalid input it is.
func impossibleName(err error) error {
	var nf *store.NotFoundError
	if errors.As(err, &nf) && (nf.Kind == "client" || nf.Kind == "server" || nf.Kind == "platform") {
		if verr := entities.ValidateName(nf.Kind+" name", nf.Name); verr != nil {
			return verr
		}
	}
	return err
}

// report prints err (one line, then a hint line) and returns the exit code.
// Under --format json the error is a JSON object on stderr.
func (a *App) report(err error) int {
	err = impossibleName(err)
	code, hint, fix := classify(err)
	msg := err.Error()
	hint = wordHint(hint, fix)
	if a.format == "json" {
		b, _ := json.Marshal(struct {
			Error string    `json:"error"`
			Hint  string    `json:"hint,omitempty"`
			Fix   []fixJSON `json:"fix,omitempty"`
			Code  int       `json:"exit_code"`
		}{msg, hint, fixesJSON(fix), code})
		fmt.Fprintln(a.IO.Err, string(b))
		return code
	}
	prefix := "error:"
	var tf *errTaskFailed
	if errors.As(err, &tf) {
		prefix = "Error:" // the end line of a task, as Success: is
	}
	fmt.Fprintf(a.IO.Err, "%s %s\n", a.paint(a.IO.Err, output.StatusColor(entities.TaskError), prefix), output.Printable(msg))
	if hint != "" {
		fmt.Fprintf(a.IO.Err, "hint: %s\n", output.Printable(hint))
	}
	return code
}
