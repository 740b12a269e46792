package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// Certificate sources.
const (
	CertACME  = entities.CertACME
	CertAdmin = entities.CertAdmin
)

// Certificate is a site's certificate as the state knows it.
type Certificate = entities.Certificate

const certCols = `c.site_id, x.domain, c.names, c.issuer, c.source, c.not_before, c.not_after, c.cert_path, c.key_path,
	c.renew_after, c.failures, c.last_error, c.updated`

func scanCert(sc interface{ Scan(...any) error }) (*Certificate, error) {
	var v Certificate
	var names string
	var nb, na, ra sql.NullInt64
	var updated int64
	if err := sc.Scan(&v.SiteID, &v.Domain, &names, &v.Issuer, &v.Source, &nb, &na, &v.CertPath, &v.KeyPath, &ra, &v.Failures, &v.LastError, &updated); err != nil {
		return nil, err
	}
	v.Names = strings.Fields(names)
	v.NotBefore, v.NotAfter, v.RenewAfter = fromNullMs(nb), fromNullMs(na), fromNullMs(ra)
	v.Updated = fromMs(updated)
	return &v, nil
}

// GetCert returns a site's certificate.
func (s *Store) GetCert(ctx context.Context, siteID int64) (*Certificate, error) {
	v, err := scanCert(s.db.QueryRowContext(ctx, `SELECT `+certCols+` FROM certificates c JOIN sites x ON x.id = c.site_id WHERE c.site_id = ?`, siteID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "certificate", Name: "of site #" + itoa(siteID)}
	}
	return v, err
}

// ListCerts lists the certificates of sites that are not deleted, by domain.
func (s *Store) ListCerts(ctx context.Context) ([]*Certificate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+certCols+` FROM certificates c JOIN sites x ON x.id = c.site_id
		WHERE x.status <> 'deleted' ORDER BY x.domain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Certificate{}
	for rows.Next() {
		v, err := scanCert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func nullMs(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// SaveCert records the certificate a site now uses, replacing any other,
// and clears its failures.
func (s *Store) SaveCert(ctx context.Context, v *Certificate) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO certificates (site_id, names, issuer, source, not_before, not_after, cert_path, key_path, renew_after, failures, last_error, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', ?)
		ON CONFLICT (site_id) DO UPDATE SET names = excluded.names, issuer = excluded.issuer, source = excluded.source,
			not_before = excluded.not_before, not_after = excluded.not_after, cert_path = excluded.cert_path, key_path = excluded.key_path,
			renew_after = excluded.renew_after, failures = 0, last_error = '', updated = excluded.updated`,
		v.SiteID, strings.Join(v.Names, " "), v.Issuer, v.Source, nullMs(v.NotBefore), nullMs(v.NotAfter), v.CertPath, v.KeyPath, nullMs(v.RenewAfter), s.now())
	return err
}

// CertFailed records a failed attempt to get a site's certificate from the
// CA: the current certificate (if any) stays as it is, failures counts up,
// and retry (given the new count) says when the cert queue tries again. A
// site with no certificate yet gets a row for the names it wants, so that
// the queue retries it. It returns the new count.
func (s *Store) CertFailed(ctx context.Context, siteID int64, names []string, msg string, retry func(failures int) time.Duration) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT failures FROM certificates WHERE site_id = ?`, siteID).Scan(&n)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		n++
		at := s.Now().Add(retry(n)).UnixMilli()
		if exists {
			_, err = tx.ExecContext(ctx, `UPDATE certificates SET failures = ?, last_error = ?, renew_after = ?, updated = ? WHERE site_id = ?`, n, msg, at, s.now(), siteID)
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO certificates (site_id, names, source, renew_after, failures, last_error, updated) VALUES (?, ?, 'acme', ?, ?, ?, ?)`,
			siteID, strings.Join(names, " "), at, n, msg, s.now())
		return err
	})
	return n, err
}

// DeleteCert forgets a site's certificate.
func (s *Store) DeleteCert(ctx context.Context, siteID int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM certificates WHERE site_id = ?`, siteID)
	return err
}
