package db

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// mysqlService is the Service of MariaDB and MySQL servers.
type mysqlService struct {
	cfg   Config
	admin *sql.DB

	mu      sync.Mutex
	version string // SELECT VERSION(), once known
}

var _ Service = (*mysqlService)(nil)

func newMySQL(cfg Config) (*mysqlService, error) {
	conn, err := mysql.NewConnector(cfg.driverConfig(""))
	if err != nil {
		return nil, errDatabase(cfg, "configure the connection", err)
	}
	admin := sql.OpenDB(connectTimeout{conn, cfg.connectTimeout()})
	admin.SetMaxOpenConns(4)
	admin.SetMaxIdleConns(2)
	admin.SetConnMaxIdleTime(time.Minute)
	return &mysqlService{cfg: cfg, admin: admin}, nil
}

// driverConfig is the go-sql-driver configuration for the admin, on
// database dbname (empty: none).
func (c Config) driverConfig(dbname string) *mysql.Config {
	mc := mysql.NewConfig()
	mc.User = c.AdminUser
	mc.Passwd = c.AdminPassword
	mc.Net, mc.Addr = "tcp", c.Addr()
	if c.isSocket() {
		mc.Net = "unix"
	}
	mc.DBName = dbname
	// Timeout bounds the dial only, connectTimeout the login too; a
	// statement waits for the server at most ReadTimeout between reads.
	mc.Timeout = c.connectTimeout()
	mc.ReadTimeout, mc.WriteTimeout = c.statementTimeout(), c.statementTimeout()
	mc.DialFunc = c.Dialer
	// Placeholders are filled in by the driver, which escapes values for
	// the connection's SQL mode; statements such as CREATE USER cannot be
	// prepared on every server version.
	mc.InterpolateParams = true
	mc.Logger = &mysql.NopLogger{} // errors come back to the caller instead
	return mc
}

// connectTimeout bounds each new connection of a driver.Connector, its
// login included: a server that accepts and never answers is given up
// after d.
type connectTimeout struct {
	driver.Connector
	d time.Duration
}

func (c connectTimeout) Connect(ctx context.Context) (driver.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.d)
	defer cancel()
	return c.Connector.Connect(ctx)
}

func (s *mysqlService) Type() Type   { return s.cfg.Type }
func (s *mysqlService) Close() error { return s.admin.Close() }

// fail turns a driver error of the step what ("create database x") into a
// *provision.Error.
func (s *mysqlService) fail(ctx context.Context, what string, err error) error {
	if e := cancelled(ctx, err); e != nil {
		return e
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045, 1698: // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR: login refused
			// (which one MariaDB answers depends on the accounts it has)
			return errAuth(s.cfg, err)
		case 1044, 1142, 1227, 1410: // access denied to a database, a table; missing privilege; may not grant
			return errPrivilege(s.cfg, what, err)
		}
		return errDatabase(s.cfg, what, err)
	}
	if isNetError(err) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
		return errUnreachable(s.cfg, err)
	}
	return errDatabase(s.cfg, what, err)
}

// ping checks that the server answers on an admin connection.
func (s *mysqlService) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.connectTimeout())
	defer cancel()
	if err := s.admin.PingContext(pctx); err != nil {
		return s.fail(ctx, "log in", err)
	}
	return nil
}

func (s *mysqlService) Verify(ctx context.Context) (string, error) {
	v, err := s.serverVersion(ctx)
	if err != nil {
		return "", err
	}
	if err := s.checkPrivileges(ctx); err != nil {
		return v, err
	}
	return v, nil
}

// serverVersion logs in and reads VERSION(), once per Service.
func (s *mysqlService) serverVersion(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.version != "" {
		return s.version, nil
	}
	var v string
	if err := s.admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return "", s.fail(ctx, "log in", err)
	}
	s.version = v
	return v, nil
}

