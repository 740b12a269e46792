package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Watched is a site in a state a webhook event tells of: its certificate
// close to expiry, its last backup too old, or its health failing.
type Watched struct {
	SiteID     int64
	Domain     string
	Client     string
	Cert       *Certificate         // ExpiringCerts
	LastBackup *time.Time           // StaleBackups; nil: never backed up
	Health     *entities.SiteHealth // UnhealthySites
}

// ExpiringCerts lists the certificates of live sites that expire before
// before, by domain.
func (s *Store) ExpiringCerts(ctx context.Context, before time.Time) ([]*Watched, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+certCols+`, COALESCE(cl.name, '') FROM certificates c JOIN sites x ON x.id = c.site_id
		LEFT JOIN clients cl ON cl.id = x.client_id
		WHERE x.status IN ('installed', 'disabled') AND c.not_after IS NOT NULL AND c.not_after < ? ORDER BY x.domain`, ms2(before))
	return scanEach(rows, err, func(sc scanner) (*Watched, error) {
		var w Watched
		c, err := scanCert(scanPlus{sc, &w.Client})
		if err != nil {
			return nil, err
		}
		w.SiteID, w.Domain, w.Cert = c.SiteID, c.Domain, c
		return &w, nil
	})
}

// StaleBackups lists the installed sites whose last backup was made
// before before, or that were never backed up and were made before it.
func (s *Store) StaleBackups(ctx context.Context, before time.Time) ([]*Watched, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT x.id, x.domain, COALESCE(c.name, ''), x.last_backup FROM sites x LEFT JOIN clients c ON c.id = x.client_id
		WHERE x.status = 'installed' AND COALESCE(x.last_backup, x.created) < ? ORDER BY x.domain`, ms2(before))
	return scanEach(rows, err, func(sc scanner) (*Watched, error) {
		var w Watched
		var last sql.NullInt64
		err := sc.Scan(&w.SiteID, &w.Domain, &w.Client, &last)
		w.LastBackup = fromNullMs(last)
		return &w, err
	})
}

// UnhealthySites lists the installed sites whose last health check
// failed.
func (s *Store) UnhealthySites(ctx context.Context) ([]*Watched, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT x.id, x.domain, COALESCE(c.name, ''), x.health_status, x.health_http_code, x.health_time_ms,
		COALESCE(x.health_checked, 0), x.health_error FROM sites x LEFT JOIN clients c ON c.id = x.client_id
		WHERE x.status = 'installed' AND x.health_status = ? ORDER BY x.domain`, entities.HealthError)
	return scanEach(rows, err, func(sc scanner) (*Watched, error) {
		w := Watched{Health: &entities.SiteHealth{}}
		var checked int64
		err := sc.Scan(&w.SiteID, &w.Domain, &w.Client, &w.Health.Status, &w.Health.HTTPCode, &w.Health.TimeMS, &checked, &w.Health.Error)
		w.Health.Checked = fromMs(checked)
		return &w, err
	})
}

// scanPlus scans the columns of a scanner's row and then extra ones.
type scanPlus struct {
	sc    scanner
	extra *string
}

func (p scanPlus) Scan(dest ...any) error { return p.sc.Scan(append(dest, p.extra)...) }
