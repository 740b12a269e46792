// Package testenv starts the real components aegir's tests talk to (sshd,
// nginx, apache, php-fpm) as private instances on loopback ports, each in
// its own temporary directory, and stops them when the test ends.
//
// Nothing here is a mock: the programs are Debian's, installed by
// scripts/deps.sh. A missing program fails the test with the command that
// installs it; it never skips silently.
package testenv

import (
	"net"
	"os/exec"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that is free right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: no free port on 127.0.0.1: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Need fails the test unless every program is on PATH (or at the given path).
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("testenv: %s is not installed; run: sudo scripts/deps.sh", p)
		}
	}
}
