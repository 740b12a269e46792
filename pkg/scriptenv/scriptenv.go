// Package scriptenv gives the command line's testscript scripts
// (cmd/aegir/testdata/script) the real components that the Go tests
// start through testenv: a private nginx and php-fpm, a copy of
// WordPress, a certificate, and a GET that prints what a site answers.
// cmd/aegir cannot import pkg/internal/testenv itself.
package scriptenv

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/aegir-project/aegir/pkg/internal/testenv"
)

// tbKey keys the script's test in its Values: the real components that
// testenv starts stop when that test ends.
type tbKey struct{}

// Env is what the scripts of one test share: one copy of WordPress,
// made when a script first asks for it, of which each script gets its
// own tree of hard links (cp -al: a fraction of a second, where a copy
// takes seconds). A script's new files are its own; a file it changed in
// place would be every script's, as aegir does not do to a platform's
// code.
type Env struct {
	t     testing.TB // the test of every script: the copy goes with it
	once  sync.Once
	wp    string // the copy's root
	wpErr error
	cmds  map[string]func(ts *testscript.TestScript, neg bool, args []string)
}

// New is the Env of the scripts that t runs (testscript.Run(t, ...)).
func New(t testing.TB) *Env {
	e := &Env{t: t}
	e.cmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"nginx":      cmdNginx,
		"phpfpm":     cmdPHPFPM,
		"wordpress":  e.cmdWordPress,
		"httpget":    cmdHTTPGet,
		"selfsigned": cmdSelfSigned,
	}
	return e
}

// Setup keeps the script's test in env, for the commands of Cmds; call
// it from the Setup of testscript.Params.
func (e *Env) Setup(env *testscript.Env) {
	env.Values[tbKey{}] = env.T()
}

// Cmds are the scripts' commands for real components, for the Cmds of
// testscript.Params.
func (e *Env) Cmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return e.cmds
}

// scriptTB is the test of the running script, for testenv.
func scriptTB(ts *testscript.TestScript) testing.TB {
	tb, ok := ts.Value(tbKey{}).(testing.TB)
	if !ok {
		ts.Fatalf("the script's test is not a testing.TB")
	}
	return tb
}

// nginx CONFIGDIR: start a private nginx (testenv.StartNginx) that
// includes CONFIGDIR/nginx.conf, until the script ends, and set
// NGINX_PORT, NGINX_HTTPS_PORT, NGINX_TEST and NGINX_RELOAD (the command
// lines that test and reload it) for server add.
func cmdNginx(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: nginx CONFIGDIR")
	}
	w := testenv.StartNginx(scriptTB(ts), ts.MkAbs(args[0]))
	ts.Setenv("NGINX_PORT", strconv.Itoa(w.Port))
	ts.Setenv("NGINX_HTTPS_PORT", strconv.Itoa(w.HTTPSPort))
	ts.Setenv("NGINX_TEST", w.TestCmd)
	ts.Setenv("NGINX_RELOAD", w.ReloadCmd)
}

// phpfpm: start a private php-fpm pool (testenv.StartPHPFPM) until the
// script ends and set PHPFPM to its socket.
func cmdPHPFPM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: phpfpm")
	}
	ts.Setenv("PHPFPM", testenv.StartPHPFPM(scriptTB(ts)).Socket)
}

// wordpress VAR: a WordPress platform of the script's own, readable by
// the web server's workers (a tree of hard links to the Env's copy of
// Debian's WordPress, testenv.CopyWordPress), and set VAR to its root.
func (e *Env) cmdWordPress(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: wordpress VAR")
	}
	e.once.Do(func() {
		dir, err := os.MkdirTemp("", "aegir-wordpress-")
		if err != nil {
			e.wpErr = err
			return
		}
		e.t.Cleanup(func() { os.RemoveAll(dir) })
		e.wp = filepath.Join(dir, "wordpress")
		e.wpErr = testenv.CopyWordPress(e.wp)
	})
	if e.wpErr != nil {
		ts.Fatalf("wordpress: %v", e.wpErr)
	}
	root := filepath.Join(testenv.PublicDir(scriptTB(ts)), "wordpress")
	if out, err := exec.Command("cp", "-al", e.wp, root).CombinedOutput(); err != nil {
		ts.Fatalf("wordpress: %v: %s", err, out)
	}
	ts.Setenv(args[0], root)
}

// selfsigned CERT KEY NAME...: write a self-signed certificate for the
// names (the first is its subject), valid from an hour ago for 90 days,
// and its key.
func cmdSelfSigned(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: selfsigned CERT KEY NAME...")
	}
	now := time.Now()
	cert, key, _ := testenv.SelfSigned(scriptTB(ts), args[2:], now.Add(-time.Hour), now.Add(90*24*time.Hour))
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), cert, 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), key, 0o600))
}

// httpget URL [HOST]: one GET of URL, with HOST as its Host (and, for
// https, HOST without its port as the server name; the certificate is
// not checked but its subject is printed), redirects not followed. It
// prints the status code, then "location: L" (and "redirect-by: X" when
// the application says) for a redirect and "cert: CN" for https, a blank
// line and the body, for stdout to match; the status is not judged here.
// There is no retry: when a command returns, the site serves what it
// changed (its reload waited for, php-fpm's compiled settings refreshed).
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: httpget URL [HOST]")
	}
	tlsConf := &tls.Config{InsecureSkipVerify: true} // the subject is printed instead
	host := ""
	if len(args) == 2 {
		host = args[1]
		tlsConf.ServerName = host
		if h, _, err := net.SplitHostPort(host); err == nil {
			tlsConf.ServerName = h
		}
	}
	client := &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest("GET", args[0], nil)
	ts.Check(err)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		ts.Fatalf("httpget: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	ts.Check(err)
	out := ts.Stdout()
	fmt.Fprintf(out, "%d\n", resp.StatusCode)
	if loc := resp.Header.Get("Location"); loc != "" {
		fmt.Fprintf(out, "location: %s\n", loc)
	}
	if by := resp.Header.Get("X-Redirect-By"); by != "" {
		fmt.Fprintf(out, "redirect-by: %s\n", by)
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		fmt.Fprintf(out, "cert: %s\n", resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
	fmt.Fprintf(out, "\n%s", body)
}
