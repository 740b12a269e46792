package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
)

const serverCols = `id, name, host, ssh_user, ssh_port, ssh_key, accept_host_key, remote_home, status, created, verified`

func scanServer(sc interface{ Scan(...any) error }) (*entities.Server, error) {
	var v entities.Server
	var created int64
	var verified sql.NullInt64
	if err := sc.Scan(&v.ID, &v.Name, &v.Host, &v.SSHUser, &v.SSHPort, &v.SSHKey, &v.AcceptHostKey, &v.RemoteHome, &v.Status, &created, &verified); err != nil {
		return nil, err
	}
	v.Created = fromMs(created)
	v.Verified = fromNullMs(verified)
	v.Services = []entities.Service{}
	return &v, nil
}

const serviceCols = `sv.id, s.name, sv.kind, sv.type, sv.status, sv.version, sv.port, sv.https_port, sv.test_cmd, sv.restart_cmd, sv.php_fpm, sv.listen_ip, sv.db_host, sv.admin_user, sv.admin_password_file, sv.db_tunnel, sv.message, sv.verified, sv.reload_pending > 0, sv.php_versions`

func scanService(sc interface{ Scan(...any) error }) (*entities.Service, int64, error) {
	var v entities.Service
	var serverID int64
	var verified sql.NullInt64
	var php string
	err := sc.Scan(&serverID, &v.ID, &v.Server, &v.Kind, &v.Type, &v.Status, &v.Version, &v.Port, &v.HTTPSPort, &v.TestCmd, &v.RestartCmd, &v.PHPFPM, &v.ListenIP, &v.DBHost, &v.AdminUser, &v.AdminPasswordFile, &v.DBTunnel, &v.Message, &verified, &v.ReloadPending, &php)
	v.Verified = fromNullMs(verified)
	if php != "" {
		v.PHPVersions = strings.Split(php, ",")
	}
	return &v, serverID, err
}

// AddServer records a server with its services and queues its verify task.
func (s *Store) AddServer(ctx context.Context, v *entities.Server) (*entities.Task, error) {
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		newID, err := insert(ctx, tx, `INSERT INTO servers (name, host, ssh_user, ssh_port, ssh_key, accept_host_key, remote_home, status, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)`, v.Name, v.Host, v.SSHUser, v.SSHPort, v.SSHKey, v.AcceptHostKey, v.RemoteHome, now)
		if isUnique(err) {
			return &ConflictError{Field: "name", Msg: "server " + quote(v.Name) + " already exists", Fix: []entities.Action{entities.Do("server.list", "")}}
		}
		if err != nil {
			return err
		}
		v.ID = newID
		v.Status = entities.StatusQueued
		for i := range v.Services {
			if err := insertService(ctx, tx, v.ID, &v.Services[i]); err != nil {
				return err
			}
		}
		task, err = s.insertTask(ctx, tx, entities.TaskServerVerify, entities.TargetServer, v.ID, v.Name, nil)
		return err
	})
	return task, err
}

func insertService(ctx context.Context, tx *sql.Tx, serverID int64, sv *entities.Service) error {
	newID, err := insert(ctx, tx, `INSERT INTO services (server_id, kind, type, port, https_port, test_cmd, restart_cmd, php_fpm, listen_ip, db_host, admin_user, admin_password_file, db_tunnel)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, serverID, sv.Kind, sv.Type, sv.Port, sv.HTTPSPort, sv.TestCmd, sv.RestartCmd, sv.PHPFPM, sv.ListenIP, sv.DBHost, sv.AdminUser, sv.AdminPasswordFile, sv.DBTunnel)
	if isUnique(err) {
		return &ConflictError{Field: sv.Kind, Msg: "a server has at most one " + sv.Kind + " service"}
	}
	if err != nil {
		return err
	}
	sv.ID = newID
	return nil
}

// GetServer finds a live server by name, with its services.
func (s *Store) GetServer(ctx context.Context, name string) (*entities.Server, error) {
	v, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverCols+` FROM servers WHERE name = ? AND status <> 'deleted'`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "server", Name: name}
	}
	if err != nil {
		return nil, err
	}
	return v, s.loadServices(ctx, map[int64]*entities.Server{v.ID: v})
}

// GetServerByID finds a server by id (deleted ones too).
func (s *Store) GetServerByID(ctx context.Context, id int64) (*entities.Server, error) {
	v, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverCols+` FROM servers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "server", Name: "#" + itoa(id)}
	}
	if err != nil {
		return nil, err
	}
	return v, s.loadServices(ctx, map[int64]*entities.Server{v.ID: v})
}

