package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

const userCols = `u.id, u.name, COALESCE(c.name, ''), u.role, u.created,
	(SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > ?))`

const userFrom = ` FROM users u LEFT JOIN clients c ON c.id = u.client_id`

func scanUser(sc interface{ Scan(...any) error }) (*entities.User, error) {
	var u entities.User
	var created int64
	if err := sc.Scan(&u.ID, &u.Name, &u.Client, &u.Role, &created, &u.Tokens); err != nil {
		return nil, err
	}
	u.Created = fromMs(created)
	return &u, nil
}

// AddUser records a new user of the HTTP API: an admin (of a client or
// none) or a client's user.
func (s *Store) AddUser(ctx context.Context, u *entities.User) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		cid, err := clientID(ctx, tx, u.Client)
		if err != nil {
			return err
		}
		newID, err := insert(ctx, tx, `INSERT INTO users (name, client_id, role, created) VALUES (?, ?, ?, ?)`, u.Name, cid, u.Role, s.now())
		if isUnique(err) {
			return &ConflictError{Field: "name", Msg: "user " + quote(u.Name) + " already exists", Fix: []entities.Action{entities.Do("user.list", "")}}
		}
		if err != nil {
			return err
		}
		u.ID = newID
		return nil
	})
}

// GetUser finds a user by name.
func (s *Store) GetUser(ctx context.Context, name string) (*entities.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+userFrom+` WHERE u.name = ?`, s.now(), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "user", Name: name}
	}
	return u, err
}

// ListUsers lists every user by name.
func (s *Store) ListUsers(ctx context.Context) ([]*entities.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+userFrom+` ORDER BY u.name`, s.now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteUser deletes a user and its tokens; the audit log keeps its name.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &NotFoundError{Kind: "user", Name: name}
	}
	return nil
}

// tokenPrefix starts every token's secret, so that one is recognized
// (in a leaked file, by a secret scanner) for what it is.
const tokenPrefix = "aegir_"

// hashToken is the form a token's secret is kept in: its SHA-256, hex.
func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

const tokenCols = `t.id, u.name, t.user_id, t.scope, t.created, t.expires, t.last_used, t.revoked`

func scanToken(sc interface{ Scan(...any) error }) (*entities.Token, error) {
	var t entities.Token
	var created int64
	var expires, used, revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &t.User, &t.UserID, &t.Scope, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	t.Created = fromMs(created)
	t.Expires, t.LastUsed, t.Revoked = fromNullMs(expires), fromNullMs(used), fromNullMs(revoked)
	return &t, nil
}

// CreateToken makes a token for user with scope, valid for ttl (0: no
// end), and returns it with its secret, which is kept only as a hash:
// the caller shows it once.
func (s *Store) CreateToken(ctx context.Context, user, scope string, ttl time.Duration) (*entities.Token, string, error) {
	u, err := s.GetUser(ctx, user)
	if err != nil {
		return nil, "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.Now()
	var expires sql.NullInt64
	if ttl > 0 {
		expires = sql.NullInt64{Int64: ms2(now.Add(ttl)), Valid: true}
	}
	newID, err := insert(ctx, s.db, `INSERT INTO tokens (user_id, hash, scope, created, expires) VALUES (?, ?, ?, ?, ?)`,
		u.ID, hashToken(secret), scope, ms2(now), expires)
	if err != nil {
		return nil, "", err
	}
	id := newID
	t := &entities.Token{ID: id, User: u.Name, UserID: u.ID, Scope: scope, Created: fromMs(ms2(now)), Expires: fromNullMs(expires)}
	return t, secret, nil
}

// ListTokens lists the tokens of user (every user's when empty) by id.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*entities.Token, error) {
	q := `SELECT ` + tokenCols + ` FROM tokens t JOIN users u ON u.id = t.user_id`
	var args []any
	if user != "" {
		q += ` WHERE u.name = ?`
		args = append(args, user)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY t.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes token id at once; revoking it again changes nothing.
func (s *Store) RevokeToken(ctx context.Context, id int64) (*entities.Token, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL`, s.now(), id); err != nil {
		return nil, err
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "token", Name: itoa(id)}
	}
	return t, err
}

// Authenticate finds the token whose secret is secret and its user, in
// one query (the user's Tokens is not counted). A secret no token has is
// a *NotFoundError; a revoked or expired token is returned as it is
// (Token.Live says whether it may be used).
func (s *Store) Authenticate(ctx context.Context, secret string) (*entities.Token, *entities.User, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, nil, &NotFoundError{Kind: "token", Name: "(given)"}
	}
	var t entities.Token
	var u entities.User
	var created, ucreated int64
	var expires, used, revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT t.id, u.name, t.user_id, t.scope, t.created, t.expires, t.last_used, t.revoked,
		u.id, COALESCE(c.name, ''), u.role, u.created
		FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN clients c ON c.id = u.client_id WHERE t.hash = ?`, hashToken(secret)).
		Scan(&t.ID, &t.User, &t.UserID, &t.Scope, &created, &expires, &used, &revoked, &u.ID, &u.Client, &u.Role, &ucreated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, &NotFoundError{Kind: "token", Name: "(given)"}
	}
	if err != nil {
		return nil, nil, err
	}
	t.Created = fromMs(created)
	t.Expires, t.LastUsed, t.Revoked = fromNullMs(expires), fromNullMs(used), fromNullMs(revoked)
	u.Name, u.Created = t.User, fromMs(ucreated)
	return &t, &u, nil
}

// RecordRequest writes e to the audit log and, when it was made with a
// token, marks the token used at e's time, in one transaction.
func (s *Store) RecordRequest(ctx context.Context, e *entities.AuditEntry) error {
	return s.recordRequest(ctx, e, true)
}

// AppendAudit writes e to the audit log alone: the token's last use is
// left as it was (the API marks it once a minute, not on every request).
func (s *Store) AppendAudit(ctx context.Context, e *entities.AuditEntry) error {
	return s.recordRequest(ctx, e, false)
}

func (s *Store) recordRequest(ctx context.Context, e *entities.AuditEntry, markUsed bool) error {
	at := ms2(e.Time)
	null := func(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }
	insertEntry := func(q queryRower) error {
		newID, err := insert(ctx, q, `INSERT INTO audit_log (time, "user", token_id, method, path, status, task_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			at, e.User, null(e.TokenID), e.Method, e.Path, e.Status, null(e.TaskID), e.Source)
		if err == nil {
			e.ID = newID
		}
		return err
	}
	if !markUsed || e.TokenID == 0 {
		return insertEntry(s.db)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertEntry(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE id = ?`, at, e.TokenID)
		return err
	})
}

