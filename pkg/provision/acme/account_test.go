package acme_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision/acme"
)

// memAccounts keeps accounts in memory, as a place several masters share
// would (the front end's is the state). creates counts Create's calls;
// with gate, each Load, once it has read, waits for the gate's count of
// Loads to have read (callers at once all find no account).
type memAccounts struct {
	mu      sync.Mutex
	m       map[string]acme.Account
	creates int
	gate    *sync.WaitGroup
}

func (m *memAccounts) String() string { return "the shared accounts" }

func (m *memAccounts) Load(_ context.Context, dir string) (acme.Account, error) {
	m.mu.Lock()
	a, ok := m.m[dir]
	m.mu.Unlock()
	if m.gate != nil {
		m.gate.Done()
		m.gate.Wait()
	}
	if !ok {
		return acme.Account{}, acme.ErrNoAccount
	}
	return a, nil
}

func (m *memAccounts) Create(_ context.Context, a acme.Account) (acme.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creates++
	if had, ok := m.m[a.Directory]; ok {
		return had, nil
	}
	if m.m == nil {
		m.m = map[string]acme.Account{}
	}
	m.m[a.Directory] = a
	return a, nil
}

func (m *memAccounts) Save(_ context.Context, a acme.Account) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if had, ok := m.m[a.Directory]; ok && bytes.Equal(had.KeyPEM, a.KeyPEM) {
		m.m[a.Directory] = a
	}
	return nil
}

// sharedClient is a client of the CA for home whose accounts live in
// accts; log collects its lines.
func sharedClient(t *testing.T, p *testenv.Pebble, home string, accts acme.Accounts, log *logLines) *acme.Client {
	t.Helper()
	c, err := acme.New(acme.Config{Directory: p.Directory, Email: "admin@example.org", CAFile: p.CAFile, Home: home, Accounts: accts, Logf: log.add})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(level, format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+strings.TrimSpace(fmt.Sprintf(format, args...)))
}

// count is how many lines hold s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// noKeyIn fails when a log line shows key material.
func (l *logLines) noKeyIn(t *testing.T, keyPEM []byte) {
	t.Helper()
	body := strings.TrimSpace(strings.Join(strings.Split(string(keyPEM), "\n")[1:2], ""))
	for _, line := range l.lines {
		if strings.Contains(line, "PRIVATE KEY") || (body != "" && strings.Contains(line, body)) {
			t.Errorf("a log line shows key material: %q", line)
		}
	}
}

// A certificate got through home A, then one through home B, whose
// accounts live in one shared place: B uses A's account (the same URL at
// the CA), and neither home has an account file.
func TestSharedAccountTwoHomes(t *testing.T) {
	e := newCAEnv(t, 0)
	ctx := context.Background()
	shared := &memAccounts{}
	homeA, homeB := t.TempDir(), t.TempDir()
	var logA, logB logLines
	if _, err := sharedClient(t, e.pebble, homeA, shared, &logA).Obtain(ctx, []string{"a.test"}, e.solver()); err != nil {
		t.Fatalf("obtain through A: %v\n%s", err, &logA)
	}
	a, err := shared.Load(ctx, e.pebble.Directory)
	if err != nil || !strings.HasPrefix(a.Location, "https://") || a.Email != "admin@example.org" {
		t.Fatalf("the shared account after A: %+v, %v", a.Location, err)
	}
	if logA.count("registered ACME account "+a.Location) != 1 || logA.count("made a new ACME account key") != 1 {
		t.Errorf("A's log:\n%s", &logA)
	}
	if _, err := sharedClient(t, e.pebble, homeB, shared, &logB).Obtain(ctx, []string{"b.test"}, e.solver()); err != nil {
		t.Fatalf("obtain through B: %v\n%s", err, &logB)
	}
	b, _ := shared.Load(ctx, e.pebble.Directory)
	if b.Location != a.Location || !bytes.Equal(b.KeyPEM, a.KeyPEM) || shared.creates != 1 {
		t.Errorf("B's account %s (%d creates), want A's %s", b.Location, shared.creates, a.Location)
	}
	if logB.count("registered") != 0 || logB.count("made a new") != 0 || logB.count("imported") != 0 {
		t.Errorf("B's log:\n%s", &logB)
	}
	for _, h := range []string{homeA, homeB} {
		if _, err := os.Stat(filepath.Join(h, "acme")); !os.IsNotExist(err) {
			t.Errorf("%s/acme exists (%v): the account lives in the shared place only", h, err)
		}
	}
	logA.noKeyIn(t, a.KeyPEM)
	logB.noKeyIn(t, a.KeyPEM)
}

