package hosting_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/store"
)

// BenchmarkStateKnownHostsKeys is the host key lookup of one SSH dial
// (a dial looks up twice: the key types to ask for, then the check) with
// the keys of a fleet in the state: servers keys, the mirror file up to
// date. Both engines: AEGIR_TEST_STATE=postgres for PostgreSQL.
func BenchmarkStateKnownHostsKeys(b *testing.B) {
	for _, servers := range []int{10, 1000} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, testenv.State(b), true)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			kh := &hosting.StateKnownHosts{Store: st, File: filepath.Join(b.TempDir(), "known_hosts"), Master: "m1"}
			hosts := make([]string, servers)
			for i := range hosts {
				hosts[i] = hosting.HostOf(fmt.Sprintf("web%d.example.com", i), 22)
				if _, err := kh.Add(ctx, hosts[i], testenv.NewPublicKey(b)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if keys, err := kh.Keys(ctx, hosts[i%servers]); err != nil || len(keys) != 1 {
					b.Fatalf("keys of %s: %v, %v", hosts[i%servers], keys, err)
				}
			}
		})
	}
}
