//go:build unix

package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/api"
	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// benchAPI is the API over 10,000 installed sites, 50 of them client
// acme's, with an admin's token and one of acme's user.
func benchAPI(b *testing.B) (srv *api.Server, admin, client string) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "aegir.db"), true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if _, err := st.AddServer(ctx, &entities.Server{Name: "web1", Host: "localhost", SSHPort: 22, Services: []entities.Service{
		{Kind: "http", Type: "nginx", Port: 80}, {Kind: "db", Type: "mariadb", Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"}}}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := st.AddPlatform(ctx, &entities.Platform{Name: fmt.Sprintf("p%d", i), Server: "web1", Root: fmt.Sprintf("/var/www/p%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.SeedBench(ctx, store.BenchState{Sites: 10000, Client: "acme", ClientSites: 50}); err != nil {
		b.Fatal(err)
	}
	tokens := map[string]string{}
	for _, u := range []entities.User{{Name: "root", Role: entities.RoleAdmin}, {Name: "ann", Client: "acme", Role: entities.RoleClient}} {
		if err := st.AddUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		if _, tokens[u.Name], err = st.CreateToken(ctx, u.Name, entities.ScopeRead, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return api.New(api.Config{Store: st, Ops: storeOps{st}, Rate: 1e9, Burst: 1e9}), tokens["root"], tokens["ann"]
}

// benchGet serves GET path as token b.N times (server time: the
// handler, with its token check, audit log entry and JSON, no network)
// and checks the answer has n sites (n < 0: one record).
func benchGet(b *testing.B, srv *api.Server, token, path string, size int) {
	b.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK || (size > 0 && w.Body.Len() < size) {
			b.Fatalf("GET %s: %d, %d bytes", path, w.Code, w.Body.Len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/request")
	// The process's CPU time (both cores, the collector's too): what a
	// loaded machine does not stretch as it stretches the wall time.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/request")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListSitesAdmin10k: GET /api/sites for an admin, 10,000 sites
// (issue 21: < 50 ms server time).
func BenchmarkListSitesAdmin10k(b *testing.B) {
	srv, admin, _ := benchAPI(b)
	benchGet(b, srv, admin, "/api/sites", 10000*300)
}

// BenchmarkListSitesClient50: GET /api/sites for a client's user whose
// client has 50 of the 10,000 sites.
func BenchmarkListSitesClient50(b *testing.B) {
	srv, _, client := benchAPI(b)
	benchGet(b, srv, client, "/api/sites", 50*300)
}

// BenchmarkShowSite: GET /api/sites/{domain} of one of the 10,000.
func BenchmarkShowSite(b *testing.B) {
	srv, _, client := benchAPI(b)
	benchGet(b, srv, client, "/api/sites/site00007.example.test", 0)
}
