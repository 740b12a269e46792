package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
)

const platformCols = `p.id, p.name, s.name, p.root, p.type, p.core_version, p.docroot, p.drush, p.status, p.created, p.verified,
	(SELECT COUNT(*) FROM sites x WHERE x.platform_id = p.id AND x.status <> 'deleted')`

const platformFrom = ` FROM platforms p JOIN servers s ON s.id = p.server_id`

func scanPlatform(sc interface{ Scan(...any) error }) (*entities.Platform, error) {
	var p entities.Platform
	var created int64
	var verified sql.NullInt64
	if err := sc.Scan(&p.ID, &p.Name, &p.Server, &p.Root, &p.Type, &p.CoreVersion, &p.Docroot, &p.Drush, &p.Status, &created, &verified, &p.Sites); err != nil {
		return nil, err
	}
	p.Created = fromMs(created)
	p.Verified = fromNullMs(verified)
	return &p, nil
}

// AddPlatform records a platform on a server and queues its verify task.
func (s *Store) AddPlatform(ctx context.Context, p *entities.Platform) (*entities.Task, error) {
	return s.AddPlatformWithOptions(ctx, p, nil)
}

// AddPlatformWithOptions is AddPlatform with options for the verify task
// (push_from: copy the code from the master first).
func (s *Store) AddPlatformWithOptions(ctx context.Context, p *entities.Platform, opts map[string]string) (*entities.Task, error) {
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var serverID int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM servers WHERE name = ? AND status <> 'deleted'`, p.Server).Scan(&serverID)
		if errors.Is(err, sql.ErrNoRows) {
			return &NotFoundError{Kind: "server", Name: p.Server}
		}
		if err != nil {
			return err
		}
		var hasHTTP int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM services WHERE server_id = ? AND kind = 'http'`, serverID).Scan(&hasHTTP); err != nil {
			return err
		}
		if hasHTTP == 0 {
			return &ConflictError{Field: "--server", Msg: "server " + quote(p.Server) + " has no web service",
				Hint: "add one",
				Fix:  []entities.Action{entities.Do("server.edit", p.Server, "http=nginx")}}
		}
		newID, err := insert(ctx, tx, `INSERT INTO platforms (name, server_id, root, type, drush, status, created) VALUES (?, ?, ?, ?, ?, 'queued', ?)`,
			p.Name, serverID, p.Root, p.Type, p.Drush, s.now())
		if isUnique(err) {
			if strings.Contains(err.Error(), "platforms.root") || strings.Contains(err.Error(), "platforms.server_id") || strings.Contains(err.Error(), `"platforms_root"`) {
				return &ConflictError{Field: "--root", Msg: "another platform already uses " + p.Root + " on server " + p.Server, Fix: []entities.Action{entities.Do("platform.list", "")}}
			}
			return &ConflictError{Field: "name", Msg: "platform " + quote(p.Name) + " already exists", Fix: []entities.Action{entities.Do("platform.list", "")}}
		}
		if err != nil {
			return err
		}
		p.ID = newID
		p.Status = entities.StatusQueued
		task, err = s.insertTask(ctx, tx, entities.TaskPlatformVerify, entities.TargetPlatform, p.ID, p.Name, opts)
		return err
	})
	return task, err
}

// GetPlatform finds a live platform by name.
func (s *Store) GetPlatform(ctx context.Context, name string) (*entities.Platform, error) {
	p, err := scanPlatform(s.db.QueryRowContext(ctx, `SELECT `+platformCols+platformFrom+` WHERE p.name = ? AND p.status <> 'deleted'`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "platform", Name: name}
	}
	return p, err
}

// GetPlatformByID finds a platform by id (deleted ones too).
func (s *Store) GetPlatformByID(ctx context.Context, id int64) (*entities.Platform, error) {
	p, err := scanPlatform(s.db.QueryRowContext(ctx, `SELECT `+platformCols+platformFrom+` WHERE p.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "platform", Name: "#" + itoa(id)}
	}
	return p, err
}

// ListPlatforms lists live platforms, of one server when server is set.
func (s *Store) ListPlatforms(ctx context.Context, server string) ([]*entities.Platform, error) {
	q := `SELECT ` + platformCols + platformFrom + ` WHERE p.status <> 'deleted'`
	var args []any
	if server != "" {
		q += ` AND s.name = ?`
		args = append(args, server)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY p.name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Platform{}
	for rows.Next() {
		p, err := scanPlatform(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SavePlatformVerify records what a platform verify found.
func (s *Store) SavePlatformVerify(ctx context.Context, id int64, typ, coreVersion, docroot string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE platforms SET type = ?, core_version = ?, docroot = ?, status = 'enabled', verified = ? WHERE id = ?`,
		typ, coreVersion, docroot, s.now(), id)
	return err
}

// SetPlatformStatus sets a platform's status. Marking it deleted is
// refused while it has live sites.
func (s *Store) SetPlatformStatus(ctx context.Context, id int64, status string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE platforms SET status = ? WHERE id = ?`, status, id)
	if err != nil && strings.Contains(err.Error(), "platform has sites") {
		return &ConflictError{Field: "name", Msg: "the platform still has sites",
			Hint: "migrate or delete them first",
			Fix:  []entities.Action{entities.Do("site.list", "", "platform=NAME")}}
	}
	return err
}

// QueuePlatformTask records a task on a platform after checking it is not deleted.
func (s *Store) QueuePlatformTask(ctx context.Context, p *entities.Platform, typ string, opts map[string]string) (*entities.Task, error) {
	if typ == entities.TaskPlatformDelete && p.Sites > 0 {
		return nil, &ConflictError{Field: "name", Msg: "platform " + quote(p.Name) + " still has " + itoa(int64(p.Sites)) + " site(s)",
			Hint: "migrate or delete them first",
			Fix:  []entities.Action{entities.Do("site.list", "", "platform="+p.Name)}}
	}
	return s.QueueTask(ctx, typ, entities.TargetPlatform, p.ID, p.Name, opts)
}
