package hosting_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/store"
)

// countedRecords counts the writes of the records it passes on.
type countedRecords struct {
	exec.RemoteRecords
	writes atomic.Int64
}

func (c *countedRecords) Add(ctx context.Context, id int64, ps []exec.RemoteProcess) error {
	c.writes.Add(1)
	return c.RemoteRecords.Add(ctx, id, ps)
}

func (c *countedRecords) Remove(ctx context.Context, id int64, ps []exec.RemoteProcess) error {
	c.writes.Add(1)
	return c.RemoteRecords.Remove(ctx, id, ps)
}

// BenchmarkRemoteCommandRecord is the cost of recording a task's command
// on a remote server (a private sshd on loopback, the command true): with
// no task (nothing recorded), in the task's record on the master (the
// file), and in the state (SQLite, or PostgreSQL with
// AEGIR_TEST_STATE=postgres), written behind the command. writes/op is
// the state's statements a command cost.
func BenchmarkRemoteCommandRecord(b *testing.B) {
	srv := testenv.StartSSHD(b)
	ex, err := exec.DialSSH(context.Background(), exec.SSHConfig{Host: srv.Host, Port: srv.Port, User: srv.User, KeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	st, err := store.Open(context.Background(), testenv.State(b), true)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, kind := range []string{"none", "file", "state-" + st.Dialect()} {
		b.Run("record="+kind, func(b *testing.B) {
			ctx := context.Background()
			var recs *countedRecords
			if kind != "none" {
				task, err := exec.StartTask(b.TempDir(), 1)
				if err != nil {
					b.Fatal(err)
				}
				if kind != "file" {
					recs = &countedRecords{RemoteRecords: &hosting.StateProcesses{Store: st}}
					task.KeepRemoteIn(recs)
				}
				defer task.Close(ctx)
				ctx = exec.WithTask(ctx, task)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := ex.Run(ctx, exec.Command{Name: "true", Timeout: time.Minute}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if recs != nil {
				b.ReportMetric(float64(recs.writes.Load())/float64(b.N), "writes/op")
			}
		})
	}
}
