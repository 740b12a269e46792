package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/entities"
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

// Error is an error with its exit code and a hint that says what to do.
type Error struct {
	Err  error
	Hint string
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
	Task *entities.Task // for the end line: what failed, after how long
}

func (e *errTaskFailed) Error() string {
	if e.Task != nil {
		return fmt.Sprintf("%s (task %d): %s", taskSentence(e.Task, false), e.ID, e.Msg)
	}
	return fmt.Sprintf("task %d failed: %s", e.ID, e.Msg)
}

// classify maps an error to its exit code and hint.
func classify(err error) (code int, hint string) {
	var ce *Error
	if errors.As(err, &ce) {
		code, hint = ce.Code, ce.Hint
		if code == 0 {
			code = ExitFailed
		}
		if hint != "" {
			return code, hint
		}
	}
	var inv *entities.InvalidError
	var nf *store.NotFoundError
	var cf *store.ConflictError
	var tf *errTaskFailed
	var held *store.HeldError
	switch {
	case errors.As(err, &held):
		return ExitBusy, fmt.Sprintf("wait for task %d to end (aegir task log %d --follow), then try again", held.Holder.ID, held.Holder.ID)
	case errors.As(err, &inv):
		return ExitUsage, ""
	case errors.As(err, &nf):
		return ExitNotFound, "run: aegir " + nf.Kind + " list"
	case errors.As(err, &cf):
		return ExitUsage, cf.Hint
	case errors.As(err, &tf):
		h := tf.Hint
		if h == "" {
			h = fmt.Sprintf("read the log: aegir task log %d; after fixing the cause: aegir task retry %d", tf.ID, tf.ID)
		}
		return ExitFailed, h
	case errors.Is(err, store.ErrNotInitialized):
		return ExitUsage, "run: aegir init (or point --home / AEGIR_HOME at an existing aegir home)"
	}
	if ce != nil {
		return code, hint
	}
	if isCobraUsage(err) {
		return ExitUsage, "see: aegir --help"
	}
	return ExitFailed, ""
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
	code, hint := classify(err)
	msg := err.Error()
	if a.format == "json" {
		b, _ := json.Marshal(struct {
			Error string `json:"error"`
			Hint  string `json:"hint,omitempty"`
			Code  int    `json:"exit_code"`
		}{msg, hint, code})
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
