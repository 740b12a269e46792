// Package provision is the contract between aegir's front end and its back
// end: what a task is given (Context) and what it answers (Result, its log
// lines, its Error with a code and a hint). It holds types only; the
// runtime that carries a task out (Run, the task registry, the server
// connection pool, reload batching) is package engine, and the work itself
// is in the packages beside it (tasks, web, db, app, backup, acme).
//
// The front end flattens a task's target and all its relations (site,
// platform, servers, services) into a Context; the back end never reads the
// state store. `aegir provision TASK --context-file F` runs a task from a
// JSON context alone, and the dispatcher goes through the same engine.Run
// entry point, so a back end can run on another host.
package provision

import (
	"encoding/json"
	"fmt"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Levels of log lines, as kept in a task's log (entities.Level*).
const (
	LevelDebug   = entities.LevelDebug
	LevelInfo    = entities.LevelInfo
	LevelCommand = entities.LevelCommand
	LevelOutput  = entities.LevelOutput
	LevelWarning = entities.LevelWarning
	LevelError   = entities.LevelError
)

// Result statuses.
const (
	StatusSuccess = entities.TaskSuccess
	StatusWarning = entities.TaskWarning
	StatusError   = entities.TaskError
)

// LogLine is one line of a task's log (entities.LogLine: the state keeps
// a result's lines as they are).
type LogLine = entities.LogLine

// Logger receives a task's log lines as they happen.
type Logger interface {
	Log(level, message string)
}

// LoggerFunc adapts a function to Logger.
type LoggerFunc func(level, message string)

// Log calls f.
func (f LoggerFunc) Log(level, message string) { f(level, message) }

// FixLogger is a Logger that keeps what a line proposes to do as actions
// beside its neutral message, for its front end to word as commands.
type FixLogger interface {
	Logger
	LogFix(level, message string, fix []entities.Action)
}

// FixLoggerFunc adapts a function to FixLogger.
type FixLoggerFunc func(level, message string, fix ...entities.Action)

// Log calls f without actions.
func (f FixLoggerFunc) Log(level, message string) { f(level, message) }

// LogFix calls f.
func (f FixLoggerFunc) LogFix(level, message string, fix []entities.Action) {
	f(level, message, fix...)
}

// LogFix sends a line and its actions to l: to LogFix if l keeps actions,
// else the message alone.
func LogFix(l Logger, level, message string, fix []entities.Action) {
	if fl, ok := l.(FixLogger); ok {
		fl.LogFix(level, message, fix)
		return
	}
	l.Log(level, message)
}

// Result is what the back end answers for one task.
type Result struct {
	Status string    `json:"status"` // success, warning or error
	Log    []LogLine `json:"log"`
	// Changes is what the task did that the front end saves.
	Changes *Changes `json:"changes,omitempty"`
	// On error: a stable code (see the Err* constants), what went wrong,
	// what to do about it in neutral words, and the actions that do it, in
	// order (the front end words them as its commands).
	ErrorCode string            `json:"error_code,omitempty"`
	Error     string            `json:"error,omitempty"`
	Hint      string            `json:"hint,omitempty"`
	Fix       []entities.Action `json:"fix,omitempty"`
	// Secrets are values the front end must keep but nobody may see (the
	// database passwords of imported sites). They never leave the process:
	// not in the JSON result, not in logs.
	Secrets map[string]string `json:"-"`
}

// Error is a task failure the back end can explain: a code, the message, a
// hint that tells the administrator what to do, and the actions that do it
// (Fix). The hint names no front end's commands: it says what to do ("bring
// a certificate that covers every name") and Fix says with what, for the
// front end to word (`aegir site cert DOMAIN --cert FILE --key FILE`).
type Error struct {
	Code string
	Msg  string
	Hint string
	Fix  []entities.Action
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a code, a hint and a formatted message.
func Errorf(code, hint, format string, args ...any) *Error {
	return &Error{Code: code, Hint: hint, Msg: fmt.Sprintf(format, args...)}
}

// With adds actions to e's Fix and returns e.
func (e *Error) With(fix ...entities.Action) *Error {
	e.Fix = append(e.Fix, fix...)
	return e
}

// Also adds a sentence to e's hint, after what it says, and the actions
// the sentence proposes to its Fix.
func (e *Error) Also(hint string, fix ...entities.Action) {
	if e.Hint != "" {
		hint = e.Hint + "; " + hint
	}
	e.Hint = hint
	e.Fix = append(e.Fix, fix...)
}

// Error codes carried in Result.ErrorCode.
const (
	ErrInvalidContext = "invalid_context"
	ErrUnreachable    = "unreachable"
	ErrHostKey        = "host_key"
	ErrAuth           = "auth"
	ErrMissingBinary  = "missing_binary"
	ErrConfigTest     = "config_test"
	ErrDatabase       = "database"
	ErrPlatform       = "platform"
	ErrInstall        = "install"
	ErrCommand        = "command"
	ErrInternal       = "internal"
	ErrCancelled      = "cancelled"
)

// MarshalResult renders a Result as indented JSON.
func MarshalResult(r *Result) ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// TaskRescue is the task that puts things right after a task whose
// dispatcher died: it runs with the dead task's id, on the dead task's
// temporary files, and so has none of its own.
const TaskRescue = "task.rescue"

// ReloadReport is what became of the reloads of one web server in a task,
// for the front end to remember a reload still to do (Changes.WebReloads,
// by server name): when (unix ms) the last reload that
// served started, and the last that failed.
type ReloadReport struct {
	Done   int64 `json:"done,omitempty"`
	Failed int64 `json:"failed,omitempty"`
}
