// Package db manages the databases of hosted sites on a database server:
// MariaDB or MySQL (through github.com/go-sql-driver/mysql) and PostgreSQL
// (through github.com/jackc/pgx/v5).
//
// A Service talks to one server with its admin account. It creates a
// database together with a user that may use that database only, drops
// both, and dumps and loads a database with the server's own client tools
// (mariadb-dump/mysqldump and mariadb/mysql, pg_dump and psql), which run on
// the database server through its exec.Executor.
//
// Rules every method keeps:
//   - every identifier (database, user, grant host) is validated (see
//     ValidDatabaseName, ValidUserName, ValidGrantHost) and then always
//     quoted, backticks on MariaDB/MySQL and double quotes on PostgreSQL;
//   - passwords never appear in a command line, a log line or an error
//     message: the client tools read the admin's credentials from a 0600 file
//     in a private temporary directory on the database server, and site
//     passwords reach the server hashed where the server allows it
//     (mysql_native_password hashes on MariaDB, SCRAM-SHA-256 verifiers on
//     PostgreSQL), so that they do not show in its query logs either;
//   - failures are *provision.Error values with a code (provision.ErrAuth,
//     ErrUnreachable, ErrDatabase, ErrInvalidContext, ErrMissingBinary) and a
//     hint that says what the administrator can do.
package db

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Type is the kind of database server.
type Type string

// The database server types.
const (
	MariaDB    Type = entities.TypeMariaDB
	MySQL      Type = entities.TypeMySQL
	PostgreSQL Type = entities.TypePostgreSQL
)

// ParseType reads a type name as found in a context or a flag; "postgres"
// and "pgsql" are accepted for PostgreSQL.
func ParseType(s string) (Type, error) {
	switch s {
	case entities.TypeMariaDB:
		return MariaDB, nil
	case entities.TypeMySQL:
		return MySQL, nil
	case entities.TypePostgreSQL, "postgres", "pgsql":
		return PostgreSQL, nil
	}
	return "", provision.Errorf(provision.ErrInvalidContext,
		"use one of: mariadb, mysql, postgresql",
		"unknown database server type %q", s).With(entities.Do("server.edit", "SERVER", "db=TYPE"))
}

// DefaultPort is the port a server of type t listens on by default.
func (t Type) DefaultPort() int {
	if t == PostgreSQL {
		return 5432
	}
	return 3306
}

// mysqlFamily reports whether t speaks the MySQL protocol.
func (t Type) mysqlFamily() bool { return t == MariaDB || t == MySQL }

// DialFunc opens a network connection; a Config's Dialer can route the
// admin connection through an SSH tunnel.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DefaultConnectTimeout bounds connecting to the server when the Config
// sets no ConnectTimeout.
const DefaultConnectTimeout = 10 * time.Second

// DefaultStatementTimeout bounds one admin statement (and, on MariaDB and
// MySQL, each read and write of its connection) when the Config sets no
// StatementTimeout.
const DefaultStatementTimeout = 5 * time.Minute

// Config says how to reach a database server as its admin.
type Config struct {
	// Name is the server's name in aegir, the target of the actions hints
	// propose (server.edit NAME); empty: SERVER.
	Name string
	Type Type
	// Host and Port are where the server listens. A Host that starts with
	// "/" is a unix socket: the socket file for MariaDB/MySQL, the socket
	// directory for PostgreSQL. Empty Host: 127.0.0.1; zero Port: the
	// type's default.
	//
	// The client tools of Dump and Load run on the database server itself
	// and connect to the same Host and Port from there; when Dialer tunnels
	// through SSH, Host is therefore the address as seen from the database
	// server (usually 127.0.0.1).
	Host string
	Port int
	// AdminUser needs to create and drop databases and users and grant
	// privileges (MariaDB: ALL ... WITH GRANT OPTION; PostgreSQL: a
	// superuser, or CREATEDB and CREATEROLE).
	AdminUser string
	// AdminPassword is secret: String hides it, and it is never logged.
	AdminPassword string
	// Dialer, if set, opens the admin connections instead of a direct
	// TCP (or unix socket) connection.
	Dialer DialFunc
	// ConnectTimeout bounds each connection attempt, the login
	// included, of the admin connections and of the client tools; zero:
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// StatementTimeout bounds each admin statement; zero:
	// DefaultStatementTimeout.
	StatementTimeout time.Duration
}

