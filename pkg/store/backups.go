package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

const backupCols = `b.id, x.domain, x.status, b.path, b.size, b.sha256, b.created, b.master`

const backupFrom = ` FROM backups b JOIN sites x ON x.id = b.site_id`

func scanBackup(sc interface{ Scan(...any) error }) (*entities.Backup, error) {
	var b entities.Backup
	var created int64
	if err := sc.Scan(&b.ID, &b.Site, &b.SiteStatus, &b.Path, &b.Size, &b.SHA256, &created, &b.Master); err != nil {
		return nil, err
	}
	b.Created = fromMs(created)
	return &b, nil
}

// AddBackup records an archive of site siteID.
func (s *Store) AddBackup(ctx context.Context, siteID int64, path string, size int64, sha256 string, created time.Time) (*entities.Backup, error) {
	return s.AddBackupOn(ctx, "", siteID, path, size, sha256, created)
}

// AddBackupOn records an archive of site siteID that master's backups
// directory holds.
func (s *Store) AddBackupOn(ctx context.Context, master string, siteID int64, path string, size int64, sha256 string, created time.Time) (*entities.Backup, error) {
	newID, err := insert(ctx, s.db, `INSERT INTO backups (site_id, path, size, sha256, created, master) VALUES (?, ?, ?, ?, ?, ?)`,
		siteID, path, size, sha256, created.UnixMilli(), master)
	if isUnique(err) {
		return nil, &ConflictError{Field: "path", Msg: "backup " + quote(path) + " is recorded already"}
	}
	if isForeignKey(err) {
		return nil, &NotFoundError{Kind: "site", Name: "#" + itoa(siteID)}
	}
	if err != nil {
		return nil, err
	}
	id := newID
	return s.GetBackup(ctx, id)
}

// GetBackup finds a backup by id.
func (s *Store) GetBackup(ctx context.Context, id int64) (*entities.Backup, error) {
	b, err := scanBackup(s.db.QueryRowContext(ctx, `SELECT `+backupCols+backupFrom+` WHERE b.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "backup", Name: itoa(id)}
	}
	return b, err
}

// GetSiteBackup finds backup id of site siteID: a backup of another site
// is not found.
func (s *Store) GetSiteBackup(ctx context.Context, siteID, id int64) (*entities.Backup, error) {
	b, err := scanBackup(s.db.QueryRowContext(ctx, `SELECT `+backupCols+backupFrom+` WHERE b.id = ? AND b.site_id = ?`, id, siteID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "backup", Name: itoa(id)}
	}
	return b, err
}

// LatestBackup is the newest backup of site siteID.
func (s *Store) LatestBackup(ctx context.Context, siteID int64) (*entities.Backup, error) {
	b, err := scanBackup(s.db.QueryRowContext(ctx, `SELECT `+backupCols+backupFrom+` WHERE b.site_id = ? ORDER BY b.created DESC, b.id DESC LIMIT 1`, siteID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "backup", Name: "of site #" + itoa(siteID)}
	}
	return b, err
}

// ListBackups lists backups, newest first; site, if not empty, keeps those
// of the sites with that domain (deleted ones too: their backups stay).
func (s *Store) ListBackups(ctx context.Context, site string) ([]*entities.Backup, error) {
	q := `SELECT ` + backupCols + backupFrom
	var args []any
	if site != "" {
		q += ` WHERE x.domain = ?`
		args = append(args, site)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY b.created DESC, b.id DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Backup{}
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBackup forgets a backup (its file is the back end's to remove).
func (s *Store) DeleteBackup(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM backups WHERE id = ?`, id)
	return err
}

// QueueBackupTask records a task on a backup (backup.delete), tied to
// master ("": none; Task.Master).
func (s *Store) QueueBackupTask(ctx context.Context, b *entities.Backup, typ, master string) (*entities.Task, error) {
	return s.QueueTaskFor(ctx, master, typ, entities.TargetBackup, b.ID, b.Site+" backup "+itoa(b.ID), nil)
}

// placement resolves where a site goes: a live platform by name and a
// live server with a database service by name.
func placement(ctx context.Context, tx *sql.Tx, platform, dbServer string) (platformID, dbServerID int64, err error) {
	err = tx.QueryRowContext(ctx, `SELECT id FROM platforms WHERE name = ? AND status <> 'deleted'`, platform).Scan(&platformID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, &NotFoundError{Kind: "platform", Name: platform}
	} else if err != nil {
		return 0, 0, err
	}
	var hasDB bool
	err = tx.QueryRowContext(ctx, `SELECT s.id, EXISTS (SELECT 1 FROM services sv WHERE sv.server_id = s.id AND sv.kind = 'db')
		FROM servers s WHERE s.name = ? AND s.status <> 'deleted'`, dbServer).Scan(&dbServerID, &hasDB)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, &NotFoundError{Kind: "server", Name: dbServer}
	} else if err != nil {
		return 0, 0, err
	}
	if !hasDB {
		return 0, 0, &ConflictError{Field: "db-server", Msg: "server " + quote(dbServer) + " has no database service",
			Hint: "add one, or pick another database server",
			Fix:  []entities.Action{entities.Do("server.edit", dbServer, "db=mariadb")}}
	}
	return platformID, dbServerID, nil
}

