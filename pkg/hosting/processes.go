package hosting

import (
	"context"

	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// StateProcesses keeps the records of the process groups tasks run on
// remote servers in the state (exec.RemoteRecords), so that the rescue of
// a task whose master died, run by any master sharing the state, kills
// those still running there. Each is recorded as started by this master
// (queue.Master).
type StateProcesses struct {
	Store *store.Store
}

var _ exec.RemoteRecords = (*StateProcesses)(nil)

func toStore(ps []exec.RemoteProcess) []store.TaskProcess {
	out := make([]store.TaskProcess, len(ps))
	for i, p := range ps {
		out[i] = store.TaskProcess{Host: p.Host, User: p.User, PID: p.PID, Name: p.Name}
	}
	return out
}

// Add records ps as task id's (exec.RemoteRecords).
func (s *StateProcesses) Add(ctx context.Context, id int64, ps []exec.RemoteProcess) error {
	return s.Store.AddTaskProcesses(ctx, id, queue.Master(), toStore(ps))
}

// Remove forgets ps of task id's (exec.RemoteRecords).
func (s *StateProcesses) Remove(ctx context.Context, id int64, ps []exec.RemoteProcess) error {
	return s.Store.RemoveTaskProcesses(ctx, id, toStore(ps))
}

// List is task id's records (exec.RemoteRecords).
func (s *StateProcesses) List(ctx context.Context, id int64) ([]exec.RemoteProcess, error) {
	ps, err := s.Store.TaskProcesses(ctx, id)
	out := make([]exec.RemoteProcess, len(ps))
	for i, p := range ps {
		out[i] = exec.RemoteProcess{Host: p.Host, User: p.User, PID: p.PID, Name: p.Name}
	}
	return out, err
}

// Forget forgets task id's records (exec.RemoteRecords).
func (s *StateProcesses) Forget(ctx context.Context, id int64) error {
	return s.Store.ForgetTaskProcesses(ctx, id)
}
