package db

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// pgService is the Service of PostgreSQL servers. Each operation opens its
// own admin connection to the maintenance database "postgres" (or
// "template1" where there is none) and closes it after.
type pgService struct {
	cfg Config

	mu   sync.Mutex
	info *pgInfo
}

var _ Service = (*pgService)(nil)

// pgInfo is what the admin login tells about the server and the admin.
type pgInfo struct {
	version    string
	versionNum int
	super      bool
	createDB   bool
	createRole bool
}

func newPostgres(cfg Config) (*pgService, error) { return &pgService{cfg: cfg}, nil }

func (s *pgService) Type() Type   { return PostgreSQL }
func (s *pgService) Close() error { return nil }

// connValue quotes a value of a libpq keyword/value connection string.
func connValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// pgxConfig is the pgx configuration of the admin on database dbname.
func (c Config) pgxConfig(dbname string) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s connect_timeout=%d statement_timeout=%d",
		connValue(c.host()), c.port(), connValue(c.AdminUser), connValue(dbname), c.connectSeconds(), c.statementTimeout().Milliseconds()))
	if err != nil {
		return nil, err
	}
	cc.Password = c.AdminPassword
	cc.ConnectTimeout = c.connectTimeout()
	if c.Dialer != nil {
		cc.DialFunc = pgconn.DialFunc(c.Dialer)
	}
	return cc, nil
}

// fail turns a pgx error of the step what into a *provision.Error.
func (s *pgService) fail(ctx context.Context, what string, err error) error {
	if e := cancelled(ctx, err); e != nil {
		return e
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01": // invalid_password
			return errAuth(s.cfg, err)
		case "28000": // invalid_authorization_specification: no pg_hba.conf entry, unknown role
			e := errAuth(s.cfg, err).(*provision.Error)
			e.Hint = "check the admin user name, and that pg_hba.conf on the database server lets it in from aegir's address; " + e.Hint
			return e
		case "42501": // insufficient_privilege
			return errPrivilege(s.cfg, what, err)
		}
		return errDatabase(s.cfg, what, err)
	}
	var ce *pgconn.ConnectError
	if isNetError(err) || errors.As(err, &ce) {
		return errUnreachable(s.cfg, err)
	}
	return errDatabase(s.cfg, what, err)
}