// Six homes making the shared account at once (each finds none, each
// makes a key) end with one account at the CA: the same URL for all, the
// losers' keys used nowhere.
func TestSharedAccountConcurrent(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: testenv.FreePort(t)})
	ctx := context.Background()
	locs := make([]string, 6)
	shared := &memAccounts{gate: &sync.WaitGroup{}}
	shared.gate.Add(len(locs))
	var wg sync.WaitGroup
	var log logLines
	for i := range locs {
		home := t.TempDir()
		c := sharedClient(t, p, home, shared, &log)
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
	shared.gate = nil
	a, err := shared.Load(ctx, p.Directory)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locs {
		if l != a.Location || l == "" {
			t.Fatalf("the homes registered %q, the shared account is %q", locs, a.Location)
		}
	}
	if n := log.count("made a new ACME account key"); n != 1 || shared.creates != len(locs) {
		t.Errorf("%d new keys said (%d creates), want 1:\n%s", n, shared.creates, &log)
	}
}

// A home that has an account of its own: with no shared account it is
// imported (said once; its files stay as they are); a second home with
// another account of its own uses the shared one, which is said once, and
// its files are left alone.
func TestSharedAccountImport(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: testenv.FreePort(t)})
	ctx := context.Background()
	homeA, homeB := t.TempDir(), t.TempDir()
	// Each home's own account, as before the accounts were shared.
	var own [2]string
	for i, h := range []string{homeA, homeB} {
		loc, err := sharedClient(t, p, h, nil, nil).Register(ctx)
		if err != nil {
			t.Fatal(err)
		}
		own[i] = loc
	}
	if own[0] == own[1] {
		t.Fatalf("two homes' own accounts are one: %s", own[0])
	}
	files := func(h string) string {
		var b strings.Builder
		for _, f := range []string{"account.key", "account.json"} {
			body, err := os.ReadFile(filepath.Join(acme.AccountDir(h, p.Directory), f))
			if err != nil {
				t.Fatal(err)
			}
			b.Write(body)
		}
		return b.String()
	}
	beforeA, beforeB := files(homeA), files(homeB)
	keyA, _ := os.ReadFile(filepath.Join(acme.AccountDir(homeA, p.Directory), "account.key"))

	shared := &memAccounts{}
	var logA, logB logLines
	for range 2 {
		loc, err := sharedClient(t, p, homeA, shared, &logA).Register(ctx)
		if err != nil || loc != own[0] {
			t.Fatalf("A with the shared accounts: %s, %v; want its own account %s", loc, err, own[0])
		}
	}
	a, _ := shared.Load(ctx, p.Directory)
	if a.Location != own[0] || !bytes.Equal(a.KeyPEM, keyA) {
		t.Fatalf("the shared account %s, want A's imported %s", a.Location, own[0])
	}
	if logA.count("imported the ACME account "+own[0]) != 1 || logA.count("made a new") != 0 || logA.count("registered") != 0 {
		t.Errorf("A's log (want one import line):\n%s", &logA)
	}
	for range 2 {
		loc, err := sharedClient(t, p, homeB, shared, &logB).Register(ctx)
		if err != nil || loc != own[0] {
			t.Fatalf("B with the shared accounts: %s, %v; want the shared %s", loc, err, own[0])
		}
	}
	if n := logB.count("the shared accounts already holds an ACME account for " + p.Directory + " (" + own[0] + "), which is used"); n != 1 ||
		logB.count(own[1]) != 1 || logB.count("imported") != 0 {
		t.Errorf("B's log (want one line saying the shared account is used, not its own %s):\n%s", own[1], &logB)
	}
	if files(homeA) != beforeA || files(homeB) != beforeB {
		t.Error("a home's account files changed")
	}
	logA.noKeyIn(t, keyA)
	logB.noKeyIn(t, keyA)
}