// String describes the config for messages, without the password.
func (c Config) String() string {
	pw := ""
	if c.AdminPassword != "" {
		pw = " password=(hidden)"
	}
	return fmt.Sprintf("%s %s user=%s%s", c.Type, c.Addr(), c.AdminUser, pw)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return "db.Config{" + c.String() + "}" }

// Addr is host:port, or the socket path.
func (c Config) Addr() string {
	if c.isSocket() {
		return c.Host
	}
	return net.JoinHostPort(c.host(), strconv.Itoa(c.port()))
}

// serverName is Name for hints, or a placeholder.
func (c Config) serverName() string {
	if c.Name == "" {
		return "SERVER"
	}
	return c.Name
}

func (c Config) host() string {
	if c.Host == "" {
		return "127.0.0.1"
	}
	return c.Host
}

func (c Config) port() int {
	if c.Port == 0 {
		return c.Type.DefaultPort()
	}
	return c.Port
}

func (c Config) isSocket() bool { return len(c.Host) > 0 && c.Host[0] == '/' }

func (c Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// connectSeconds is the connect timeout in whole seconds, at least 1, for
// the client tools.
func (c Config) connectSeconds() int { return max(1, int(c.connectTimeout().Seconds())) }

func (c Config) statementTimeout() time.Duration {
	if c.StatementTimeout > 0 {
		return c.StatementTimeout
	}
	return DefaultStatementTimeout
}

// Service manages the databases of one server. Its methods may be called
// from several goroutines at once.
type Service interface {
	// Type is the server's type.
	Type() Type

	// Verify logs in as the admin and checks that the admin may create
	// databases and users. It returns the server's version, e.g.
	// "10.11.6-MariaDB-0+deb12u1" or "15.5 (Debian 15.5-0+deb12u1)".
	Verify(ctx context.Context) (version string, err error)

	// CreateDatabase creates database name and a user that may use it and
	// nothing else, with the given password.
	//
	// MariaDB/MySQL: the account is 'user'@'grantHost', so that it logs in
	// from grantHost only, with ALL PRIVILEGES on that one database.
	// PostgreSQL: user is a LOGIN role that owns the database, and CONNECT
	// on the database is revoked from PUBLIC, so other roles cannot use
	// it. PostgreSQL keeps the hosts a role may log in from in pg_hba.conf,
	// not in SQL: grantHost is validated but has no effect there; limit the
	// role's hosts in pg_hba.conf.
	//
	// A database or user that already exists is an error (nothing is
	// changed then); if a later step fails, what was created is removed.
	CreateDatabase(ctx context.Context, name, user, password, grantHost string) error

	// DatabaseExists reports whether database name exists.
	DatabaseExists(ctx context.Context, name string) (bool, error)
	// UserExists reports whether a user of that name exists, from any host.
	UserExists(ctx context.Context, user string) (bool, error)
	// Size is the space database name takes on the server, in bytes:
	// its tables' data and indexes (MariaDB/MySQL, from
	// information_schema), or pg_database_size (PostgreSQL).
	Size(ctx context.Context, name string) (int64, error)

	// DropDatabase drops database name and the user (its account from
	// grantHost on MariaDB/MySQL). Either may be absent already; an empty
	// user drops the database only. Sessions still open on a PostgreSQL
	// database are ended first.
	DropDatabase(ctx context.Context, name, user, grantHost string) error

	// Dump writes an SQL dump of database name to w. The dump tool runs on
	// the database server through ex; its output streams to w without a
	// copy on disk. The dump holds no CREATE DATABASE and (PostgreSQL) no
	// owners or grants, so it loads into a database of another name.
	Dump(ctx context.Context, ex exec.Executor, name string, w io.Writer) error
	// Load runs the SQL read from r in database name, which must exist
	// (CreateDatabase). On PostgreSQL the SQL runs as the database's
	// owner, in one transaction. After an error the database may hold part
	// of the load: drop it or load again.
	Load(ctx context.Context, ex exec.Executor, name string, r io.Reader) error

	// CheckLogin logs in as a site's own user to its database name and
	// runs one query, through dial (nil: the way the admin connects), so
	// that a check made from the site's web server takes the path the
	// site's connections take. A refused login is a *provision.Error with
	// code provision.ErrAuth; a database that is gone, ErrDatabase.
	CheckLogin(ctx context.Context, name, user, password string, dial DialFunc) error

	// RepairUser makes a site's user again as CreateDatabase made it, for
	// its existing database name: the account (from grantHost on
	// MariaDB/MySQL), its password and its rights on that database. It
	// changes nothing else; the database must exist (errNoDatabase).
	RepairUser(ctx context.Context, name, user, password, grantHost string) error

	// Open connects to database dbname as the admin, for readers of a
	// site's tables (statistics, packages). Close the Conn when done.
	Open(ctx context.Context, dbname string) (Conn, error)

	// Close releases the admin connections.
	Close() error
}

// Conn is a connection to one database. It is not safe for concurrent use.
type Conn interface {
	// Query runs a query that returns rows. Placeholders are written ? on
	// every type (on PostgreSQL they become $1, $2, ...).
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Close() error
}

// Rows iterates over the result of a Query, as database/sql's Rows.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// New returns the Service for cfg. It does not connect yet: Verify does.
func New(cfg Config) (Service, error) {
	if cfg.AdminUser == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext,
			"set the server's database admin user",
			"no database admin user given for the %s server at %s", cfg.Type, cfg.Addr()).
			With(entities.Do("server.edit", cfg.serverName(), "db-admin-user=USER"))
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, provision.Errorf(provision.ErrInvalidContext,
			"set a port between 1 and 65535",
			"invalid database port %d", cfg.Port).With(entities.Do("server.edit", cfg.serverName(), "db-port=N"))
	}
	switch {
	case cfg.Type.mysqlFamily():
		return newMySQL(cfg)
	case cfg.Type == PostgreSQL:
		return newPostgres(cfg)
	}
	_, err := ParseType(string(cfg.Type))
	return nil, err
}

