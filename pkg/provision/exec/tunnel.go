package exec

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Dialer is an executor that can open network connections from its server:
// a tunnel through the SSH connection (the "direct-tcpip" and
// "direct-streamlocal" channels that `ssh -L` uses). The database admin
// connection and cron's HTTP requests reach services that listen only on
// the server's loopback address this way.
type Dialer interface {
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ Dialer = (*SSH)(nil)

// Dial connects from the server to addr: network "tcp" (host:port, as the
// server resolves it) or "unix" (a socket path on the server). The
// connection supports deadlines and ends with the SSH connection.
func (s *SSH) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := s.client.DialContext(ctx, network, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tunnel to %s through %s: %w", addr, s.host, ctx.Err())
		}
		return nil, fmt.Errorf("%w: tunnel to %s (%s) through %s: %v; check that something listens on %s on that server "+
			"and that its sshd allows forwarding (AllowTcpForwarding, AllowStreamLocalForwarding in sshd_config)",
			ErrUnreachable, addr, network, s.host, err, addr)
	}
	return withDeadlines(c), nil
}

// Alive reports whether the connection still answers: one keepalive
// request, as OpenSSH's ServerAliveInterval sends, bounded by ctx and 10 s.
func (s *SSH) Alive(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := s.client.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil
	case <-ctx.Done():
		return false
	}
}

// Config returns the settings the connection was made with, defaults
// filled in, so that another client (rsync's ssh) can connect the same
// way: same user, key and known_hosts file.
func (s *SSH) Config() SSHConfig { return s.cfg }

// withDeadlines gives a tunnelled connection, whose SSH channel has no
// deadlines, the deadlines database drivers rely on to cancel: the caller
// gets one end of a net.Pipe, and two goroutines copy between the other
// end and the channel. Closing either side closes both.
func withDeadlines(ch net.Conn) net.Conn {
	app, mine := net.Pipe()
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			mine.Close()
			ch.Close()
		})
	}
	go func() { _, _ = io.Copy(mine, ch); closeAll() }()
	go func() { _, _ = io.Copy(ch, mine); closeAll() }()
	return &tunnelConn{Conn: app, remote: ch.RemoteAddr()}
}

// tunnelConn is the caller's end of a tunnel: a pipe that names the
// address it leads to.
type tunnelConn struct {
	net.Conn
	remote net.Addr
}

func (c *tunnelConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}
