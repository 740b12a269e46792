// Package engine is aegir's back-end runtime: Run carries out one task
// from its provision.Job and answers with a provision.Result; task
// types register themselves with Register; a Pool keeps one connection per
// server for a run or a dispatch, and a ReloadSet lets the tasks that
// change one web server at about the same time share one reload.
package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Env is what a task function gets besides its Context: where to log and the
// means to reach servers.
type Env struct {
	Log provision.Logger
	// Home is the local aegir home (templates overrides, backups, known_hosts).
	Home string
	// Connect opens (or reuses) an executor for a server described in the
	// context. Set by Run; tests may replace it.
	Connect func(ctx context.Context, s provision.ServerRef) (Executor, error)
	// Reloads collects web server reloads so that many changes in one
	// dispatch share one reload. Nil: reload at once.
	Reloads *ReloadSet
	// Journals keeps moves' journals and locks (Pool.Journals); nil:
	// files under Home.
	Journals Journals
	// Processes keeps the records of tasks' process groups on remote
	// servers (Pool.Processes); nil: in each task's directory under Home.
	Processes exec.RemoteRecords
	// ACMEAccounts is where the ACME accounts live (Pool.ACMEAccounts);
	// nil: files under Home.
	ACMEAccounts acme.Accounts

	secretsMu sync.Mutex // also guards reloads
	secrets   map[string]string
	reloads   map[string]provision.ReloadReport
}

// KeepSecret hands a secret to the front end (provision.Result.Secrets).
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

// LogFixf logs a formatted line at level with what it proposes to do:
// the message is neutral prose, and each front end words fix as its
// commands.
func (e *Env) LogFixf(level string, fix []entities.Action, format string, args ...any) {
	if e.Log != nil {
		provision.LogFix(e.Log, level, fmt.Sprintf(format, args...), fix)
	}
}

// TaskFunc does one task type.
type TaskFunc func(ctx context.Context, env *Env, c *provision.Job) (*provision.Changes, error)

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