// checkSiteAccount validates the names of a site's database and account.
func checkSiteAccount(c Config, name, user, grantHost string) error {
	if err := ValidDatabaseName(c.Type, name); err != nil {
		return err
	}
	if user == "" {
		return nil
	}
	if err := ValidUserName(c.Type, user); err != nil {
		return err
	}
	if strings.EqualFold(user, c.AdminUser) {
		return errOwnUser(c, user)
	}
	if c.Type.mysqlFamily() || grantHost != "" {
		return ValidGrantHost(grantHost)
	}
	return nil
}

// loginConfig is c for a login as a site's user to its database name,
// through dial (nil: c's own way), once the names are valid.
func loginConfig(c Config, name, user, password string, dial DialFunc) (Config, error) {
	if err := ValidDatabaseName(c.Type, name); err != nil {
		return c, err
	}
	if err := ValidUserName(c.Type, user); err != nil {
		return c, err
	}
	c.AdminUser, c.AdminPassword = user, password
	if dial != nil {
		c.Dialer = dial
	}
	return c, nil
}

// checkCreate validates the arguments of CreateDatabase.
func checkCreate(c Config, name, user, password, grantHost string) error {
	if err := ValidUserName(c.Type, user); err != nil {
		return err
	}
	if err := checkSiteAccount(c, name, user, grantHost); err != nil {
		return err
	}
	if password == "" {
		return provision.Errorf(provision.ErrInvalidContext, "give the site's database user a password (db.GeneratePassword makes one)",
			"empty password for database user %q", user)
	}
	return nil
}
