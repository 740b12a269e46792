// Package tasks is the back end's task types: each composes the executors,
// web, database and platform drivers into one unit of work, registered
// with provision.Register under its type ("server.verify", "site.install",
// ...). Import it for its side effect.
package tasks

import (
	"context"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/db"
)

func init() {
	provision.Register("server.verify", serverVerify)
}

// serviceState is the state of one service, for the front end.
type serviceState struct {
	Kind    string `json:"kind"`
	Status  string `json:"status"` // enabled or error
	Version string `json:"version"`
	Message string `json:"message"`
}

// dbService opens the context's database server as its admin.
func dbService(ctx context.Context, env *provision.Env, c *provision.Context) (db.Service, error) {
	t, err := db.ParseType(c.DBType)
	if err != nil {
		return nil, err
	}
	return db.New(db.Config{Name: c.DBServer, Type: t, Host: c.DBHost, Port: c.DBPort, AdminUser: c.DBAdminUser, AdminPassword: c.DBAdminPassword})
}
