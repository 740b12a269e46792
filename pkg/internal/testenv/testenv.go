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
	"sync"
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

// ServeTCP listens on a loopback port until the test ends and hands each
// connection to handle (in a goroutine of its own); it returns the
// listener's address.
func ServeTCP(t testing.TB, handle func(net.Conn)) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// Silent accepts connections and never answers, until the test ends: a
// port that a firewall or a wedged server holds open.
func Silent(t testing.TB) *net.TCPAddr {
	t.Helper()
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ServeTCP(t, func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
}
