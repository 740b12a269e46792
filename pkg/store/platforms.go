package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
)

// platformCols: a locked platform's status reads locked once it is
// enabled (its lifecycle status stays in the column, for verify to keep).
const platformCols = `p.id, p.name, s.name, p.root, p.type, p.core_version, p.docroot, p.drush,
	CASE WHEN p.locked <> 0 AND p.status = 'enabled' THEN 'locked' ELSE p.status END, p.locked, p.git_url, p.git_ref, p.git_commit, p.composer, p.created, p.verified,
	(SELECT COUNT(*) FROM sites x WHERE x.platform_id = p.id AND x.status <> 'deleted')`

const platformFrom = ` FROM platforms p JOIN servers s ON s.id = p.server_id`

func scanPlatform(sc interface{ Scan(...any) error }) (*entities.Platform, error) {
	var p entities.Platform
	var created int64
	var verified sql.NullInt64
	if err := sc.Scan(&p.ID, &p.Name, &p.Server, &p.Root, &p.Type, &p.CoreVersion, &p.Docroot, &p.Drush, &p.Status, &p.Locked, &p.GitURL, &p.GitRef, &p.Commit, &p.Composer, &created, &verified, &p.Sites); err != nil {
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
			return &ConflictError{Field: "server", Msg: "server " + quote(p.Server) + " has no web service",
				Hint: "add one",
				Fix:  []entities.Action{entities.Do("server.edit", p.Server, "http=nginx")}}
		}
		newID, err := insert(ctx, tx, `INSERT INTO platforms (name, server_id, root, type, drush, status, locked, git_url, git_ref, composer, created)
			VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)`,
			p.Name, serverID, p.Root, p.Type, p.Drush, p.Locked, p.GitURL, p.GitRef, p.Composer, s.now())
		if isUnique(err) {
			if strings.Contains(err.Error(), "platforms.root") || strings.Contains(err.Error(), "platforms.server_id") || strings.Contains(err.Error(), `"platforms_root"`) {
				return &ConflictError{Field: "root", Msg: "another platform already uses " + p.Root + " on server " + p.Server, Fix: []entities.Action{entities.Do("platform.list", "")}}
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

// LockPlatform locks (or unlocks) a platform: a locked one takes no new
// sites. Its status (queued, enabled) is kept.
func (s *Store) LockPlatform(ctx context.Context, id int64, locked bool) error {
	_, err := s.db.ExecContext(ctx, `UPDATE platforms SET locked = ? WHERE id = ?`, locked, id)
	return err
}

// SavePlatformCommit records the commit a platform's build checked out.
func (s *Store) SavePlatformCommit(ctx context.Context, id int64, commit string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE platforms SET git_commit = ? WHERE id = ?`, commit, id)
	return err
}

// OpenForSites refuses a locked platform as the place of a new site (an
// install, a clone, a migrate onto it): a conflict whose fix unlocks it.
func OpenForSites(p *entities.Platform) error {
	if !p.Locked {
		return nil
	}
	return &ConflictError{Field: "platform", Msg: "platform " + quote(p.Name) + " is locked: it takes no new sites",
		Hint: "unlock it first, or choose another platform",
		Fix:  []entities.Action{entities.Do("platform.unlock", p.Name)}}
}

// refuseLocked is OpenForSites in a transaction, for the platform id
// (name for the message).
func refuseLocked(ctx context.Context, tx *sql.Tx, id int64, name string) error {
	var locked bool
	if err := tx.QueryRowContext(ctx, `SELECT locked FROM platforms WHERE id = ?`, id).Scan(&locked); err != nil {
		return err
	}
	return OpenForSites(&entities.Platform{Name: name, Locked: locked})
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