// checkPrivileges checks the global privileges of the admin account that
// site databases need. Privileges that come from roles are not listed in
// USER_PRIVILEGES; with no rows at all it cannot tell, and passes.
func (s *mysqlService) checkPrivileges(ctx context.Context) error {
	var cur string
	if err := s.admin.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&cur); err != nil {
		return s.fail(ctx, "read the admin account", err)
	}
	i := strings.LastIndexByte(cur, '@')
	if i < 0 {
		return nil
	}
	grantee := "'" + cur[:i] + "'@'" + cur[i+1:] + "'"
	rows, err := s.admin.QueryContext(ctx,
		"SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?", grantee)
	if err != nil {
		return s.fail(ctx, "read the admin's privileges", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var priv, grantable string
		if err := rows.Scan(&priv, &grantable); err != nil {
			return s.fail(ctx, "read the admin's privileges", err)
		}
		have[priv] = true
		if grantable == "YES" {
			have["GRANT OPTION"] = true
		}
	}
	if err := rows.Err(); err != nil {
		return s.fail(ctx, "read the admin's privileges", err)
	}
	if len(have) == 0 {
		return nil
	}
	var missing []string
	for _, p := range []string{"CREATE", "DROP", "CREATE USER", "GRANT OPTION"} {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return errPrivilege(s.cfg, "create databases and users (missing: "+strings.Join(missing, ", ")+")", nil)
	}
	return nil
}

func (s *mysqlService) DatabaseExists(ctx context.Context, name string) (bool, error) {
	if err := ValidDatabaseName(s.cfg.Type, name); err != nil {
		return false, err
	}
	return s.exists(ctx, "look up database "+name,
		"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name)
}

func (s *mysqlService) Size(ctx context.Context, name string) (int64, error) {
	if err := ValidDatabaseName(s.cfg.Type, name); err != nil {
		return 0, err
	}
	var n int64
	err := s.admin.QueryRowContext(ctx, "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", name).Scan(&n)
	if err != nil {
		return 0, s.fail(ctx, "measure database "+name, err)
	}
	return n, nil
}

func (s *mysqlService) UserExists(ctx context.Context, user string) (bool, error) {
	if err := ValidUserName(s.cfg.Type, user); err != nil {
		return false, err
	}
	return s.exists(ctx, "look up user "+user, "SELECT 1 FROM mysql.user WHERE User = ? LIMIT 1", user)
}

func (s *mysqlService) exists(ctx context.Context, what, query string, arg string) (bool, error) {
	var one int
	err := s.admin.QueryRowContext(ctx, query, arg).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, s.fail(ctx, what, err)
	}
	return true, nil
}

// account is 'user'@'host', both quoted as identifiers.
func account(user, host string) string { return quoteMySQL(user) + "@" + quoteMySQL(host) }

// grantPattern is the database name as a GRANT matches it: _ and % are
// wildcards there, so a literal underscore is escaped; unescaped, a grant
// on site_a would also cover siteXa.
func grantPattern(name string) string {
	return quoteMySQL(strings.NewReplacer(`_`, `\_`, `%`, `\%`).Replace(name))
}

// nativeHash is the mysql_native_password hash of pw: "*" and the hex of
// SHA1(SHA1(pw)).
func nativeHash(pw string) string {
	h1 := sha1.Sum([]byte(pw))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

func (s *mysqlService) CreateDatabase(ctx context.Context, name, user, password, grantHost string) error {
	if err := checkCreate(s.cfg, name, user, password, grantHost); err != nil {
		return err
	}
	version, err := s.serverVersion(ctx)
	if err != nil {
		return err
	}
	if used, err := s.DatabaseExists(ctx, name); err != nil {
		return err
	} else if used {
		return errExists(s.cfg, "database", name)
	}
	if used, err := s.UserExists(ctx, user); err != nil {
		return err
	} else if used {
		return errExists(s.cfg, "database user", user)
	}

	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+quoteMySQL(name)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1007 { // ER_DB_CREATE_EXISTS: created meanwhile
			return errExists(s.cfg, "database", name)
		}
		return s.fail(ctx, "create database "+name, err)
	}
	undo := func(dropUser bool) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shortTimeout)
		defer cancel()
		if dropUser {
			_, _ = s.admin.ExecContext(uctx, "DROP USER IF EXISTS "+account(user, grantHost))
		}
		_, _ = s.admin.ExecContext(uctx, "DROP DATABASE IF EXISTS "+quoteMySQL(name))
	}
	ident, args := identifiedBy(version, password)
	if _, err := s.admin.ExecContext(ctx, "CREATE USER "+account(user, grantHost)+ident, args...); err != nil {
		undo(false)
		return s.fail(ctx, "create user "+user, err)
	}
	if _, err := s.admin.ExecContext(ctx, "GRANT ALL PRIVILEGES ON "+grantPattern(name)+".* TO "+account(user, grantHost)); err != nil {
		undo(true)
		return s.fail(ctx, "grant user "+user+" the use of database "+name, err)
	}
	return nil
}

