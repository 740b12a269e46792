package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The ACME account of each CA directory (migration 22), which every master
// sharing the state uses (docs/https.md).

// ACMEAccount is the ACME account of a CA directory. KeyPEM is its
// private key: a secret, never printed.
type ACMEAccount struct {
	Directory string    `json:"directory" yaml:"directory"`
	KeyPEM    []byte    `json:"-" yaml:"-"`
	Location  string    `json:"location" yaml:"location"`
	Email     string    `json:"email" yaml:"email"`
	Master    string    `json:"master" yaml:"master"` // the master that made or imported it
	Created   time.Time `json:"created" yaml:"created"`
	Updated   time.Time `json:"updated" yaml:"updated"`
}

// ACMEAccount is the account of directory, or ErrNotFound.
func (s *Store) ACMEAccount(ctx context.Context, directory string) (*ACMEAccount, error) {
	var a ACMEAccount
	var key string
	var created, updated int64
	err := s.db.QueryRowContext(ctx, `SELECT directory, key_pem, location, email, master, created, updated FROM acme_accounts WHERE directory = ?`, directory).
		Scan(&a.Directory, &key, &a.Location, &a.Email, &a.Master, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a.KeyPEM, a.Created, a.Updated = []byte(key), fromMs(created), fromMs(updated)
	return &a, nil
}

// CreateACMEAccount stores a as its directory's account, made by master,
// unless the directory has one already, and answers the account stored
// (a's, or the one that was there: of two masters creating it at once,
// both answer the same).
func (s *Store) CreateACMEAccount(ctx context.Context, a ACMEAccount, master string) (*ACMEAccount, error) {
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO acme_accounts (directory, key_pem, location, email, master, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (directory) DO NOTHING`, a.Directory, string(a.KeyPEM), a.Location, a.Email, master, now, now); err != nil {
		return nil, err
	}
	return s.ACMEAccount(ctx, a.Directory)
}

// SetACMEAccount records the location and email of directory's account
// if its key is still keyPEM; it says whether it was.
func (s *Store) SetACMEAccount(ctx context.Context, directory string, keyPEM []byte, location, email string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE acme_accounts SET location = ?, email = ?, updated = ? WHERE directory = ? AND key_pem = ?`,
		location, email, s.now(), directory, string(keyPEM))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ACMEAccounts lists the accounts, by directory.
func (s *Store) ACMEAccounts(ctx context.Context) ([]*ACMEAccount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT directory, location, email, master, created, updated FROM acme_accounts ORDER BY directory`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*ACMEAccount{}
	for rows.Next() {
		var a ACMEAccount
		var created, updated int64
		if err := rows.Scan(&a.Directory, &a.Location, &a.Email, &a.Master, &created, &updated); err != nil {
			return nil, err
		}
		a.Created, a.Updated = fromMs(created), fromMs(updated)
		out = append(out, &a)
	}
	return out, rows.Err()
}

// DeleteACMEAccount forgets directory's account (the next certificate
// makes or imports another); ErrNotFound when there is none.
func (s *Store) DeleteACMEAccount(ctx context.Context, directory string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM acme_accounts WHERE directory = ?`, directory)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