// ListServers lists live servers by name, with their services.
func (s *Store) ListServers(ctx context.Context) ([]*entities.Server, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+serverCols+` FROM servers WHERE status <> 'deleted' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Server{}
	byID := map[int64]*entities.Server{}
	for rows.Next() {
		v, err := scanServer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		byID[v.ID] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.loadServices(ctx, byID)
}

func (s *Store) loadServices(ctx context.Context, byID map[int64]*entities.Server) error {
	if len(byID) == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT sv.server_id, `+serviceCols+` FROM services sv JOIN servers s ON s.id = sv.server_id WHERE sv.server_id IN (`+joinIDs(slices.Collect(maps.Keys(byID)))+`) ORDER BY sv.kind`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		sv, sid, err := scanService(rows)
		if err != nil {
			return err
		}
		if v := byID[sid]; v != nil {
			v.Services = append(v.Services, *sv)
		}
	}
	return rows.Err()
}

// ListServices lists services, of one server when server is not empty.
func (s *Store) ListServices(ctx context.Context, server string) ([]*entities.Service, error) {
	q := `SELECT sv.server_id, ` + serviceCols + ` FROM services sv JOIN servers s ON s.id = sv.server_id WHERE s.status <> 'deleted'`
	args := []any{}
	if server != "" {
		if _, err := s.GetServer(ctx, server); err != nil {
			return nil, err
		}
		q += ` AND s.name = ?`
		args = append(args, server)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY s.name, sv.kind`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Service{}
	for rows.Next() {
		sv, _, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}

// UpdateServer saves a server's settings and services (adding new
// services, updating existing ones) and queues a verify task.
func (s *Store) UpdateServer(ctx context.Context, v *entities.Server) (*entities.Task, error) {
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE servers SET host = ?, ssh_user = ?, ssh_port = ?, ssh_key = ?, accept_host_key = ?, remote_home = ? WHERE id = ?`,
			v.Host, v.SSHUser, v.SSHPort, v.SSHKey, v.AcceptHostKey, v.RemoteHome, v.ID)
		if err != nil {
			return err
		}
		for i := range v.Services {
			sv := &v.Services[i]
			if sv.ID == 0 {
				if err := insertService(ctx, tx, v.ID, sv); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE services SET type = ?, port = ?, https_port = ?, test_cmd = ?, restart_cmd = ?, php_fpm = ?, listen_ip = ?, db_host = ?, admin_user = ?, admin_password_file = ?, db_tunnel = ? WHERE id = ?`,
				sv.Type, sv.Port, sv.HTTPSPort, sv.TestCmd, sv.RestartCmd, sv.PHPFPM, sv.ListenIP, sv.DBHost, sv.AdminUser, sv.AdminPasswordFile, sv.DBTunnel, sv.ID); err != nil {
				return err
			}
		}
		task, err = s.insertTask(ctx, tx, entities.TaskServerVerify, entities.TargetServer, v.ID, v.Name, nil)
		return err
	})
	return task, err
}

// SaveServiceStatus records what a verify found for a service.
func (s *Store) SaveServiceStatus(ctx context.Context, serviceID int64, status, version, message string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE services SET status = ?, version = ?, message = ?, verified = ? WHERE id = ?`, status, version, message, s.now(), serviceID)
	return err
}

// SavePHPVersions records the php-fpm versions a verify found on a web
// service (oldest first).
func (s *Store) SavePHPVersions(ctx context.Context, serviceID int64, versions []string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE services SET php_versions = ? WHERE id = ?`, strings.Join(versions, ","), serviceID)
	return err
}

// MarkReloadPending records that a reload of the server's web service
// that started at (unix ms) failed: its changes wait for a reload.
func (s *Store) MarkReloadPending(ctx context.Context, serverID, at int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE services SET reload_pending = `+s.dialect.greatest("reload_pending", "?")+` WHERE server_id = ? AND kind = 'http'`, at, serverID)
	return err
}

// ClearReloadPending forgets a pending reload of the server's web service
// that failed before a reload that started at (unix ms) and served.
func (s *Store) ClearReloadPending(ctx context.Context, serverID, at int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE services SET reload_pending = 0 WHERE server_id = ? AND kind = 'http' AND reload_pending > 0 AND reload_pending < ?`, serverID, at)
	return err
}

// SetServerStatus sets a server's status (and its verified time on enabled).
func (s *Store) SetServerStatus(ctx context.Context, id int64, status string) error {
	q := `UPDATE servers SET status = ? WHERE id = ?`
	args := []any{status, id}
	if status == entities.StatusEnabled {
		q = `UPDATE servers SET status = ?, verified = ? WHERE id = ?`
		args = []any{status, s.now(), id}
	}
	_, err := s.db.ExecContext(ctx, q, args...)
	return err
}

// DeleteServer marks a server deleted, refusing while a live platform or
// site uses it.
func (s *Store) DeleteServer(ctx context.Context, name string) error {
	v, err := s.GetServer(ctx, name)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `UPDATE servers SET status = 'deleted' WHERE id = ?`, v.ID)
	if err != nil && strings.Contains(err.Error(), "server is in use") {
		return &ConflictError{Field: "name", Msg: "server " + quote(name) + " is still used by platforms or sites",
			Hint: "delete or migrate them first",
			Fix:  []entities.Action{entities.Do("platform.list", ""), entities.Do("site.list", "")}}
	}
	return err
}
