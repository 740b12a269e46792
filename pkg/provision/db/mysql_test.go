package db

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// mariadbSocket is the system MariaDB's unix socket.
const mariadbSocket = "/run/mysqld/mysqld.sock"

// rootSQL runs statements as the system MariaDB's root, for setting up
// accounts that tests need.
func rootSQL(t *testing.T, query string, args ...any) {
	t.Helper()
	conn, err := mysql.NewConnector(systemMariaDB().driverConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	if _, err := db.ExecContext(testContext(t), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// mariadbAdmin makes an account on the system MariaDB for one test, with
// the given global privileges, so that tests of wrong passwords and
// missing rights never touch root. It is dropped when the test ends.
func mariadbAdmin(t *testing.T, password, privileges string) Config {
	t.Helper()
	user := randName()
	acct := account(user, grantHost)
	t.Cleanup(func() { rootSQL(t, "DROP USER IF EXISTS "+acct) })
	rootSQL(t, "CREATE USER "+acct+" IDENTIFIED BY ?", password)
	rootSQL(t, "GRANT "+privileges+" ON *.* TO "+acct)
	cfg := systemMariaDB()
	cfg.AdminUser, cfg.AdminPassword = user, password
	return cfg
}

// TestMariaDBAdminAccount runs the suite as an admin other than root whose
// password holds every character that needs escaping (in SQL, in the
// client tools' option file), and checks that a wrong password is refused
// with an error that says what to do.
func TestMariaDBAdminAccount(t *testing.T) {
	cfg := mariadbAdmin(t, specialPassword, "ALL PRIVILEGES")
	rootSQL(t, "GRANT ALL PRIVILEGES ON *.* TO "+account(cfg.AdminUser, grantHost)+" WITH GRANT OPTION")

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		wrong := cfg
		wrong.AdminPassword = "not-" + cfg.AdminPassword
		wrong.Name = "db1"
		s := newService(t, wrong)
		_, err := s.Verify(testContext(t))
		wantCode(t, "Verify with a wrong admin password", err, provision.ErrAuth)
		if err != nil {
			if strings.Contains(err.Error(), wrong.AdminPassword) {
				t.Errorf("the error shows the password: %v", err)
			}
			if fix := err.(*provision.Error).Fix; len(fix) != 1 || fix[0].Verb != "server.edit" || fix[0].Target != "db1" || len(fix[0].Args) != 2 || fix[0].Args[1].Name != "db-admin-password-file" {
				t.Errorf("fix %+v does not say how to set the password", fix)
			}
		}
		err = s.CreateDatabase(testContext(t), randName(), randName(), GeneratePassword(), grantHost)
		wantCode(t, "CreateDatabase with a wrong admin password", err, provision.ErrAuth)
	})
	runSuite(t, target{cfg: cfg, enforced: true})
}

// TestMariaDBAdminWithoutRights: an admin that may only read is told so by
// Verify, and CreateDatabase fails without leaving anything behind.
func TestMariaDBAdminWithoutRights(t *testing.T) {
	t.Parallel()
	cfg := mariadbAdmin(t, GeneratePassword(), "SELECT")
	s := newService(t, cfg)
	ctx := testContext(t)
	_, err := s.Verify(ctx)
	wantCode(t, "Verify of an admin without rights", err, provision.ErrAuth)
	if err != nil && !strings.Contains(err.Error(), "CREATE USER") {
		t.Errorf("the error does not name the missing right: %v", err)
	}
	name := randName()
	err = s.CreateDatabase(ctx, name, name, GeneratePassword(), grantHost)
	wantCode(t, "CreateDatabase by an admin without rights", err, provision.ErrAuth)
	root := newService(t, systemMariaDB())
	if ok, _ := root.DatabaseExists(ctx, name); ok {
		_ = root.DropDatabase(ctx, name, name, grantHost)
		t.Error("the failed create left the database behind")
	}
}

// TestMariaDBGrantHost: an account made for another host cannot log in
// from here, with the right password.
func TestMariaDBGrantHost(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := newService(t, systemMariaDB())
	name, pw := randName(), GeneratePassword()
	const elsewhere = "192.0.2.1" // TEST-NET-1: not us
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), name, name, elsewhere) })
	if err := s.CreateDatabase(ctx, name, name, pw, elsewhere); err != nil {
		t.Fatal(err)
	}
	_, err := asUser(t, target{cfg: systemMariaDB()}, name, pw).Open(ctx, name)
	wantCode(t, "logging in from a host the account is not for", err, provision.ErrAuth)
	// Dropping with the wrong grant host leaves the account; with the
	// right one it goes.
	if err := s.DropDatabase(ctx, name, name, grantHost); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UserExists(ctx, name); !ok {
		t.Error("DropDatabase for 127.0.0.1 dropped the account for " + elsewhere)
	}
	if err := s.DropDatabase(ctx, name, name, elsewhere); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UserExists(ctx, name); ok {
		t.Error("the account is still there")
	}
}

// TestMariaDBSocket reaches the server by its unix socket, as a site on the
// same machine does: admin login, a site account for localhost, and a dump
// whose tool connects by the socket too.
func TestMariaDBSocket(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cfg := Config{Type: MariaDB, Host: mariadbSocket, AdminUser: "root"}
	s := newService(t, cfg)
	if _, err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify by the socket: %v", err)
	}
	name, pw := randName(), GeneratePassword()
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), name, name, "localhost") })
	if err := s.CreateDatabase(ctx, name, name, pw, "localhost"); err != nil {
		t.Fatal(err)
	}
	c, err := asUser(t, target{cfg: cfg}, name, pw).Open(ctx, name)
	if err != nil {
		t.Fatalf("the site user cannot log in by the socket: %v", err)
	}
	defer c.Close()
	mustExec(t, c, "CREATE TABLE socket_test (id INT)")
	var dump strings.Builder
	if err := s.Dump(ctx, exec.NewLocal(), name, &dump); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump.String(), "CREATE TABLE `socket_test`") {
		t.Errorf("dump by the socket lacks the table:\n%.300s", dump.String())
	}
}