// connect opens a connection as the admin to dbname.
func (s *pgService) connect(ctx context.Context, dbname string) (*pgx.Conn, error) {
	cc, err := s.cfg.pgxConfig(dbname)
	if err != nil {
		return nil, errDatabase(s.cfg, "configure the connection", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// admin opens an admin connection to the maintenance database and reads
// the server's version and the admin's rights on first use.
func (s *pgService) admin(ctx context.Context) (*pgx.Conn, *pgInfo, error) {
	conn, err := s.connect(ctx, "postgres")
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "3D000" { // invalid_catalog_name: no "postgres" database
		conn, err = s.connect(ctx, "template1")
	}
	if err != nil {
		return nil, nil, s.fail(ctx, "log in", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info == nil {
		var in pgInfo
		err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int,
			rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user`).
			Scan(&in.version, &in.versionNum, &in.super, &in.createDB, &in.createRole)
		if err != nil {
			_ = conn.Close(ctx)
			return nil, nil, s.fail(ctx, "read the server version", err)
		}
		s.info = &in
	}
	return conn, s.info, nil
}

// withAdmin runs fn on an admin connection.
func (s *pgService) withAdmin(ctx context.Context, fn func(conn *pgx.Conn, in *pgInfo) error) error {
	conn, in, err := s.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn, in)
}

func (s *pgService) Verify(ctx context.Context) (string, error) {
	var in *pgInfo
	err := s.withAdmin(ctx, func(_ *pgx.Conn, i *pgInfo) error { in = i; return nil })
	if err != nil {
		return "", err
	}
	if !in.super && !(in.createDB && in.createRole) {
		return in.version, errPrivilege(s.cfg, "create databases and roles (it needs CREATEDB and CREATEROLE)", nil)
	}
	return in.version, nil
}

func (s *pgService) exists(ctx context.Context, what, query, arg string) (bool, error) {
	var found bool
	err := s.withAdmin(ctx, func(conn *pgx.Conn, _ *pgInfo) error {
		var err error
		found, err = rowExists(ctx, conn, query, arg)
		return err
	})
	if err != nil {
		return false, s.failOnce(ctx, what, err)
	}
	return found, nil
}

// failOnce is fail for errors that are not a *provision.Error yet.
func (s *pgService) failOnce(ctx context.Context, what string, err error) error {
	var pe *provision.Error
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return s.fail(ctx, what, err)
}

func rowExists(ctx context.Context, conn *pgx.Conn, query, arg string) (bool, error) {
	var one int
	err := conn.QueryRow(ctx, query, arg).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

const (
	pgDatabaseExists = "SELECT 1 FROM pg_database WHERE datname = $1"
	pgRoleExists     = "SELECT 1 FROM pg_roles WHERE rolname = $1"
)

func (s *pgService) DatabaseExists(ctx context.Context, name string) (bool, error) {
	if err := ValidDatabaseName(PostgreSQL, name); err != nil {
		return false, err
	}
	return s.exists(ctx, "look up database "+name, pgDatabaseExists, name)
}

func (s *pgService) Size(ctx context.Context, name string) (int64, error) {
	if err := ValidDatabaseName(PostgreSQL, name); err != nil {
		return 0, err
	}
	var n int64
	err := s.withAdmin(ctx, func(conn *pgx.Conn, _ *pgInfo) error {
		return conn.QueryRow(ctx, "SELECT pg_database_size($1)", name).Scan(&n)
	})
	if err != nil {
		return 0, s.failOnce(ctx, "measure database "+name, err)
	}
	return n, nil
}

func (s *pgService) UserExists(ctx context.Context, user string) (bool, error) {
	if err := ValidUserName(PostgreSQL, user); err != nil {
		return false, err
	}
	return s.exists(ctx, "look up role "+user, pgRoleExists, user)
}

// quoteLiteral quotes a string constant for PostgreSQL (standard
// conforming strings; an E'...' string when there is a backslash).
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(s, `\`, `\\`) + "'"
	}
	return "'" + s + "'"
}

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for
// pw, as psql's \password does, so that the password itself never reaches
// the server. It is only used for printable ASCII passwords, which
// SASLprep leaves as they are.
func scramVerifier(pw string) (string, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, pw, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(stored[:]), b64(mac("Server Key"))), nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// passwordLiteral is the PASSWORD clause's value for pw.
func passwordLiteral(pw string, in *pgInfo) (string, error) {
	if in.versionNum >= 100000 && printableASCII(pw) {
		if v, err := scramVerifier(pw); err == nil {
			return quoteLiteral(v), nil
		}
	}
	if strings.ContainsRune(pw, 0) {
		return "", provision.Errorf(provision.ErrInvalidContext, "use a password without NUL characters", "invalid database password")
	}
	return quoteLiteral(pw), nil
}

func (s *pgService) CreateDatabase(ctx context.Context, name, user, password, grantHost string) error {
	if err := checkCreate(s.cfg, name, user, password, grantHost); err != nil {
		return err
	}
	return s.failOnce(ctx, "create database "+name, s.withAdmin(ctx, func(conn *pgx.Conn, in *pgInfo) error {
		if found, err := rowExists(ctx, conn, pgDatabaseExists, name); err != nil {
			return err
		} else if found {
			return errExists(s.cfg, "database", name)
		}
		if found, err := rowExists(ctx, conn, pgRoleExists, user); err != nil {
			return err
		} else if found {
			return errExists(s.cfg, "database user", user)
		}
		pw, err := passwordLiteral(password, in)
		if err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CREATE ROLE "+quotePostgres(user)+" LOGIN PASSWORD "+pw); err != nil {
			return s.fail(ctx, "create role "+user, err)
		}
		steps := []string{
			"CREATE DATABASE " + quotePostgres(name) + " OWNER " + quotePostgres(user) + " ENCODING 'UTF8' TEMPLATE template0",
			"REVOKE ALL ON DATABASE " + quotePostgres(name) + " FROM PUBLIC",
		}
		if !in.super {
			// A non-superuser admin may make a database owned by a role,
			// and later dump, load and drop it, only as a member of it.
			steps = append([]string{"GRANT " + quotePostgres(user) + " TO CURRENT_USER"}, steps...)
		}
		for _, q := range steps {
			if _, err := conn.Exec(ctx, q); err != nil {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shortTimeout)
				_, _ = conn.Exec(uctx, "DROP DATABASE IF EXISTS "+quotePostgres(name))
				_, _ = conn.Exec(uctx, "DROP ROLE IF EXISTS "+quotePostgres(user))
				cancel()
				return s.fail(ctx, "create database "+name, err)
			}
		}
		return nil
	}))
}

func (s *pgService) CheckLogin(ctx context.Context, name, user, password string, dial DialFunc) error {
	c, err := loginConfig(s.cfg, name, user, password, dial)
	if err != nil {
		return err
	}
	cc, err := c.pgxConfig(name)
	if err != nil {
		return errDatabase(s.cfg, "configure the connection", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err == nil {
		defer conn.Close(context.WithoutCancel(ctx))
		var one int
		err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	var pe *pgconn.PgError
	pg := errors.As(err, &pe)
	return siteLoginError(ctx, s.cfg, name, user, err,
		pg && (pe.Code == "28P01" || pe.Code == "28000" || pe.Code == "42501"), // bad password; no such role or pg_hba.conf entry; no CONNECT right
		pg && pe.Code == "3D000", // invalid_catalog_name
		func() error { return s.fail(ctx, "log in as "+user, err) })
}

func (s *pgService) RepairUser(ctx context.Context, name, user, password, grantHost string) error {
	if err := checkCreate(s.cfg, name, user, password, grantHost); err != nil {
		return err
	}
	return s.failOnce(ctx, "make user "+user+" again", s.withAdmin(ctx, func(conn *pgx.Conn, in *pgInfo) error {
		if found, err := rowExists(ctx, conn, pgDatabaseExists, name); err != nil {
			return err
		} else if !found {
			return errNoDatabase(s.cfg, name)
		}
		found, err := rowExists(ctx, conn, pgRoleExists, user)
		if err != nil {
			return err
		}
		pw, err := passwordLiteral(password, in)
		if err != nil {
			return err
		}
		steps := []string{"ALTER ROLE " + quotePostgres(user) + " LOGIN PASSWORD " + pw}
		if !found {
			steps = []string{"CREATE ROLE " + quotePostgres(user) + " LOGIN PASSWORD " + pw}
			if !in.super {
				steps = append(steps, "GRANT "+quotePostgres(user)+" TO CURRENT_USER")
			}
		}
		steps = append(steps, "ALTER DATABASE "+quotePostgres(name)+" OWNER TO "+quotePostgres(user),
			"REVOKE ALL ON DATABASE "+quotePostgres(name)+" FROM PUBLIC")
		for _, q := range steps {
			if _, err := conn.Exec(ctx, q); err != nil {
				return s.fail(ctx, "make user "+user+" of database "+name+" again", err)
			}
		}
		return nil
	}))
}

func (s *pgService) DropDatabase(ctx context.Context, name, user, grantHost string) error {
	if err := checkSiteAccount(s.cfg, name, user, grantHost); err != nil {
		return err
	}
	return s.failOnce(ctx, "drop database "+name, s.withAdmin(ctx, func(conn *pgx.Conn, in *pgInfo) error {
		drop := "DROP DATABASE IF EXISTS " + quotePostgres(name)
		if in.versionNum >= 130000 {
			drop += " WITH (FORCE)" // ends the sessions on it
		} else if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
			return s.fail(ctx, "end the sessions on database "+name, err)
		}
		if _, err := conn.Exec(ctx, drop); err != nil {
			return s.fail(ctx, "drop database "+name, err)
		}
		if user == "" {
			return nil
		}
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+quotePostgres(user)); err != nil {
			return s.fail(ctx, "drop role "+user, err)
		}
		return nil
	}))
}

// toolArgs are the connection options of pg_dump and psql; the password
// comes from the pgpass file named by PGPASSFILE.
func (s *pgService) toolArgs(name string) []string {
	return []string{"--host=" + s.cfg.host(), "--port=" + strconv.Itoa(s.cfg.port()),
		"--username=" + s.cfg.AdminUser, "--no-password", "--dbname=" + name}
}

// withTool finds prog on ex and calls fn with a work directory that holds
// the admin's pgpass file and the environment that points to it.
func (s *pgService) withTool(ctx context.Context, ex exec.Executor, name, what, prog string, fn func(prog string, w *workDir, env []string) error) error {
	if err := ValidDatabaseName(PostgreSQL, name); err != nil {
		return err
	}
	prog, err := findProgram(ctx, ex, prog)
	if err != nil {
		return toolError(ctx, s.cfg, what, err)
	}
	user, err := pgpassField(s.cfg.AdminUser)
	if err != nil {
		return errBadCredential(s.cfg, err)
	}
	pw, err := pgpassField(s.cfg.AdminPassword)
	if err != nil {
		return errBadCredential(s.cfg, err)
	}
	w, err := newWorkDir(ctx, ex, "pgpass", []byte("*:*:*:"+user+":"+pw+"\n"))
	if err != nil {
		return toolError(ctx, s.cfg, what, err)
	}
	defer w.remove(ctx)
	env := []string{"PGPASSFILE=" + w.path("pgpass"),
		"PGCONNECT_TIMEOUT=" + strconv.Itoa(s.cfg.connectSeconds())}
	if err := fn(prog, w, env); err != nil {
		return toolError(ctx, s.cfg, what, err)
	}
	return nil
}

func (s *pgService) Dump(ctx context.Context, ex exec.Executor, name string, out io.Writer) error {
	// The server is checked first, as for Load: a server that does not
	// answer is unreachable, not a failed dump.
	if err := s.withAdmin(ctx, func(*pgx.Conn, *pgInfo) error { return nil }); err != nil {
		return err
	}
	return s.withTool(ctx, ex, name, "dump of database "+name, "pg_dump", func(prog string, w *workDir, env []string) error {
		fifo := w.path("dump.sql")
		args := append(s.toolArgs(name), "--no-owner", "--no-privileges", "--file="+fifo)
		return w.streamOut(ctx, fifo, exec.Command{Name: prog, Args: args, Env: env, Timeout: toolTimeout}, out)
	})
}

func (s *pgService) Load(ctx context.Context, ex exec.Executor, name string, in io.Reader) error {
	if err := ValidDatabaseName(PostgreSQL, name); err != nil {
		return err
	}
	var owner string
	err := s.withAdmin(ctx, func(conn *pgx.Conn, _ *pgInfo) error {
		return conn.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name).Scan(&owner)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return errNoDatabase(s.cfg, name)
	case err != nil:
		return s.failOnce(ctx, "look up database "+name, err)
	}
	return s.withTool(ctx, ex, name, "load into database "+name, "psql", func(prog string, w *workDir, env []string) error {
		args := append(s.toolArgs(name), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
			"--single-transaction", "--output=/dev/null")
		if owner != s.cfg.AdminUser {
			// The tables belong to the site's role, as if it had made them.
			args = append(args, "--command=SET ROLE "+quotePostgres(owner))
		}
		args = append(args, "--file=-")
		_, err := ex.Run(ctx, exec.Command{Name: prog, Args: args, Env: env, Stdin: in, Timeout: toolTimeout})
		return err
	})
}

func (s *pgService) Open(ctx context.Context, dbname string) (Conn, error) {
	if err := ValidDatabaseName(PostgreSQL, dbname); err != nil {
		return nil, err
	}
	conn, err := s.connect(ctx, dbname)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "3D000" {
			return nil, errNoDatabase(s.cfg, dbname)
		}
		return nil, s.fail(ctx, "connect to database "+dbname, err)
	}
	return &pgConn{conn: conn}, nil
}

// pgConn is a Conn over a pgx connection.
type pgConn struct{ conn *pgx.Conn }

func (c *pgConn) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := c.conn.Query(ctx, rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

func (c *pgConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.conn.Exec(ctx, rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (c *pgConn) Close() error { return c.conn.Close(context.Background()) }

// pgRows gives pgx.Rows the Close of Rows.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}

// rebind turns ? placeholders into PostgreSQL's $1, $2, ..., leaving
// string constants and quoted identifiers alone.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	var quote byte // the quote we are inside of, or 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0 // a doubled quote reopens at once: same result
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
