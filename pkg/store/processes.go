package store

import (
	"context"
	"strings"
	"time"
)

// The process groups a running task has on remote servers (migration 20),
// where every master sharing the state reads them: the rescue of a task
// whose master died kills those still running (docs/masters.md).

// TaskProcess is a process group a task runs on a remote server.
type TaskProcess struct {
	Host    string // the server, as its executor names it (host:port)
	User    string // the user its command runs as, whom its kill runs as
	PID     string // its leader's pid, which is the group's id
	Name    string // its program, which the leader's command line names
	Master  string // the master that started it
	Started time.Time
}

// AddTaskProcesses records ps as task taskID's, started by master (those
// recorded already stay as they are).
func (s *Store) AddTaskProcesses(ctx context.Context, taskID int64, master string, ps []TaskProcess) error {
	if len(ps) == 0 {
		return nil
	}
	now := s.now()
	var q strings.Builder
	q.WriteString(`INSERT INTO task_processes (task_id, host, username, pid, name, master, started) VALUES `)
	args := make([]any, 0, 7*len(ps))
	for i, p := range ps {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, taskID, p.Host, p.User, p.PID, p.Name, master, now)
	}
	q.WriteString(` ON CONFLICT (task_id, host, pid) DO NOTHING`)
	_, err := s.db.ExecContext(ctx, q.String(), args...)
	return err
}

// RemoveTaskProcesses forgets ps (by server and pid) of task taskID's.
func (s *Store) RemoveTaskProcesses(ctx context.Context, taskID int64, ps []TaskProcess) error {
	if len(ps) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`DELETE FROM task_processes WHERE task_id = ? AND (`)
	args := make([]any, 0, 1+2*len(ps))
	args = append(args, taskID)
	for i, p := range ps {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(host = ? AND pid = ?)")
		args = append(args, p.Host, p.PID)
	}
	q.WriteString(")")
	_, err := s.db.ExecContext(ctx, q.String(), args...)
	return err
}

// TaskProcesses lists task taskID's process groups on remote servers, by
// server and pid.
func (s *Store) TaskProcesses(ctx context.Context, taskID int64) ([]TaskProcess, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT host, username, pid, name, master, started FROM task_processes WHERE task_id = ? ORDER BY host, pid`, taskID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TaskProcess
	for rows.Next() {
		var p TaskProcess
		var started int64
		if err := rows.Scan(&p.Host, &p.User, &p.PID, &p.Name, &p.Master, &started); err != nil {
			return nil, err
		}
		p.Started = fromMs(started)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ForgetTaskProcesses forgets every process group of task taskID's.
func (s *Store) ForgetTaskProcesses(ctx context.Context, taskID int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM task_processes WHERE task_id = ?`, taskID)
	return err
}