// AuditLog lists the audit log's entries after id after, oldest first.
func (s *Store) AuditLog(ctx context.Context, after int64) ([]*entities.AuditEntry, error) {
	return s.auditEntries(ctx, ` WHERE id > ? ORDER BY id`, after)
}

// AuditFilter picks entries of the audit log: those of a user (the name
// the entry has, a deleted user's too), at or after a time, of an HTTP
// status (or a class of them: 400 to 499 with StatusMax), newest Limit
// of them (0: all).
type AuditFilter struct {
	User      string
	Since     time.Time
	Status    int
	StatusMax int // with Status, a range: Status to StatusMax
	Limit     int
}

// ListAudit lists the audit log's entries that f picks, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]*entities.AuditEntry, error) {
	q := ` WHERE 1=1`
	var args []any
	if f.User != "" {
		q += ` AND "user" = ?`
		args = append(args, f.User)
	}
	if !f.Since.IsZero() {
		q += ` AND time >= ?`
		args = append(args, ms2(f.Since))
	}
	if f.Status != 0 {
		hi := max(f.StatusMax, f.Status)
		q += ` AND status BETWEEN ? AND ?`
		args = append(args, f.Status, hi)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return s.auditEntries(ctx, q, args...)
}

func (s *Store) auditEntries(ctx context.Context, where string, args ...any) ([]*entities.AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, time, "user", COALESCE(token_id, 0), method, path, status, COALESCE(task_id, 0), source FROM audit_log`+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.AuditEntry{}
	for rows.Next() {
		var e entities.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.User, &e.TokenID, &e.Method, &e.Path, &e.Status, &e.TaskID, &e.Source); err != nil {
			return nil, err
		}
		e.Time = fromMs(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// HeldError says that a site (or another target) already has a task
// queued or running, so that a change asked for beside it is refused
// rather than queued behind it (the HTTP API's 409).
type HeldError struct {
	Target string
	Holder *entities.Task
}

func (e *HeldError) Error() string {
	if e.Holder.Status == entities.TaskProcessing {
		return e.Target + " is busy: task " + itoa(e.Holder.ID) + " (" + e.Holder.Type + ") is running on it"
	}
	return e.Target + " is busy: task " + itoa(e.Holder.ID) + " (" + e.Holder.Type + ") is queued on it"
}

// QueueSiteTaskIfFree records a task on site v unless a task is queued
// or running on it, checked and inserted in one transaction; then the
// error is a *HeldError and nothing is written.
func (s *Store) QueueSiteTaskIfFree(ctx context.Context, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	return s.QueueSiteTaskIfFreeFor(ctx, "", v, typ, opts)
}

// QueueSiteTaskIfFreeFor is QueueSiteTaskIfFree for a task tied to
// master (Task.Master; "": none).
func (s *Store) QueueSiteTaskIfFreeFor(ctx context.Context, master string, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	var t *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		h, err := scanTask(tx.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE target_kind = ? AND target_id = ? AND status IN ('queued', 'processing')
			ORDER BY status = 'processing' DESC, id LIMIT 1`, entities.TargetSite, v.ID))
		if err == nil {
			return &HeldError{Target: "site " + v.Domain, Holder: h}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		t, err = s.insertChildAt(ctx, tx, s.Now(), 0, master, typ, entities.TargetSite, v.ID, v.Domain, opts)
		return err
	})
	return t, err
}
