package db

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
)

// superSQL runs statements as the superuser of the private server.
func superSQL(t *testing.T, super Config, query string) {
	t.Helper()
	cc, err := super.pgxConfig("postgres")
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestPostgreSQLPasswords runs the suite on a private PostgreSQL server
// that checks passwords (the system's trusts local connections), as an
// admin that is not a superuser but has CREATEDB and CREATEROLE, with a
// password that needs escaping in a pgpass file. There the site user's
// generated password is really checked, and a wrong admin password is
// refused with an error that says what to do.
func TestPostgreSQLPasswords(t *testing.T) {
	pg := testenv.StartPostgres(t, specialPassword)
	super := Config{Type: PostgreSQL, Host: pg.Host, Port: pg.Port, AdminUser: pg.User, AdminPassword: pg.Password}
	if _, err := newService(t, super).Verify(testContext(t)); err != nil {
		t.Fatalf("superuser Verify: %v", err)
	}

	admin := super
	admin.AdminUser = "aegir_admin"
	superSQL(t, super, "CREATE ROLE aegir_admin LOGIN CREATEDB CREATEROLE PASSWORD "+quoteLiteral(specialPassword))
	superSQL(t, super, "CREATE ROLE reader LOGIN PASSWORD 'reader'")

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		wrong := admin
		wrong.AdminPassword = "not-" + admin.AdminPassword
		_, err := newService(t, wrong).Verify(testContext(t))
		wantCode(t, "Verify with a wrong admin password", err, provision.ErrAuth)
		if err != nil && strings.Contains(err.Error(), wrong.AdminPassword) {
			t.Errorf("the error shows the password: %v", err)
		}
		unknown := admin
		unknown.AdminUser = "nobody"
		_, err = newService(t, unknown).Verify(testContext(t))
		wantCode(t, "Verify with an unknown admin user", err, provision.ErrAuth)
	})
	t.Run("AdminWithoutRights", func(t *testing.T) {
		t.Parallel()
		r := admin
		r.AdminUser, r.AdminPassword = "reader", "reader"
		s := newService(t, r)
		_, err := s.Verify(testContext(t))
		wantCode(t, "Verify of an admin without rights", err, provision.ErrAuth)
		name := randName()
		err = s.CreateDatabase(testContext(t), name, name, GeneratePassword(), "")
		wantCode(t, "CreateDatabase by an admin without rights", err, provision.ErrAuth)
	})
	t.Run("Socket", func(t *testing.T) {
		t.Parallel()
		sock := admin
		sock.Host = pg.SocketDir
		if _, err := newService(t, sock).Verify(testContext(t)); err != nil {
			t.Errorf("Verify by the socket: %v", err)
		}
	})
	runSuite(t, target{cfg: admin, enforced: true})
}
