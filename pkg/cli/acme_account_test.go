package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/internal/testenv"
	"github.com/aegir-project/aegir/pkg/internal/testsite"
	"github.com/aegir-project/aegir/pkg/store"
)

// Two masters, two homes on one state (SQLite file or PostgreSQL, as
// AEGIR_TEST_STATE says), one ACME CA (pebble): a site installed with
// HTTPS through home A makes the account, in the state; a new certificate
// through home B uses that account (the same URL, no registration of its
// own) and B's home has no account files; no key reaches the output;
// cert account list shows it, cert account delete forgets it and the next
// certificate makes another.
//
// The commands that make the account run as processes of their own: the
// master's name is the process's (queue.SetMaster), which parallel tests
// in this one would share.
func TestTwoMastersOneACMEAccount(t *testing.T) {
	t.Parallel()
	a, b, dsn := twoMastersOn(t, testenv.State(t))
	// As aegir init leaves a home: the web server's workers pass through
	// to config/, where the virtual hosts B writes point them.
	if err := os.Chmod(b, 0o711); err != nil {
		t.Fatal(err)
	}
	ca := testenv.StartPebble(t, testenv.PebbleOptions{HTTPPort: a.web.Port})
	for _, home := range []string{a.home, b} {
		f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("\nacme_directory: " + ca.Directory + "\nacme_ca_file: " + ca.CAFile + "\nacme_email: admin@example.org\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ctx := context.Background()
	st := openState(t, dsn)
	a.wpPlatform(t, "wp")
	domain := testsite.Domain(t, "acct")
	errsA, code := aegirProcess(t, a.home, "site", "install", domain, "--platform", "wp", "--https", "on")
	if code != 0 {
		t.Fatalf("install through A: exit %d\n%s", code, errsA)
	}
	c1 := certOf(t, a.home, domain)
	acct, err := st.ACMEAccount(ctx, ca.Directory)
	if err != nil || !strings.HasPrefix(acct.Location, "https://") || acct.Master != "ma" || c1 == nil || c1.CertPath == "" {
		t.Fatalf("after A's install: account %+v, %v; cert %+v\n%s", acct, err, c1, errsA)
	}
	if !strings.Contains(errsA, "registered ACME account "+acct.Location) {
		t.Errorf("A's output does not say it registered %s:\n%s", acct.Location, errsA)
	}

	_, errsB, code := aegir(t, b, "site", "cert", domain)
	if code != 0 {
		t.Fatalf("site cert through B: exit %d\n%s", code, errsB)
	}
	c2 := certOf(t, b, domain)
	if c2 == nil || c2.CertPath == c1.CertPath {
		t.Fatalf("B issued no new certificate: %+v (A's %+v)", c2, c1)
	}
	again, err := st.ACMEAccount(ctx, ca.Directory)
	if err != nil || again.Location != acct.Location || string(again.KeyPEM) != string(acct.KeyPEM) || again.Master != "ma" {
		t.Fatalf("the state's account after B: %s by %s (%v), want A's %s", again.Location, again.Master, err, acct.Location)
	}
	if strings.Contains(errsB, "registered ACME account") || strings.Contains(errsB, "made a new ACME account") {
		t.Errorf("B made or registered an account of its own:\n%s", errsB)
	}
	for _, home := range []string{a.home, b} {
		if _, err := os.Stat(filepath.Join(home, "acme")); !os.IsNotExist(err) {
			t.Errorf("%s/acme exists (%v): the account lives in the state", home, err)
		}
	}
	list := must(t, b, "cert", "account", "list", "--format", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(list), &rows); err != nil || len(rows) != 1 || rows[0]["location"] != acct.Location ||
		rows[0]["directory"] != ca.Directory || rows[0]["master"] != "ma" {
		t.Fatalf("cert account list: %s (%v)", list, err)
	}
	keyLine := strings.Split(string(acct.KeyPEM), "\n")[1]
	for _, out := range []string{errsA, errsB, list, must(t, b, "task", "list", "--format", "json"), must(t, b, "cert", "account", "list")} {
		if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, keyLine) {
			t.Errorf("the output shows the account key:\n%s", out)
		}
	}

	// Replaced: forgotten, the next certificate makes another account.
	if _, errs, code := aegir(t, b, "cert", "account", "delete", "ftp://ca.test/dir"); code != 2 || !strings.Contains(errs, "DIRECTORY") {
		t.Fatalf("delete of a bad directory: exit %d\n%s", code, errs)
	}
	must(t, b, "cert", "account", "delete", ca.Directory, "-y", "-q")
	if _, err := st.ACMEAccount(ctx, ca.Directory); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the account after delete: %v", err)
	}
	if _, errs, code := aegir(t, b, "cert", "account", "delete", ca.Directory, "-y"); code != cli.ExitNotFound {
		t.Fatalf("delete again: exit %d\n%s", code, errs)
	}
	if errs, code := aegirProcess(t, b, "site", "cert", domain, "-q"); code != 0 {
		t.Fatalf("site cert through B after the delete: exit %d\n%s", code, errs)
	}
	next, err := st.ACMEAccount(ctx, ca.Directory)
	if err != nil || next.Location == acct.Location || next.Master != "mb" || !strings.HasPrefix(next.Location, "https://") {
		t.Fatalf("the account made after delete: %+v, %v (the old one %s)", next, err, acct.Location)
	}
	if _, err := os.Stat(filepath.Join(b, "acme")); !os.IsNotExist(err) {
		t.Errorf("%s/acme exists (%v) after the new account", b, err)
	}
}

// aegirProcess runs aegir on home as a process of its own and returns
// its standard error and exit code.
func aegirProcess(t *testing.T, home string, args ...string) (string, int) {
	t.Helper()
	cmd := aegirCmd(t, home, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stderr.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), 0
}
