package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
)

const clientCols = `c.id, c.name, c.email, c.created, (SELECT COUNT(*) FROM sites s WHERE s.client_id = c.id AND s.status <> 'deleted'),
	c.quota_sites, c.quota_disk, c.quota_backups, ` + clientDiskUsed + `,
	(SELECT COUNT(*) FROM backups b JOIN sites s ON s.id = b.site_id WHERE s.client_id = c.id)`

// clientDiskUsed is the disk the live sites of client c use, as their
// last statistics measured it.
const clientDiskUsed = `(SELECT COALESCE(SUM(t.db_bytes + t.files_bytes), 0) FROM site_stats t JOIN sites s ON s.id = t.site_id
	WHERE s.client_id = c.id AND s.status <> 'deleted')`

func scanClient(sc interface{ Scan(...any) error }) (*entities.Client, error) {
	var c entities.Client
	var created int64
	if err := sc.Scan(&c.ID, &c.Name, &c.Email, &created, &c.Sites, &c.QuotaSites, &c.QuotaDisk, &c.QuotaBackups, &c.DiskUsed, &c.Backups); err != nil {
		return nil, err
	}
	c.Created = fromMs(created)
	return &c, nil
}

// AddClient records a new client.
func (s *Store) AddClient(ctx context.Context, c *entities.Client) error {
	newID, err := insert(ctx, s.db, `INSERT INTO clients (name, email, created) VALUES (?, ?, ?)`, c.Name, c.Email, s.now())
	if isUnique(err) {
		return &ConflictError{Field: "name", Msg: "client " + quote(c.Name) + " already exists", Fix: []entities.Action{entities.Do("client.list", "")}}
	}
	if err != nil {
		return err
	}
	c.ID = newID
	return nil
}

// GetClient finds a client by name.
func (s *Store) GetClient(ctx context.Context, name string) (*entities.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientCols+` FROM clients c WHERE c.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "client", Name: name}
	}
	return c, err
}

// ListClients lists every client by name.
func (s *Store) ListClients(ctx context.Context) ([]*entities.Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientCols+` FROM clients c ORDER BY c.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateClient saves a client's email and quotas.
func (s *Store) UpdateClient(ctx context.Context, c *entities.Client) error {
	_, err := s.db.ExecContext(ctx, `UPDATE clients SET email = ?, quota_sites = ?, quota_disk = ?, quota_backups = ? WHERE id = ?`,
		c.Email, c.QuotaSites, c.QuotaDisk, c.QuotaBackups, c.ID)
	return err
}

// checkQuota refuses a new site for client cid (none: no check) when the
// client's live sites reached its quota of sites, or the disk they use
// reached its disk quota: a *entities.QuotaError. It runs in the
// transaction that records the site, so that two installs at once cannot
// both take the last place.
func checkQuota(ctx context.Context, tx *sql.Tx, cid sql.NullInt64) error {
	if !cid.Valid {
		return nil
	}
	var name string
	var sites, quotaSites, quotaDisk, used int64
	err := tx.QueryRowContext(ctx, `SELECT c.name, (SELECT COUNT(*) FROM sites s WHERE s.client_id = c.id AND s.status <> 'deleted'),
		c.quota_sites, c.quota_disk, `+clientDiskUsed+` FROM clients c WHERE c.id = ?`, cid.Int64).Scan(&name, &sites, &quotaSites, &quotaDisk, &used)
	if err != nil {
		return err
	}
	if quotaSites > 0 && sites >= quotaSites {
		return &entities.QuotaError{Client: name, Quota: entities.QuotaSites, Limit: quotaSites, Used: sites}
	}
	if quotaDisk > 0 && used >= quotaDisk {
		return &entities.QuotaError{Client: name, Quota: entities.QuotaDisk, Limit: quotaDisk, Used: used}
	}
	return nil
}

// DeleteClient deletes a client that has no live sites.
func (s *Store) DeleteClient(ctx context.Context, name string) error {
	c, err := s.GetClient(ctx, name)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, c.ID)
	if err != nil && strings.Contains(err.Error(), "client has sites") {
		return &ConflictError{Field: "name", Msg: "client " + quote(name) + " still has sites",
			Hint: "move them to another client",
			Fix:  []entities.Action{entities.Do("site.list", "", "client="+name), entities.Do("site.edit", "DOMAIN", "client=OTHER")}}
	}
	if isForeignKey(err) {
		return &ConflictError{Field: "name", Msg: "client " + quote(name) + " still has users", Hint: "delete them first",
			Fix: []entities.Action{entities.Do("user.list", "")}}
	}
	return err
}

func quote(s string) string { return `"` + s + `"` }
