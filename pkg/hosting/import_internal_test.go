package hosting

import (
	"context"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
)

// An imported site may not own a database or user that is one of the
// database server's own (db.IsSystemName, the rule the back end keeps
// from dropping): the check answers before it asks the state (this
// Runner has none), in any case and for PostgreSQL's pg_ roles too.
func TestDBTakenSystemNames(t *testing.T) {
	r := &Runner{}
	servers := []*entities.Server{{Name: "db1"}}
	for _, c := range []struct{ name, user string }{
		{"mysql", ""}, {"", "MySQL"}, {"mariadb.sys", ""}, {"", "debian-sys-maint"},
		{"public", ""}, {"", "pg_monitor"}, {"template1", "site"},
	} {
		taken, err := r.dbTaken(context.Background(), servers, "db1", c.name, c.user)
		want := c.name
		if c.name == "" {
			want = c.user
		}
		if err != nil || taken != want {
			t.Errorf("dbTaken(%q, %q) = %q, %v; want %q", c.name, c.user, taken, err, want)
		}
	}
}
