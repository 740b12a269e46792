package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

// The API's changes through the command line's own code, many at once
// (go test -race sees what the requests' invocations share): installs of
// different domains are each recorded with their task; two of one domain
// give one install and one 409; bad input is the command's own error,
// naming its flag, with nothing written; a backup of a site whose
// install is queued is 409, exit 4.
func TestAPIOpsConcurrent(t *testing.T) {
	a := testApp(t)
	ctx := a.ctx
	st := a.st
	if _, err := st.AddServer(ctx, &entities.Server{Name: "web1", Host: "localhost", SSHPort: 22, Services: []entities.Service{
		{Kind: "http", Type: "nginx", Port: 80}, {Kind: "db", Type: "mariadb", Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddPlatform(ctx, &entities.Platform{Name: "wp", Server: "web1", Root: "/var/www/wp"}); err != nil {
		t.Fatal(err)
	}
	p, err := st.GetPlatform(ctx, "wp")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPlatformStatus(ctx, p.ID, entities.StatusEnabled); err != nil {
		t.Fatal(err)
	}
	if err := st.AddClient(ctx, &entities.Client{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(ctx, &entities.User{Name: "ann", Client: "acme", Role: entities.RoleClient}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := st.CreateToken(ctx, "ann", entities.ScopeWrite, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := a.apiServer(1e6, 1e6)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	const n = 8
	codes := make([]int, n+2)
	bodies := make([]string, n+2)
	var wg sync.WaitGroup
	for i := 0; i < n+2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d := fmt.Sprintf("s%d.acme.test", i)
			if i >= n {
				d = "twice.acme.test"
			}
			codes[i], bodies[i] = call("POST", "/api/sites", fmt.Sprintf(`{"domain": %q, "platform": "wp", "aliases": ["www.%s"]}`, d, d))
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if codes[i] != 202 || !strings.Contains(bodies[i], `"type":"site.install"`) {
			t.Fatalf("install %d: %d %s", i, codes[i], bodies[i])
		}
	}
	if c := codes[n] + codes[n+1]; c != 202+409 {
		t.Fatalf("two installs of one domain: %d %s and %d %s, want 202 and 409", codes[n], bodies[n], codes[n+1], bodies[n+1])
	}
	sites, err := st.ListSites(ctx, store.SiteFilter{Client: "acme"})
	if err != nil || len(sites) != n+1 {
		t.Fatalf("acme's sites: %d %v, want %d", len(sites), err, n+1)
	}

	before := state(t, a)
	for _, tc := range []struct{ body, want string }{
		{`{"domain": "x.acme.test"}`, `invalid --platform: is required`},
		{`{"domain": "x_y", "platform": "wp"}`, `invalid domain \"x_y\"`},
		{`{"domain": "x.acme.test", "platform": "wp", "https": "maybe"}`, `invalid --https \"maybe\"`},
		{`{"domain": "x.acme.test", "platform": "nope"}`, `platform \"nope\" not found`},
	} {
		code, body := call("POST", "/api/sites", tc.body)
		if code/100 != 4 || !strings.Contains(body, tc.want) {
			t.Fatalf("install %s: %d %s, want a 4xx with %s", tc.body, code, body, tc.want)
		}
	}
	if after := state(t, a); after != before {
		t.Fatal("a refused install wrote to the state")
	}

	wg = sync.WaitGroup{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], bodies[i] = call("POST", fmt.Sprintf("/api/sites/s%d.acme.test/backup", i), "")
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if codes[i] != 409 || !strings.Contains(bodies[i], `"exit_code":4`) || !strings.Contains(bodies[i], "not installed yet") {
			t.Fatalf("backup %d of a site not installed: %d %s, want 409", i, codes[i], bodies[i])
		}
	}
	if after := state(t, a); after != before {
		t.Fatal("a refused backup wrote to the state")
	}
}