// identifiedBy is the IDENTIFIED BY clause that sets password, and its
// arguments. MariaDB takes the password's hash, which keeps the password
// itself out of the server's query logs; MySQL 8 hashes differently and
// masks passwords in its logs itself.
func identifiedBy(version, password string) (string, []any) {
	if strings.Contains(version, "MariaDB") {
		return " IDENTIFIED BY PASSWORD '" + nativeHash(password) + "'", nil
	}
	return " IDENTIFIED BY ?", []any{password}
}

func (s *mysqlService) CheckLogin(ctx context.Context, name, user, password string, dial DialFunc) error {
	c, err := loginConfig(s.cfg, name, user, password, dial)
	if err != nil {
		return err
	}
	conn, err := mysql.NewConnector(c.driverConfig(name))
	if err != nil {
		return errDatabase(s.cfg, "configure the connection", err)
	}
	site := sql.OpenDB(connectTimeout{conn, s.cfg.connectTimeout()})
	defer site.Close()
	var one int
	err = site.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	var me *mysql.MySQLError
	my := errors.As(err, &me)
	return siteLoginError(ctx, s.cfg, name, user, err,
		my && (me.Number == 1045 || me.Number == 1698 || me.Number == 1044), // login refused; no right to the database
		my && me.Number == 1049, // ER_BAD_DB_ERROR
		func() error { return s.fail(ctx, "log in as "+user, err) })
}

func (s *mysqlService) RepairUser(ctx context.Context, name, user, password, grantHost string) error {
	if err := checkCreate(s.cfg, name, user, password, grantHost); err != nil {
		return err
	}
	version, err := s.serverVersion(ctx)
	if err != nil {
		return err
	}
	if found, err := s.DatabaseExists(ctx, name); err != nil {
		return err
	} else if !found {
		return errNoDatabase(s.cfg, name)
	}
	ident, args := identifiedBy(version, password)
	for _, q := range []string{"CREATE USER IF NOT EXISTS " + account(user, grantHost) + ident, "ALTER USER " + account(user, grantHost) + ident} {
		if _, err := s.admin.ExecContext(ctx, q, args...); err != nil {
			return s.fail(ctx, "make user "+user+" again", err)
		}
	}
	if _, err := s.admin.ExecContext(ctx, "GRANT ALL PRIVILEGES ON "+grantPattern(name)+".* TO "+account(user, grantHost)); err != nil {
		return s.fail(ctx, "grant user "+user+" the use of database "+name, err)
	}
	return nil
}

func (s *mysqlService) DropDatabase(ctx context.Context, name, user, grantHost string) error {
	if err := checkSiteAccount(s.cfg, name, user, grantHost); err != nil {
		return err
	}
	if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteMySQL(name)); err != nil {
		return s.fail(ctx, "drop database "+name, err)
	}
	if user == "" {
		return nil
	}
	if _, err := s.admin.ExecContext(ctx, "DROP USER IF EXISTS "+account(user, grantHost)); err != nil {
		return s.fail(ctx, "drop user "+user, err)
	}
	return nil
}

