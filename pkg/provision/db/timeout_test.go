package db

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// A database port that accepts and never answers: every admin operation
// and every client tool run gives up within the connect timeout, with an
// unreachable error that names the server.
func TestSilentServerTimesOut(t *testing.T) {
	t.Parallel()
	addr := testenv.Silent(t)
	for _, typ := range []Type{MariaDB, PostgreSQL} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			s := newService(t, Config{Name: "mute1", Type: typ, Host: "127.0.0.1", Port: addr.Port, AdminUser: "admin",
				ConnectTimeout: 2 * time.Second})
			ctx := context.Background()
			ex := exec.NewLocal()
			ops := map[string]func() error{
				"Verify":         func() error { _, err := s.Verify(ctx); return err },
				"DatabaseExists": func() error { _, err := s.DatabaseExists(ctx, "x"); return err },
				"DropDatabase":   func() error { return s.DropDatabase(ctx, "x", "x", "127.0.0.1") },
				"Dump":           func() error { return s.Dump(ctx, ex, "x", &bytes.Buffer{}) },
				"Load":           func() error { return s.Load(ctx, ex, "x", strings.NewReader("SELECT 1;")) },
				"Open":           func() error { _, err := s.Open(ctx, "x"); return err },
				"CheckLogin":     func() error { return s.CheckLogin(ctx, "x", "x", "pw", nil) },
			}
			for name, op := range ops {
				start := time.Now()
				err := op()
				if d := time.Since(start); d > 8*time.Second {
					t.Errorf("%s took %s, want about the connect timeout (2s)", name, d)
				}
				wantCode(t, name, err, provision.ErrUnreachable)
				if err != nil && (!strings.Contains(err.Error(), "mute1") || !strings.Contains(err.Error(), "did not answer within 2s")) {
					t.Errorf("%s: the error does not name the server and the timeout: %v", name, err)
				}
			}
		})
	}
}
