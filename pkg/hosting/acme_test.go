package hosting_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// gatedAccounts makes its callers' Loads wait for each other, so that
// callers at once all find no account and all create one.
type gatedAccounts struct {
	*hosting.StateACMEAccounts
	gate *sync.WaitGroup
}

func (g gatedAccounts) Load(ctx context.Context, dir string) (acme.Account, error) {
	a, err := g.StateACMEAccounts.Load(ctx, dir)
	g.gate.Done()
	g.gate.Wait()
	return a, err
}

// openMasters opens one new state (testenv.State: SQLite or PostgreSQL)
// twice, as two masters would.
func openMasters(t *testing.T) [2]*store.Store {
	t.Helper()
	path := testenv.State(t)
	var out [2]*store.Store
	for i := range out {
		st, err := store.Open(context.Background(), path, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out[i] = st
	}
	return out
}

// The ACME account in the state, on either engine: four homes on two
// handles of one state making it at once (each finds none) end with one
// row and one account at the CA, recorded with its URL and this master,
// and no home has account files; the key is in no JSON of the store.
func TestStateACMEAccountsConcurrent(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: testenv.FreePort(t)})
	ctx := context.Background()
	masters := openMasters(t)
	gate := &sync.WaitGroup{}
	homes := make([]string, 4)
	locs := make([]string, len(homes))
	gate.Add(len(homes))
	var wg sync.WaitGroup
	for i := range homes {
		homes[i] = t.TempDir()
		c, err := acme.New(acme.Config{Directory: p.Directory, CAFile: p.CAFile, Home: homes[i], Email: "admin@example.org",
			Accounts: gatedAccounts{&hosting.StateACMEAccounts{Store: masters[i%2]}, gate}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			loc, err := c.Register(ctx)
			if err != nil {
				t.Error(err)
			}
			locs[i] = loc
		}()
	}
	wg.Wait()
	row, err := masters[1].ACMEAccount(ctx, p.Directory)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locs {
		if l == "" || l != row.Location {
			t.Fatalf("the homes registered %q; the state's account is %q", locs, row.Location)
		}
	}
	if row.Master != queue.Master() || row.Email != "admin@example.org" || !strings.Contains(string(row.KeyPEM), "PRIVATE KEY") {
		t.Errorf("the state's row: master %q, email %q", row.Master, row.Email)
	}
	list, err := masters[0].ACMEAccounts(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("accounts: %+v, %v", list, err)
	}
	for _, v := range []any{row, list} {
		if b, _ := json.Marshal(v); strings.Contains(string(b), "PRIVATE") || strings.Contains(string(b), "key") {
			t.Errorf("an account in JSON shows its key: %s", b)
		}
	}
	for _, h := range homes {
		if _, err := os.Stat(filepath.Join(h, "acme")); !os.IsNotExist(err) {
			t.Errorf("%s/acme exists (%v): the account lives in the state only", h, err)
		}
	}
}

// A home's own account is imported into a state that has none (the same
// key and URL); another home with an account of its own then uses the
// state's, and its files stay as they were.
func TestStateACMEAccountsImport(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: testenv.FreePort(t)})
	ctx := context.Background()
	masters := openMasters(t)
	homes := [2]string{t.TempDir(), t.TempDir()}
	var own [2]string
	for i, h := range homes {
		c, err := acme.New(acme.Config{Directory: p.Directory, CAFile: p.CAFile, Home: h})
		if err != nil {
			t.Fatal(err)
		}
		if own[i], err = c.Register(ctx); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := func(h string) []byte {
		b, err := os.ReadFile(acme.HomeAccounts{Home: h}.KeyFile(p.Directory))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyA, keyB := keyFile(homes[0]), keyFile(homes[1])
	for i, h := range homes {
		var log []string
		c, err := acme.New(acme.Config{Directory: p.Directory, CAFile: p.CAFile, Home: h, Accounts: &hosting.StateACMEAccounts{Store: masters[i]},
			Logf: func(level, format string, args ...any) { log = append(log, level+" "+format) }})
		if err != nil {
			t.Fatal(err)
		}
		loc, err := c.Register(ctx)
		if err != nil || loc != own[0] {
			t.Fatalf("home %d with the state: %s, %v; want the first home's account %s\n%s", i, loc, err, own[0], strings.Join(log, "\n"))
		}
	}
	row, err := masters[1].ACMEAccount(ctx, p.Directory)
	if err != nil || string(row.KeyPEM) != string(keyA) || row.Location != own[0] {
		t.Fatalf("the state's account: %v, %v; want the first home's, imported", row, err)
	}
	if string(keyFile(homes[0])) != string(keyA) || string(keyFile(homes[1])) != string(keyB) {
		t.Error("a home's account key changed")
	}
}