// optionFile is a MySQL option file with the admin's credentials, read by
// the client tools through --defaults-extra-file.
func (s *mysqlService) optionFile() ([]byte, error) {
	user, err := optionValue(s.cfg.AdminUser)
	if err != nil {
		return nil, errBadCredential(s.cfg, err)
	}
	pw, err := optionValue(s.cfg.AdminPassword)
	if err != nil {
		return nil, errBadCredential(s.cfg, err)
	}
	var b strings.Builder
	// The mysql client gives up a connection that does not answer;
	// mariadb-dump has no such option (its server is checked first, see
	// withTool).
	fmt.Fprintf(&b, "[mysql]\nconnect-timeout=%d\n[client]\nuser=%s\npassword=%s\n", s.cfg.connectSeconds(), user, pw)
	if s.cfg.isSocket() {
		sock, err := optionValue(s.cfg.Host)
		if err != nil {
			return nil, errBadCredential(s.cfg, err)
		}
		fmt.Fprintf(&b, "socket=%s\n", sock)
	} else {
		host, err := optionValue(s.cfg.host())
		if err != nil {
			return nil, errBadCredential(s.cfg, err)
		}
		fmt.Fprintf(&b, "host=%s\nport=%d\nprotocol=TCP\n", host, s.cfg.port())
	}
	return []byte(b.String()), nil
}

// programs lists the client programs to try, the server type's own first.
func (s *mysqlService) programs(mariadb, mysql string) []string {
	if s.cfg.Type == MySQL {
		return []string{mysql, mariadb}
	}
	return []string{mariadb, mysql}
}

// withTool finds a client program on ex and calls fn with it and a work
// directory that holds the admin's option file.
func (s *mysqlService) withTool(ctx context.Context, ex exec.Executor, name, what string, progs []string, fn func(prog string, w *workDir, defaults string) error) error {
	if err := ValidDatabaseName(s.cfg.Type, name); err != nil {
		return err
	}
	prog, err := findProgram(ctx, ex, progs...)
	if err != nil {
		return toolError(ctx, s.cfg, what, err)
	}
	// A server that does not answer is found out here, within the
	// connect timeout, not by a tool that would wait for it for hours.
	if err := s.ping(ctx); err != nil {
		return err
	}
	opts, err := s.optionFile()
	if err != nil {
		return err
	}
	w, err := newWorkDir(ctx, ex, "my.cnf", opts)
	if err != nil {
		return toolError(ctx, s.cfg, what, err)
	}
	defer w.remove(ctx)
	// --defaults-extra-file must come first on the command line.
	if err := fn(prog, w, "--defaults-extra-file="+w.path("my.cnf")); err != nil {
		return toolError(ctx, s.cfg, what, err)
	}
	return nil
}

func (s *mysqlService) Dump(ctx context.Context, ex exec.Executor, name string, out io.Writer) error {
	return s.withTool(ctx, ex, name, "dump of database "+name, s.programs("mariadb-dump", "mysqldump"),
		func(prog string, w *workDir, defaults string) error {
			fifo := w.path("dump.sql")
			return w.streamOut(ctx, fifo, exec.Command{
				Name: prog,
				Args: []string{defaults,
					"--single-transaction", "--quick", "--triggers", "--hex-blob", "--no-tablespaces",
					"--default-character-set=utf8mb4", "--result-file=" + fifo, name},
				Timeout: toolTimeout,
			}, out)
		})
}

func (s *mysqlService) Load(ctx context.Context, ex exec.Executor, name string, in io.Reader) error {
	return s.withTool(ctx, ex, name, "load into database "+name, s.programs("mariadb", "mysql"),
		func(prog string, w *workDir, defaults string) error {
			_, err := ex.Run(ctx, exec.Command{
				Name:    prog,
				Args:    []string{defaults, "--batch", "--default-character-set=utf8mb4", name},
				Stdin:   in,
				Timeout: toolTimeout,
			})
			return err
		})
}

func (s *mysqlService) Open(ctx context.Context, dbname string) (Conn, error) {
	if err := ValidDatabaseName(s.cfg.Type, dbname); err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(s.cfg.driverConfig(dbname))
	if err != nil {
		return nil, errDatabase(s.cfg, "configure the connection", err)
	}
	db := sql.OpenDB(connectTimeout{conn, s.cfg.connectTimeout()})
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1049 { // ER_BAD_DB_ERROR
			return nil, errNoDatabase(s.cfg, dbname)
		}
		return nil, s.fail(ctx, "connect to database "+dbname, err)
	}
	return &sqlConn{db: db}, nil
}

// sqlConn is a Conn over database/sql.
type sqlConn struct{ db *sql.DB }

func (c *sqlConn) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return c.db.QueryContext(ctx, query, args...)
}

func (c *sqlConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c *sqlConn) Close() error { return c.db.Close() }