// CloneSite records the site v (domain, platform and database server by
// name) as a copy of source: the source's client, profile, language and
// HTTPS mode, no aliases, status queued, and queues the site.clone task
// on it, whose option "source" names the source. The back end fills the
// new site from a backup of the source.
func (s *Store) CloneSite(ctx context.Context, v *entities.Site, source *entities.Site) (*entities.Task, error) {
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		platformID, dbServerID, err := placement(ctx, tx, v.Platform, v.DBServer)
		if err != nil {
			return err
		}
		if err := refuseLocked(ctx, tx, platformID, v.Platform); err != nil {
			return err
		}
		var cid sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT client_id FROM sites WHERE id = ?`, source.ID).Scan(&cid); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := checkQuota(ctx, tx, cid); err != nil {
			return err
		}
		// The clone runs as its source does: its PHP version and
		// isolation (a user and pool of its own, named after its domain).
		newID, err := insert(ctx, tx, `INSERT INTO sites (domain, platform_id, db_server_id, client_id, redirect, profile, language, https, status, created, php, isolation)
			SELECT ?, ?, ?, client_id, 0, profile, language, https, 'queued', ?, php, isolation FROM sites WHERE id = ?`,
			v.Domain, platformID, dbServerID, s.now(), source.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return &NotFoundError{Kind: "site", Name: source.Domain}
		}
		if isUnique(err) {
			return &ConflictError{Field: "new-domain", Msg: "site " + quote(v.Domain) + " already exists", Fix: []entities.Action{entities.Do("site.show", v.Domain)}}
		}
		if err != nil {
			return err
		}
		v.ID = newID
		v.Aliases, v.Status, v.PlatformID, v.DBServerID = nil, entities.SiteQueued, platformID, dbServerID
		if err := s.setNames(ctx, tx, v); err != nil {
			return err
		}
		task, err = s.insertTask(ctx, tx, entities.TaskSiteClone, entities.TargetSite, v.ID, v.Domain, map[string]string{"source": source.Domain})
		return err
	})
	return task, err
}

// MoveSite records where a migrated site now is: its platform and
// database server (by name), its domain (its aliases stay), and its
// database and user.
func (s *Store) MoveSite(ctx context.Context, id int64, platform, dbServer, domain, dbName, dbUser string) error {
	v, err := s.GetSiteByID(ctx, id)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		platformID, dbServerID, err := placement(ctx, tx, platform, dbServer)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sites SET platform_id = ?, db_server_id = ?, domain = ?, db_name = ?, db_user = ? WHERE id = ?`,
			platformID, dbServerID, domain, dbName, dbUser, id); err != nil {
			if isUnique(err) {
				return &ConflictError{Field: "domain", Msg: "site " + quote(domain) + " already exists"}
			}
			return err
		}
		if domain == v.Domain {
			return nil
		}
		v.Domain = domain
		return s.setNames(ctx, tx, v)
	})
}

// NameOwner returns the domain of the live site that answers to name (as
// its domain or an alias), or "" when none does.
func (s *Store) NameOwner(ctx context.Context, name string) (string, error) {
	var owner string
	err := s.db.QueryRowContext(ctx, `SELECT x.domain FROM site_names n JOIN sites x ON x.id = n.site_id WHERE n.name = ? AND x.status <> 'deleted'`, name).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return owner, err
}

