package store

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// The masters the state knows of (docs/masters.md): a master has no row
// of its own; it is named by the worker of the tasks it ran
// ("pid@master/machine", "pid@master" before machines were recorded), by
// the tasks tied to it (tasks.master) and by the backups in its backups
// directory (backups.master).

// workerMaster is the master of a task's worker, "" when w is none.
func workerMaster(w string) string {
	_, rest, found := strings.Cut(w, "@")
	if !found {
		return ""
	}
	m, _, _ := strings.Cut(rest, "/")
	return m
}

// Masters lists the masters the state knows of, by name, with when each
// last started or finished a task (zero: never), the tasks it runs now,
// the queued tasks tied to it and the backups recorded on it (This is
// the caller's to mark). One pass over tasks (no index names a worker),
// one over backups, none over task_log.
func (s *Store) Masters(ctx context.Context) ([]*entities.Master, error) {
	byName := map[string]*entities.Master{}
	seen := map[string]time.Time{}
	get := func(name string) *entities.Master {
		m := byName[name]
		if m == nil {
			m = &entities.Master{Name: name}
			byName[name] = m
		}
		return m
	}
	// One pass over tasks: grouped by worker (a process, so far fewer
	// groups than tasks) and tied master.
	rows, err := s.db.QueryContext(ctx, `SELECT worker, master, MAX(COALESCE(finished, started, 0)),
		SUM(CASE WHEN status = 'processing' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END)
		FROM tasks WHERE worker <> '' OR master <> '' GROUP BY worker, master`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var w, tied string
		var last, holds, waiting int64
		if err := rows.Scan(&w, &tied, &last, &holds, &waiting); err != nil {
			rows.Close()
			return nil, err
		}
		if tied != "" {
			get(tied).Waiting += int(waiting)
		}
		name := workerMaster(w)
		if name == "" {
			continue
		}
		m := get(name)
		m.Holds += int(holds)
		if t := fromMs(last); last > 0 && t.After(seen[name]) {
			seen[name] = t
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT master, COUNT(*) FROM backups WHERE master <> '' GROUP BY master`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		get(name).Backups = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*entities.Master, len(names))
	for i, n := range names {
		out[i] = byName[n]
		out[i].LastSeen = "never"
		if t, ok := seen[n]; ok {
			out[i].LastSeen = t.Format(time.RFC3339)
		}
	}
	return out, nil
}

// LeaseHeld is a task a master holds under a lease that has not run out.
type LeaseHeld struct {
	Task  int64
	Until time.Time
}

// Forgotten is what ForgetMaster did: the tied tasks it cancelled and
// the backup records it deleted.
type Forgotten struct {
	Cancelled []int64
	Backups   int
}

// ForgetMaster forgets master name, gone for good, in one transaction:
// its queued tied tasks are cancelled with why as their error and a log
// line, and the records of the backups in its backups directory are
// deleted (the archives, on its disk, are not touched). A master that
// runs a task under a lease not yet run out is alive: it returns that
// task and changes nothing. A name the state does not know of is a
// NotFoundError.
func (s *Store) ForgetMaster(ctx context.Context, name, why string) (*Forgotten, *LeaseHeld, error) {
	var f Forgotten
	var held *LeaseHeld
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		known := false
		rows, err := tx.QueryContext(ctx, `SELECT id, worker, COALESCE(lease_until, 0) FROM tasks WHERE status = 'processing' ORDER BY id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, until int64
			var w string
			if err := rows.Scan(&id, &w, &until); err != nil {
				rows.Close()
				return err
			}
			if workerMaster(w) != name {
				continue
			}
			known = true
			if until > now && held == nil {
				held = &LeaseHeld{Task: id, Until: fromMs(until)}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if held != nil {
			return nil
		}
		if !known {
			var n int
			err := tx.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE master = ? LIMIT 1) a) +
				(SELECT COUNT(*) FROM (SELECT 1 FROM backups WHERE master = ? LIMIT 1) b) +
				(SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE worker LIKE ? ESCAPE '\' OR worker LIKE ? ESCAPE '\' LIMIT 1) c)`,
				name, name, "%@"+likeEscape(name), "%@"+likeEscape(name)+"/%").Scan(&n)
			if err != nil {
				return err
			}
			if n == 0 {
				return &NotFoundError{Kind: "master", Name: name}
			}
		}
		rows, err = tx.QueryContext(ctx, `SELECT id FROM tasks WHERE status = 'queued' AND master = ? ORDER BY id`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			f.Cancelled = append(f.Cancelled, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range f.Cancelled {
			if _, err := tx.ExecContext(ctx, `UPDATE tasks SET status = 'cancelled', finished = ?, error = ? WHERE id = ? AND status = 'queued'`, now, why, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO task_log (task_id, time, level, message, fix) VALUES (?, ?, ?, ?, ?)`, id, now, "error", why, ""); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM backups WHERE master = ?`, name)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		f.Backups = int(n)
		return err
	})
	if err != nil || held != nil {
		return nil, held, err
	}
	return &f, nil, nil
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
