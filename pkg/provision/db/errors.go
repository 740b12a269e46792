package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
)

// The errors a Service returns are *provision.Error values built here, so
// that each kind of failure has the same message and hint on every type.

func errUnreachable(c Config, err error) error {
	msg := fmt.Sprintf("cannot reach the %s server %s at %s", c.Type, c.serverName(), c.Addr())
	if isTimeout(err) {
		msg += fmt.Sprintf(": it did not answer within %s", c.connectTimeout())
	}
	return &provision.Error{
		Code: provision.ErrUnreachable,
		Msg:  msg,
		Hint: fmt.Sprintf("check that %s is running and listening on %s and that no firewall blocks it, "+
			"or fix the server's address (a server that listens only locally is reached through SSH)", c.Type, c.Addr()),
		Fix: []entities.Action{entities.Do("server.edit", c.serverName(), "db-host=HOST", "db-port=PORT")},
		Err: err,
	}
}

func errAuth(c Config, err error) error {
	return &provision.Error{
		Code: provision.ErrAuth,
		Msg:  fmt.Sprintf("the %s server at %s refused the admin login of %q", c.Type, c.Addr(), c.AdminUser),
		Hint: "check the admin user and its password on the database server, then set them (the file holds the password alone)",
		Fix:  []entities.Action{entities.Do("server.edit", c.serverName(), "db-admin-user=USER", "db-admin-password-file=FILE")},
		Err:  err,
	}
}

func errPrivilege(c Config, what string, err error) error {
	grant := fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'HOST' WITH GRANT OPTION", c.AdminUser)
	if c.Type == PostgreSQL {
		grant = fmt.Sprintf("ALTER ROLE %s CREATEDB CREATEROLE", quotePostgres(c.AdminUser))
	}
	return &provision.Error{
		Code: provision.ErrAuth,
		Msg:  fmt.Sprintf("the admin user %q of the %s server at %s may not %s", c.AdminUser, c.Type, c.Addr(), what),
		Hint: "give the admin user the rights to create databases and users (" + grant + "), or use another admin user",
		Err:  err,
	}
}

func errDatabase(c Config, what string, err error) error {
	return &provision.Error{
		Code: provision.ErrDatabase,
		Msg:  fmt.Sprintf("%s failed on the %s server at %s", what, c.Type, c.Addr()),
		Hint: "read the server's message above; the database server's own log may say more",
		Err:  err,
	}
}

func errExists(c Config, kind, name string) error {
	return provision.Errorf(provision.ErrDatabase,
		fmt.Sprintf("choose another %s name, or, if it is a leftover of a deleted site, drop it on the server first (its data is lost then)", kind),
		"%s %q already exists on the %s server at %s", kind, name, c.Type, c.Addr())
}

func errNoDatabase(c Config, name string) error {
	return provision.Errorf(provision.ErrDatabase,
		"create the database first (a site install or restore does), or check the site's database name",
		"database %q does not exist on the %s server at %s", name, c.Type, c.Addr())
}

// errOwnUser refuses to create or drop the admin account itself.
func errOwnUser(c Config, user string) error {
	return provision.Errorf(provision.ErrInvalidContext,
		"a site's database user must not be the server's admin user; leave it empty and aegir derives one from the domain",
		"database user %q is the admin user of the %s server at %s", user, c.Type, c.Addr())
}

// isNetError reports whether err is a failure to reach a server (refused,
// timed out, no route, unknown host, connection cut).
func isNetError(err error) bool {
	var ne net.Error
	var de *net.DNSError
	var oe *net.OpError
	switch {
	case errors.As(err, &oe), errors.As(err, &de), errors.As(err, &ne):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}

// isTimeout reports whether err is a deadline that passed: a server that
// accepted the connection and did not answer.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// cancelled returns a provision.ErrCancelled error when ctx is done, so that
// an interrupted task is not blamed on the server.
func cancelled(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return nil
	}
	return &provision.Error{Code: provision.ErrCancelled, Msg: "database operation interrupted", Err: err}
}

// errSiteLogin is a site's own user refused by the server: the account,
// its password or its rights on the database are gone or changed.
func errSiteLogin(c Config, name, user string, err error) error {
	return &provision.Error{
		Code: provision.ErrAuth,
		Msg:  fmt.Sprintf("the %s server at %s refused the site's user %q on database %q", c.Type, c.Addr(), user, name),
		Hint: "verifying the site makes the user and its grants again from the site's record",
		Fix:  []entities.Action{entities.Do("site.verify", "DOMAIN")},
		Err:  err,
	}
}

// siteLoginError is the end of a site user's login to database name: nil
// when it worked, the task's end when cancelled, errSiteLogin when the
// server refused it, errNoDatabase when the database is gone, else what
// fail makes of it.
func siteLoginError(ctx context.Context, c Config, name, user string, err error, refused, gone bool, fail func() error) error {
	switch {
	case err == nil:
		return nil
	case cancelled(ctx, err) != nil:
		return cancelled(ctx, err)
	case refused:
		return errSiteLogin(c, name, user, err)
	case gone:
		return errNoDatabase(c, name)
	}
	return fail()
}