// DeletedSiteBackup finds a backup of a deleted site with domain: backup
// id (0: the newest of them). It returns the backup and the deleted
// site's id.
func (s *Store) DeletedSiteBackup(ctx context.Context, domain string, id int64) (*entities.Backup, int64, error) {
	q := `SELECT ` + backupCols + `, x.id` + backupFrom + ` WHERE x.domain = ? AND x.status = 'deleted'`
	args := []any{domain}
	if id != 0 {
		q += ` AND b.id = ?`
		args = append(args, id)
	}
	var b entities.Backup
	var created, siteID int64
	err := s.db.QueryRowContext(ctx, q+` ORDER BY b.created DESC, b.id DESC LIMIT 1`, args...).Scan(&b.ID, &b.Site, &b.SiteStatus, &b.Path, &b.Size, &b.SHA256, &created, &b.Master, &siteID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, &NotFoundError{Kind: "backup", Name: "of a deleted site " + domain}
	}
	if err != nil {
		return nil, 0, err
	}
	b.Created = fromMs(created)
	return &b, siteID, nil
}

// RecreateSite records again the deleted site deletedID, to be restored
// from its backup backupID: a new site with its domain, platform,
// database server, client, profile, language and HTTPS mode, the aliases
// given, status queued. The deleted site's backups become the new site's,
// and its site.restore task (option backup) is queued. The platform and
// the database server must still be there.
func (s *Store) RecreateSite(ctx context.Context, deletedID int64, aliases []string, backupID int64) (*entities.Site, *entities.Task, error) {
	var v *entities.Site
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var domain, platform, platformStatus, dbServer, dbServerStatus string
		err := tx.QueryRowContext(ctx, `SELECT x.domain, p.name, p.status, d.name, d.status FROM sites x
			JOIN platforms p ON p.id = x.platform_id JOIN servers d ON d.id = x.db_server_id WHERE x.id = ? AND x.status = 'deleted'`, deletedID).
			Scan(&domain, &platform, &platformStatus, &dbServer, &dbServerStatus)
		if errors.Is(err, sql.ErrNoRows) {
			return &NotFoundError{Kind: "deleted site", Name: "#" + itoa(deletedID)}
		} else if err != nil {
			return err
		}
		if platformStatus == entities.StatusDeleted {
			return &ConflictError{Field: "domain", Msg: "the platform " + quote(platform) + " of the deleted site " + domain + " was deleted too",
				Hint: "add a platform of that name again, then restore",
				Fix:  []entities.Action{entities.Do("platform.add", platform), entities.Do("site.restore", domain)}}
		}
		if dbServerStatus == entities.StatusDeleted {
			return &ConflictError{Field: "domain", Msg: "the database server " + quote(dbServer) + " of the deleted site " + domain + " was deleted too",
				Hint: "add the server again, then restore",
				Fix:  []entities.Action{entities.Do("server.add", dbServer), entities.Do("site.restore", domain)}}
		}
		var cid sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT client_id FROM sites WHERE id = ?`, deletedID).Scan(&cid); err != nil {
			return err
		}
		if err := checkQuota(ctx, tx, cid); err != nil {
			return err
		}
		newID, err := insert(ctx, tx, `INSERT INTO sites (domain, platform_id, db_server_id, client_id, redirect, profile, language, https, status, created)
			SELECT domain, platform_id, db_server_id, client_id, redirect, profile, language, https, 'queued', ? FROM sites WHERE id = ?`, s.now(), deletedID)
		if isUnique(err) {
			return &ConflictError{Field: "domain", Msg: "site " + quote(domain) + " exists again", Hint: "restore it as it is",
				Fix: []entities.Action{entities.Do("site.restore", domain)}}
		}
		if err != nil {
			return err
		}
		id := newID
		v = &entities.Site{ID: id, Domain: domain, Aliases: aliases}
		if err := s.setNames(ctx, tx, v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE backups SET site_id = ? WHERE site_id = ?`, id, deletedID); err != nil {
			return err
		}
		task, err = s.insertTask(ctx, tx, entities.TaskSiteRestore, entities.TargetSite, id, domain, map[string]string{"backup": itoa(backupID)})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	v, err = s.GetSiteByID(ctx, v.ID)
	return v, task, err
}
