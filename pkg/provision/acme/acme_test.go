package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/acme"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// caEnv is a private nginx that serves a challenge directory for every
// name, and a pebble that validates on its port.
type caEnv struct {
	pebble *testenv.Pebble
	dir    string // the challenge directory
	home   string // the aegir home of the account
}

func newCAEnv(t *testing.T, validity time.Duration) *caEnv {
	t.Helper()
	ng := testenv.StartNginx(t, "")
	dir := filepath.Join(ng.ConfigDir, "acme-challenge")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "server {\n    listen 127.0.0.1:" + strconv.Itoa(ng.Port) + ";\n    server_name .test;\n" +
		"    location ^~ /.well-known/acme-challenge/ {\n        alias " + dir + "/;\n        default_type text/plain;\n    }\n}\n"
	if err := os.WriteFile(filepath.Join(ng.ConfigDir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.NewLocal().Run(context.Background(), exec.Command{Name: "sh", Args: []string{"-c", ng.ReloadCmd}}); err != nil {
		t.Fatalf("reloading nginx: %v %s", err, out.Stderr)
	}
	p := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: ng.Port, Validity: validity})
	return &caEnv{pebble: p, dir: dir, home: t.TempDir()}
}

func (e *caEnv) client(t *testing.T, log *[]string) *acme.Client {
	t.Helper()
	c, err := acme.New(acme.Config{Directory: e.pebble.Directory, Email: "admin@example.org", CAFile: e.pebble.CAFile, Home: e.home,
		Logf: func(level, format string, args ...any) {
			if log != nil {
				*log = append(*log, level+" "+strings.TrimSpace(fmt.Sprintf(format, args...)))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *caEnv) solver() *acme.HTTPDir { return &acme.HTTPDir{Ex: exec.NewLocal(), Dir: e.dir} }

// A certificate for a domain and an alias from a real CA, validated over
// HTTP through nginx; the account is made once and kept 0600; the
// challenge files are gone afterwards; nothing secret reaches the log.
func TestObtainFromPebble(t *testing.T) {
	e := newCAEnv(t, 0)
	ctx := context.Background()
	var log []string
	c := e.client(t, &log)
	names := []string{"a.test", "www.a.test"}
	start := time.Now()
	got, err := c.Obtain(ctx, names, e.solver())
	if err != nil {
		t.Fatalf("obtain: %v\nlog:\n%s", err, strings.Join(log, "\n"))
	}
	t.Logf("first certificate (with account registration) in %v", time.Since(start).Round(time.Millisecond))

	// The chain verifies against pebble's issuing root for both names, and
	// the key matches.
	pair, err := tls.X509KeyPair(got.ChainPEM, got.KeyPEM)
	if err != nil {
		t.Fatalf("key does not match the chain: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		ic, _ := x509.ParseCertificate(der)
		inter.AddCert(ic)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: e.pebble.Roots(t), Intermediates: inter}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", n, err)
		}
	}
	if got.Info.Missing(names) != nil || got.Info.Issuer == "" || got.Info.NotAfter.Before(time.Now()) || len(got.Info.ID) != 12 {
		t.Errorf("info: %+v", got.Info)
	}
	if blk, _ := pem.Decode(got.KeyPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Errorf("key is not PKCS#8 PEM")
	}

	// The account: 0600 files under HOME/acme, registered once.
	adir := acme.AccountDir(e.home, e.pebble.Directory)
	for _, f := range []string{"account.key", "account.json"} {
		st, err := os.Stat(filepath.Join(adir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, err, st.Mode())
		}
	}
	before, _ := os.ReadFile(filepath.Join(adir, "account.json"))
	if !strings.Contains(string(before), `"location": "https://`) {
		t.Fatalf("account.json: %s", before)
	}
	// No challenge file is left; nothing secret was logged.
	if left, _ := os.ReadDir(e.dir); len(left) != 0 {
		t.Errorf("challenge files left: %v", left)
	}
	keyText := string(got.KeyPEM)
	for _, l := range log {
		if strings.Contains(l, "PRIVATE KEY") || strings.Contains(keyText, l) {
			t.Errorf("a log line shows key material: %q", l)
		}
	}

	// A second certificate reuses the account.
	start = time.Now()
	again, err := e.client(t, nil).Obtain(ctx, []string{"b.test"}, e.solver())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second certificate in %v", time.Since(start).Round(time.Millisecond))
	after, _ := os.ReadFile(filepath.Join(adir, "account.json"))
	if string(after) != string(before) || again.Info.Serial == got.Info.Serial {
		t.Errorf("second order: account.json changed (%s -> %s) or same serial", before, after)
	}
}

// Faults: a name whose DNS points where no web server answers; a CA that
// is down; a CA whose TLS certificate is not trusted. Each says what and
// what to do.
func TestObtainFaults(t *testing.T) {
	e := newCAEnv(t, 0)
	ctx := context.Background()

	e.pebble.SetA(t, "away.test", "127.0.0.2")
	_, err := e.client(t, nil).Obtain(ctx, []string{"away.test"}, e.solver())
	pe := provisionErr(t, err)
	t.Logf("unreachable challenge: %s\nhint: %s", pe.Msg, pe.Hint)
	if pe.Code != acme.ErrCode || !strings.Contains(pe.Msg, "away.test") || !strings.Contains(pe.Msg, "127.0.0.2") ||
		!strings.Contains(pe.Hint, "DNS") || len(pe.Fix) != 1 || pe.Fix[0].Verb != "site.verify" || pe.Fix[0].Target != "away.test" {
		t.Errorf("unreachable challenge: %q\nhint: %q, fix %+v", pe.Msg, pe.Hint, pe.Fix)
	}

	down := "https://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "/dir"
	c, err := acme.New(acme.Config{Directory: down, Home: t.TempDir(), CAFile: e.pebble.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Obtain(ctx, []string{"a.test"}, e.solver())
	pe = provisionErr(t, err)
	if !strings.Contains(pe.Msg, "did not answer") || !strings.Contains(pe.Hint, "existing certificates are untouched") {
		t.Errorf("CA down: %q / %q", pe.Error(), pe.Hint)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a CA that is down took %v to report", d)
	}

	c, err = acme.New(acme.Config{Directory: e.pebble.Directory, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Obtain(ctx, []string{"a.test"}, e.solver())
	pe = provisionErr(t, err)
	if !strings.Contains(pe.Msg, "not trusted") || !strings.Contains(pe.Hint, "acme_ca_file") {
		t.Errorf("untrusted CA: %q / %q", pe.Error(), pe.Hint)
	}
}

func provisionErr(t *testing.T, err error) *provision.Error {
	t.Helper()
	var pe *provision.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want a *provision.Error, got %T %v", err, err)
	}
	return pe
}

// A remote web server: the challenge files go there over SSH (a private
// sshd on loopback, logging in as root as aegir does on a web server).
func TestObtainOverSSH(t *testing.T) {
	e := newCAEnv(t, 0)
	sshd := testenv.StartSSHDWith(t, testenv.SSHDOptions{RootLogin: true})
	ctx := context.Background()
	ex, err := exec.DialSSH(ctx, exec.SSHConfig{Host: sshd.Host, Port: sshd.Port, User: "root", KeyFile: sshd.KeyFile, KnownHostsFile: sshd.KnownHostsFile})
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, sshd.Log())
	}
	defer ex.Close()
	if ex.IsLocal() {
		t.Fatal("the SSH executor says it is local")
	}
	got, err := e.client(t, nil).Obtain(ctx, []string{"remote.test"}, &acme.HTTPDir{Ex: ex, Dir: e.dir, CheckAddr: "127.0.0.1:" + strconv.Itoa(e.pebble.HTTPPort)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Info.Missing([]string{"remote.test"}) != nil {
		t.Fatalf("certificate names %v", got.Info.Names)
	}
	if left, _ := os.ReadDir(e.dir); len(left) != 0 {
		t.Errorf("challenge files left: %v", left)
	}
}
