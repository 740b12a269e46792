package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Web is a private web server instance that a test started (StartNginx,
// StartApache). It includes ConfigDir/nginx.conf (or apache.conf) as a
// system web server includes aegir's file.
type Web struct {
	Dir       string // the instance's own directory: its config, logs, temp files
	ConfigDir string // aegir's config dir for this server (web.Config.ConfigDir)
	Port      int    // HTTP port on 127.0.0.1; a default server there answers 404
	HTTPSPort int    // a port on 127.0.0.1 for TLS virtual hosts
	// TestCmd and ReloadCmd test and reload this instance: shell command
	// lines for web.Config.TestCmd and RestartCmd.
	TestCmd, ReloadCmd string
}

// newWeb prepares an instance of binary: its directory, config dir and ports.
func newWeb(t testing.TB, binary, configDir string) *Web {
	t.Helper()
	Need(t, binary)
	dir := PublicDir(t)
	if configDir == "" {
		configDir = filepath.Join(dir, "aegir")
	}
	// FreePort closes its listener, so a second call may hand out the
	// same port again: the two must differ.
	port, tlsPort := FreePort(t), FreePort(t)
	for tlsPort == port {
		tlsPort = FreePort(t)
	}
	return &Web{Dir: dir, ConfigDir: configDir, Port: port, HTTPSPort: tlsPort}
}

// URL is the base URL of the instance's HTTP port.
func (w *Web) URL() string { return "http://127.0.0.1:" + strconv.Itoa(w.Port) }

// NginxBinary is the nginx that the fixture runs.
const NginxBinary = "/usr/sbin/nginx"

// StartNginx starts a private nginx for the test and stops it when the test
// ends: Debian's /usr/sbin/nginx with its own prefix directory and
// configuration, a root master with www-data workers, listening on
// 127.0.0.1, including ConfigDir/nginx.conf inside its http {} block.
//
// configDir is aegir's config dir for the server; empty: a new directory.
// It must be readable by www-data (see PublicDir) for the workers to serve
// files from it, such as ACME challenges.
func StartNginx(t testing.TB, configDir string) *Web {
	t.Helper()
	return startNginx(t, configDir, false)
}

// StartNginxIncludeFirst is StartNginx with aegir's include before the
// system's own server, which is no default_server (as nginx's own
// conf.d/default.conf after a conf.d/aegir.conf): the first server of the
// address answers unknown names.
func StartNginxIncludeFirst(t testing.TB, configDir string) *Web {
	t.Helper()
	return startNginx(t, configDir, true)
}

func startNginx(t testing.TB, configDir string, includeFirst bool) *Web {
	t.Helper()
	n := newWeb(t, NginxBinary, configDir)
	dir := n.Dir
	conf := filepath.Join(dir, "nginx.conf")
	errLog := filepath.Join(dir, "error.log")
	// The vhosts include "fastcgi_params" relative to nginx's conf dir, as
	// on a system install.
	params, err := os.ReadFile("/etc/nginx/fastcgi_params")
	if err != nil {
		t.Fatalf("testenv: nginx: %v; run: sudo scripts/deps.sh", err)
	}
	mustWrite(t, filepath.Join(dir, "fastcgi_params"), params)
	// aegir's include file; the glob lets nginx start before it exists.
	include := "include " + n.ConfigDir + "/nginx.con[f];"
	first, flag, last := "", " default_server", include
	if includeFirst {
		first, flag, last = include, "", ""
	}
	mustWrite(t, conf, []byte(fmt.Sprintf(`# Private nginx of a test.
user www-data;
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[2]s warn;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    %[5]s
    server {
        listen 127.0.0.1:%[3]d%[6]s;
        server_name _;
        default_type text/plain;
        return 404 "no site\n";
    }
    %[7]s
}
`, dir, errLog, n.Port, n.ConfigDir, first, flag, last)))
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	argv := []string{NginxBinary, "-p", dir, "-c", conf, "-e", errLog}
	n.TestCmd = shellLine(append(argv, "-t"))
	n.ReloadCmd = shellLine(append(argv, "-s", "reload"))
	// Ready when it listens and its pid file is written: a reload reads it.
	StartDaemon(t, "nginx", argv, []string{errLog}, func() error { return readyWithPID(n.Port, filepath.Join(dir, "nginx.pid")) })
	return n
}

// PublicDir makes a temporary directory that the web server's and
// php-fpm's workers (www-data) can enter and read, unlike t.TempDir (0700),
// and removes it when the test ends.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aegir-test-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// StartDaemon runs argv in the foreground as a child of the test, in its
// own process group, until the test ends (then SIGTERM, and SIGKILL after
// 10 s). It waits up to 15 s for ready to return nil. Its output and the
// logs are shown when the daemon fails to start or the test fails.
func StartDaemon(t testing.TB, name string, argv []string, logs []string, ready func() error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Pdeathsig: the daemon dies with a test binary that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	dump := func() string {
		s := fmt.Sprintf("%s command: %s\noutput: %s", name, shellLine(argv), out.String())
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			s += fmt.Sprintf("\n%s:\n%s", l, lastLines(string(b), 30))
		}
		return s
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("testenv: %s", dump())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("testenv: %s exited at start: %v\n%s", name, err, dump())
		default:
		}
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s not ready after 15 s: %v\n%s", name, err, dump())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyWithPID is dialOK plus a pid file that holds a number.
func readyWithPID(port int, pidFile string) error {
	if err := dialOK(port); err != nil {
		return err
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	if _, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return fmt.Errorf("pid file %s not written yet", pidFile)
	}
	return nil
}

func dialOK(port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func fileExists(p string) error {
	if _, err := os.Stat(p); err != nil {
		return err
	}
	return nil
}

func mustWrite(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// shellLine renders argv as a line for sh -c, quoting the words that need
// it. (testenv does not import pkg/provision/exec, whose tests use testenv.)
func shellLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return !strings.ContainsRune(shellSafe, r) }) {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%"

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
