package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The SSH host keys the masters trust (migration 19), where every master
// sharing the state reads them: a key one master accepted is trusted by
// the others, a changed key refused by all (docs/remote-servers.md).

// HostKey is a host's SSH host key as recorded.
type HostKey struct {
	Host        string // as known_hosts names it: "host", "[host]:port"
	Type        string // the key's type (ssh-ed25519, ssh-rsa, ...)
	Key         string // authorized-key form: "ssh-ed25519 AAAA..."
	Fingerprint string // SHA256:...
	AddedAt     time.Time
	AddedBy     string // the master that recorded it
}

// HostKeys lists the keys recorded for host, or for every host when host
// is empty, by host and type.
func (s *Store) HostKeys(ctx context.Context, host string) ([]HostKey, error) {
	q := `SELECT ` + hostKeyCols + ` FROM known_host_keys`
	var args []any
	if host != "" {
		q += ` WHERE host = ?`
		args = append(args, host)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY host, key_type`, args...)
	if err != nil {
		return nil, err
	}
	return scanHostKeys(rows)
}

// AddHostKey records k (its AddedAt is set now) unless its host has a key
// of its type recorded already: the insert decides between masters that
// record a host's first key at once. It returns the key recorded for k's
// host and type, k itself when it wrote it, and whether it did; the
// caller compares a key it did not write with its own.
// A row gone between the insert and its re-read (forgotten, or deleted
// by a writer that found another type recorded) is tried again.
func (s *Store) AddHostKey(ctx context.Context, k HostKey) (HostKey, bool, error) {
	for try := 0; ; try++ {
		now := s.now()
		res, err := s.db.ExecContext(ctx, `INSERT INTO known_host_keys (host, key_type, key, fingerprint, added_at, added_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, key_type) DO NOTHING`,
			k.Host, k.Type, k.Key, k.Fingerprint, now, k.AddedBy)
		if err != nil {
			return HostKey{}, false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return HostKey{}, false, err
		} else if n == 1 {
			k.AddedAt = fromMs(now)
			return k, true, nil
		}
		got, err := scanHostKey(s.db.QueryRowContext(ctx, `SELECT `+hostKeyCols+` FROM known_host_keys WHERE host = ? AND key_type = ?`, k.Host, k.Type))
		if errors.Is(err, sql.ErrNoRows) && try < 10 {
			continue
		}
		if err != nil {
			return HostKey{}, false, err
		}
		return got, false, nil
	}
}

// DeleteHostKey deletes k's row (host, type and key) if it is there: a
// first key that its writer found recorded beside another master's.
func (s *Store) DeleteHostKey(ctx context.Context, k HostKey) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM known_host_keys WHERE host = ? AND key_type = ? AND key = ?`, k.Host, k.Type, k.Key)
	return err
}

// ForgetHostKeys deletes the keys recorded for host and returns them.
func (s *Store) ForgetHostKeys(ctx context.Context, host string) ([]HostKey, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM known_host_keys WHERE host = ? RETURNING `+hostKeyCols, host)
	if err != nil {
		return nil, err
	}
	return scanHostKeys(rows)
}

const hostKeyCols = `host, key_type, key, fingerprint, added_at, added_by`

func scanHostKeys(rows *sql.Rows) ([]HostKey, error) {
	defer rows.Close()
	var out []HostKey
	for rows.Next() {
		k, err := scanHostKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func scanHostKey(r interface{ Scan(...any) error }) (HostKey, error) {
	var k HostKey
	var at int64
	err := r.Scan(&k.Host, &k.Type, &k.Key, &k.Fingerprint, &at, &k.AddedBy)
	k.AddedAt = fromMs(at)
	return k, err
}
