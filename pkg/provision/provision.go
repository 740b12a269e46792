// Package provision is aegir's back end: it does the server-level work of a
// task (databases, virtual hosts, installs, backups) from one flat Context and
// answers with a Result.
//
// The front end flattens a task's target and all its relations (site,
// platform, servers, services) into a Context; the back end never reads the
// state store. `aegir provision TASK --context-file F` runs a task from a
// JSON context alone, and the dispatcher goes through the same Run entry
// point, so a back end can run on another host.
package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Levels of log lines, as kept in a task's log.
const (
	LevelDebug   = "debug"
	LevelInfo    = "info"
	LevelCommand = "command" // a command that ran on a server
	LevelOutput  = "output"  // what a command printed
	LevelWarning = "warning"
	LevelError   = "error"
)

// Result statuses.
const (
	StatusSuccess = "success"
	StatusWarning = "warning"
	StatusError   = "error"
)

// LogLine is one line of a task's log.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// Logger receives a task's log lines as they happen.
type Logger interface {
	Log(level, message string)
}

// LoggerFunc adapts a function to Logger.
type LoggerFunc func(level, message string)

// Log calls f.
func (f LoggerFunc) Log(level, message string) { f(level, message) }

// Result is what the back end answers for one task.
type Result struct {
	Status string    `json:"status"` // success, warning or error
	Log    []LogLine `json:"log"`
	// Changes is state for the front end to save, keyed by the context key it
	// updates (e.g. "platform_core_version", "site_db_name", "services").
	Changes map[string]any `json:"changes,omitempty"`
	// On error: a stable code (see the Err* constants), what went wrong, and
	// what to do about it.
	ErrorCode string `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
	Hint      string `json:"hint,omitempty"`
	// Secrets are values the front end must keep but nobody may see (the
	// database passwords of imported sites). They never leave the process:
	// not in the JSON result, not in logs.
	Secrets map[string]string `json:"-"`
}

// Error is a task failure the back end can explain: a code, the message, and
// a hint that tells the administrator what to do.
type Error struct {
	Code string
	Msg  string
	Hint string
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

// Env is what a task function gets besides its Context: where to log and the
// means to reach servers.
type Env struct {
	Log Logger
	// Home is the local aegir home (templates overrides, backups, known_hosts).
	Home string
	// Connect opens (or reuses) an executor for a server described in the
	// context. Set by Run; tests may replace it.
	Connect func(ctx context.Context, s ServerRef) (Executor, error)
	// Reloads collects web server reloads so that many changes in one
	// dispatch share one reload. Nil: reload at once.
	Reloads *ReloadSet

	secretsMu sync.Mutex // also guards reloads
	secrets   map[string]string
	reloads   map[string]ReloadReport
}

// KeepSecret hands a secret to the front end (Result.Secrets).
func (e *Env) KeepSecret(key, value string) {
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	if e.secrets == nil {
		e.secrets = map[string]string{}
	}
	e.secrets[key] = value
}

// Logf logs a formatted line at level.
func (e *Env) Logf(level, format string, args ...any) {
	if e.Log != nil {
		e.Log.Log(level, fmt.Sprintf(format, args...))
	}
}

// TaskFunc does one task type.
type TaskFunc func(ctx context.Context, env *Env, c *Context) (map[string]any, error)

var (
	regMu sync.RWMutex
	tasks = map[string]TaskFunc{}
)

// Register makes a task type available to Run. It panics on a duplicate name.
func Register(name string, f TaskFunc) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := tasks[name]; dup {
		panic("provision: task registered twice: " + name)
	}
	tasks[name] = f
}

// Tasks lists the registered task types, sorted.
func Tasks() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (TaskFunc, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := tasks[name]
	return f, ok
}

// MarshalResult renders a Result as indented JSON.
func MarshalResult(r *Result) ([]byte, error) { return json.MarshalIndent(r, "", "  ") }
