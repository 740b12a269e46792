package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Executor is the exec.Executor of a server.
type Executor = exec.Executor

// Run runs one task from its context and always answers with a provision.Result (an
// unknown task or a failure is a provision.Result with status error). lg, if not nil,
// receives every log line as it happens as well.
func Run(ctx context.Context, home string, c *provision.Job, lg provision.Logger, pool *Pool) *provision.Result {
	res := &provision.Result{Status: provision.StatusSuccess}
	var mu sync.Mutex
	env := &Env{Home: home}
	env.Log = provision.FixLoggerFunc(func(level, msg string, fix ...entities.Action) {
		// One line at a time, in order, to lg too: a task may check
		// things side by side.
		mu.Lock()
		defer mu.Unlock()
		res.Log = append(res.Log, provision.LogLine{Time: time.Now().UTC(), Level: level, Message: msg, Fix: fix})
		if level == provision.LevelWarning && res.Status == provision.StatusSuccess {
			res.Status = provision.StatusWarning
		}
		if lg != nil {
			provision.LogFix(lg, level, msg, fix)
		}
	})
	ownPool := pool == nil
	if ownPool {
		pool = NewPool(home)
		defer pool.Close()
	}
	env.Connect = func(ctx context.Context, s provision.ServerRef) (Executor, error) { return pool.connect(ctx, s, env) }
	env.Reloads = pool.Reloads
	env.Journals = pool.Journals
	env.Processes = pool.Processes
	env.ACMEAccounts = pool.ACMEAccounts
	defer env.Reloads.Running()()
	// The task and the context are checked before any server is reached.
	var changes *provision.Changes
	var err error
	f, ok := lookup(c.Task)
	if !ok {
		err = provision.Errorf(provision.ErrInvalidContext, "give one of the known task types",
			"unknown task type %q (known: %s)", c.Task, strings.Join(Tasks(), ", "))
	} else if cerr := c.Check(); cerr != nil {
		err = &provision.Error{Code: provision.ErrInvalidContext, Msg: "invalid context", Err: cerr, Hint: "fix the job (docs/json.md describes it)"}
	} else {
		resolveWebHomes(ctx, env, pool, c)
		var t *exec.Task
		if t, err = startTask(home, c); err == nil {
			if t != nil {
				pool.taskHomes(t, c)
				t.KeepRemoteIn(pool.Processes)
			}
			changes, err = safeCall(exec.WithTask(ctx, t), f, env, c)
			t.Close(ctx)
		}
	}
	if len(env.reloads) > 0 {
		// A failed task reports its reloads too: a change it wrote may
		// wait for one.
		if changes == nil {
			changes = &provision.Changes{}
		}
		changes.WebReloads = env.reloads
	}
	res.Changes = changes
	res.Secrets = env.secrets
	if err != nil {
		fail(res, env, c, err)
	}
	return res
}

// startTask makes the temporary directory of a task that has an id and
// a home (exec.StartTask); none for a task run by hand.
func startTask(home string, c *provision.Job) (*exec.Task, error) {
	if home == "" || c.TaskID == 0 || c.Task == provision.TaskRescue {
		return nil, nil
	}
	t, err := exec.StartTask(home, c.TaskID)
	if errors.Is(err, exec.ErrTaskRunning) {
		return nil, provision.Errorf(provision.ErrCommand, "wait for it to end, or see what runs it",
			"task %d is already running in another process", c.TaskID).With(entities.Do("task.show", c.TaskRef()))
	}
	if err != nil {
		return nil, provision.Errorf(provision.ErrCommand, "check the free space and permissions of "+home+"/tmp", "%v", err)
	}
	return t, nil
}

func safeCall(ctx context.Context, f TaskFunc, env *Env, c *provision.Job) (ch *provision.Changes, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = provision.Errorf(provision.ErrInternal, "this is a bug in aegir; report it with the task log", "internal error: %v", r)
		}
	}()
	return f(ctx, env, c)
}

func fail(res *provision.Result, env *Env, c *provision.Job, err error) {
	res.Status = provision.StatusError
	var pe *provision.Error
	if errors.As(err, &pe) {
		res.ErrorCode = pe.Code
		res.Hint, res.Fix = pe.Hint, pe.Fix
	} else {
		res.ErrorCode = classify(err)
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			res.Hint = h.Hint()
		}
		var f interface{ Fix() []entities.Action }
		if errors.As(err, &f) {
			res.Fix = f.Fix()
		}
	}
	res.Error = err.Error()
	if res.Hint == "" && len(res.Fix) == 0 {
		res.Hint, res.Fix = hintFor(res.ErrorCode, c)
	}
	env.Logf(provision.LevelError, "%s", res.Error)
	if res.Hint != "" {
		env.Logf(provision.LevelInfo, "hint: %s", res.Hint)
	}
}

func classify(err error) string {
	var ee *exec.ExitError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return provision.ErrCancelled
	case errors.Is(err, exec.ErrNotFound):
		return provision.ErrMissingBinary
	case errors.Is(err, exec.ErrUnreachable):
		return provision.ErrUnreachable
	case errors.Is(err, exec.ErrAuth):
		return provision.ErrAuth
	case errors.Is(err, exec.ErrHostKey):
		return provision.ErrHostKey
	case errors.As(err, &ee), errors.Is(err, exec.ErrTimeout):
		return provision.ErrCommand
	case errors.Is(err, os.ErrNotExist):
		return provision.ErrPlatform
	}
	return provision.ErrInternal
}

func hintFor(code string, c *provision.Job) (string, []entities.Action) {
	switch code {
	case provision.ErrCancelled:
		return "the task was interrupted; run it again", []entities.Action{entities.Do("task.retry", c.TaskRef())}
	case provision.ErrMissingBinary:
		return "install the missing program on the server (see the log line above), then retry the task", []entities.Action{entities.Do("task.retry", c.TaskRef())}
	case provision.ErrCommand:
		return "read the command's output in the task log, fix the cause, then retry the task", []entities.Action{entities.Do("task.log", c.TaskRef()), entities.Do("task.retry", c.TaskRef())}
	}
	return "", nil
}
