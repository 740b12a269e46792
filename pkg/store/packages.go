package store

import (
	"context"
	"database/sql"

	"github.com/aegir-project/aegir/pkg/entities"
)

// ReplacePackages makes the package instances of one platform (siteID 0)
// or one site (platformID 0) exactly pkgs: new ones are added, changed ones
// updated, and ones no longer found removed, with packages and releases
// created as needed. One transaction.
func (s *Store) ReplacePackages(ctx context.Context, platformID, siteID int64, pkgs []entities.Package) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		col, owner := "platform_id", platformID
		if siteID != 0 {
			col, owner = "site_id", siteID
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM package_instances WHERE `+col+` = ?`, owner); err != nil {
			return err
		}
		upPkg, err := tx.PrepareContext(ctx, `INSERT INTO packages (name, type, title, project) VALUES (?, ?, ?, ?)
			ON CONFLICT (name, type) DO UPDATE SET title = excluded.title, project = excluded.project RETURNING id`)
		if err != nil {
			return err
		}
		defer upPkg.Close()
		upRel, err := tx.PrepareContext(ctx, `INSERT INTO package_releases (package_id, version) VALUES (?, ?)
			ON CONFLICT (package_id, version) DO UPDATE SET version = excluded.version RETURNING id`)
		if err != nil {
			return err
		}
		defer upRel.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO package_instances (release_id, `+col+`, path, enabled, schema_version) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, p := range pkgs {
			var pid, rid int64
			if err := upPkg.QueryRowContext(ctx, p.Name, p.Type, p.Title, p.Project).Scan(&pid); err != nil {
				return err
			}
			if err := upRel.QueryRowContext(ctx, pid, p.Version).Scan(&rid); err != nil {
				return err
			}
			if _, err := ins.ExecContext(ctx, rid, owner, p.Path, p.Enabled, p.Schema); err != nil {
				return err
			}
		}
		// Releases and packages no longer installed anywhere go away.
		if _, err := tx.ExecContext(ctx, `DELETE FROM package_releases WHERE id NOT IN (SELECT release_id FROM package_instances)`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM packages WHERE id NOT IN (SELECT package_id FROM package_releases)`)
		return err
	})
}

// PackageFilter narrows ListPackages; set Platform or Site.
type PackageFilter struct {
	PlatformID int64
	SiteID     int64
	Type       string
}

// ListPackages lists the package instances of a platform or a site.
func (s *Store) ListPackages(ctx context.Context, f PackageFilter) ([]entities.Package, error) {
	q := `SELECT p.name, p.title, p.type, p.project, r.version, COALESCE(pl.name, ''), COALESCE(x.domain, ''), i.path, i.enabled, i.schema_version
		FROM package_instances i
		JOIN package_releases r ON r.id = i.release_id
		JOIN packages p ON p.id = r.package_id
		LEFT JOIN platforms pl ON pl.id = i.platform_id
		LEFT JOIN sites x ON x.id = i.site_id
		WHERE 1=1`
	var args []any
	if f.PlatformID != 0 {
		q += ` AND i.platform_id = ?`
		args = append(args, f.PlatformID)
	}
	if f.SiteID != 0 {
		q += ` AND i.site_id = ?`
		args = append(args, f.SiteID)
	}
	if f.Type != "" {
		q += ` AND p.type = ?`
		args = append(args, f.Type)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY p.type, p.name, i.path`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []entities.Package{}
	for rows.Next() {
		var p entities.Package
		if err := rows.Scan(&p.Name, &p.Title, &p.Type, &p.Project, &p.Version, &p.Platform, &p.Site, &p.Path, &p.Enabled, &p.Schema); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
