package entities

import "time"

// User roles: an admin sees and changes everything; a client's user only
// its client's sites and what belongs to them.
const (
	RoleAdmin  = "admin"
	RoleClient = "client"
)

// Roles are the roles a user may have.
var Roles = []string{RoleAdmin, RoleClient}

// Token scopes: read only reads; write also starts tasks.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Scopes are the scopes a token may have.
var Scopes = []string{ScopeRead, ScopeWrite}

// User is someone who uses the HTTP API (aegir serve) with a token.
type User struct {
	ID      int64     `json:"-" yaml:"-"`
	Name    string    `json:"name" yaml:"name"`
	Client  string    `json:"client" yaml:"client"` // empty: an admin of no client
	Role    string    `json:"role" yaml:"role"`
	Tokens  int       `json:"tokens" yaml:"tokens"` // live ones: neither revoked nor expired
	Created time.Time `json:"created" yaml:"created"`
}

// Admin says whether u may see and change every record.
func (u *User) Admin() bool { return u.Role == RoleAdmin }

// Token is a user's API token. Its secret is kept only as a hash and
// shown once, when it is made.
type Token struct {
	ID       int64      `json:"id" yaml:"id"`
	User     string     `json:"user" yaml:"user"`
	Scope    string     `json:"scope" yaml:"scope"`
	Created  time.Time  `json:"created" yaml:"created"`
	Expires  *time.Time `json:"expires" yaml:"expires"` // nil: never
	LastUsed *time.Time `json:"last_used" yaml:"last_used"`
	Revoked  *time.Time `json:"revoked" yaml:"revoked"`
	UserID   int64      `json:"-" yaml:"-"`
}

// Live says whether t may be used at now: not revoked, not expired.
func (t *Token) Live(now time.Time) bool {
	return t.Revoked == nil && (t.Expires == nil || now.Before(*t.Expires))
}

// AuditEntry is one request the HTTP API answered.
type AuditEntry struct {
	ID      int64     `json:"id" yaml:"id"`
	Time    time.Time `json:"time" yaml:"time"`
	User    string    `json:"user" yaml:"user"`
	TokenID int64     `json:"token_id" yaml:"token_id"` // 0: no valid token
	Method  string    `json:"method" yaml:"method"`
	Path    string    `json:"path" yaml:"path"`
	Status  int       `json:"status" yaml:"status"`
	TaskID  int64     `json:"task_id" yaml:"task_id"` // 0: no task
	// Source is the address the request came from (its connection's).
	Source string `json:"source" yaml:"source"`
}

// TableColumns: see Client.TableColumns.
func (AuditEntry) TableColumns() []string {
	return []string{"id", "time", "user", "token_id", "source", "method", "path", "status", "task_id"}
}

// TableColumns: see Client.TableColumns.
func (User) TableColumns() []string { return []string{"name", "role", "client", "tokens", "created"} }

// TableColumns: see Client.TableColumns.
func (Token) TableColumns() []string {
	return []string{"id", "user", "scope", "created", "expires", "last_used", "revoked"}
}
