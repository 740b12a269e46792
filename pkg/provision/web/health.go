package web

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// ErrNotChecked is wrapped by a check that could not be made from where
// aegir reaches the server (a socket its SSH user may not open), as
// opposed to one that failed.
var ErrNotChecked = errors.New("could not be checked")

// ProbeTimeout bounds one health request or php-fpm check.
const ProbeTimeout = 30 * time.Second

// phpTimeout bounds the php-fpm check: its workers answer at once.
const phpTimeout = 10 * time.Second

// Answer is the web server's answer to one request.
type Answer struct {
	Code     int
	Duration time.Duration // until the body (its first MaxBody bytes) was read
	Location string
	Body     []byte // the first MaxBody bytes
}

// MaxBody is how much of an answer's body Request keeps.
const MaxBody = 64 << 10

// dial opens a connection from the web server: directly on this machine,
// through the SSH connection on a remote one.
func (s *Server) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d, ok := s.ex.(exec.Dialer); ok && !s.ex.IsLocal() {
		return d.Dial(ctx, network, addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// DialFunc opens connections from the web server (see dial): what a
// database login made "as the site" goes through.
func (s *Server) DialFunc() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, ok := s.ex.(exec.Dialer); ok && !s.ex.IsLocal() {
		return s.dial
	}
	return nil
}

// ListenAddr is the address requests to the server's virtual hosts go to
// on the given scheme: the address they listen on (any: the loopback).
func (s *Server) ListenAddr(scheme string) string {
	host := s.cfg.ListenIP
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	port := s.cfg.HTTPPort
	if scheme == "https" {
		port = s.cfg.HTTPSPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Request asks the web server for path with Host host (and SNI name, for
// https), on the address its virtual hosts listen on, from the server
// itself (through its SSH connection when it is remote), so that a server
// that listens only on its loopback, or that a firewall keeps from the
// master, answers too. Redirects are not followed; the certificate is not
// checked (the name is the site's, a CA only its visitors trust is fine).
//
// A connection the server drops before it answers (a reload's old worker
// closes those it accepted and had not read: "unexpected EOF", a reset)
// is tried again on a new one, up to droppedTries times in all: with
// several tasks reloading one server, a check would else fail on a reload
// that is not its own.
func (s *Server) Request(ctx context.Context, scheme, host, path, agent string, timeout time.Duration) (*Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for try := 1; ; try++ {
		a, err := s.request(ctx, scheme, host, path, agent)
		if err == nil || try == droppedTries || ctx.Err() != nil || !dropped(err) {
			return a, err
		}
		s.logf(provision.LevelDebug, "%s://%s%s: the connection was dropped (%v); asking again", scheme, host, path, err)
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// droppedTries is how many times Request asks on a dropped connection.
const droppedTries = 5

// dropped says whether err is a connection the server closed or reset
// without an answer.
func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s *Server) request(ctx context.Context, scheme, host, path, agent string) (*Answer, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", scheme+"://"+s.ListenAddr(scheme)+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	req.Header.Set("User-Agent", agent)
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: name, InsecureSkipVerify: true}, DialContext: s.dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Transport: tr}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, err
	}
	return &Answer{Code: resp.StatusCode, Duration: time.Since(start), Location: resp.Header.Get("Location"), Body: body}, nil
}

// CheckAnswers checks that the web server answers a request on its HTTP
// port (any status: a name it serves no site for still gets an answer).
func (s *Server) CheckAnswers(ctx context.Context) (*Answer, error) {
	a, err := s.Request(ctx, "http", "aegir-verify.invalid", "/", "aegir-verify", ProbeTimeout)
	if err != nil {
		return nil, s.errf(provision.ErrUnreachable,
			fmt.Sprintf("start %s on %s, and check that it listens on %s (the server's http-port and http-listen-ip)", s.cfg.Type, s.ex.Host(), s.ListenAddr("http")),
			err, "%s on %s does not answer on %s", s.cfg.Type, s.ex.Host(), s.ListenAddr("http"))
	}
	s.logf(provision.LevelInfo, "%s answers on %s (HTTP %d in %s)", s.cfg.Type, s.ListenAddr("http"), a.Code, a.Duration.Round(time.Millisecond))
	return a, nil
}

// FastCGI record types of a management request (FastCGI 1.0, section 4.1).
const (
	fcgiTypeGetValues       = 9
	fcgiTypeGetValuesResult = 10
)

// CheckPHP checks that php-fpm answers at the address the virtual hosts
// pass PHP to: it connects there from the web server and asks
// FCGI_GET_VALUES, which php-fpm's workers answer without running any
// script. It returns the address. A socket aegir's SSH user may not open
// is an error wrapping ErrNotChecked.
func (s *Server) CheckPHP(ctx context.Context) (string, error) {
	addr, err := s.phpFPM(ctx)
	if err != nil {
		return "", err
	}
	return addr, s.CheckPHPAt(ctx, addr)
}

// CheckPHPAt is CheckPHP at addr: a site's own pool, or the shared pool
// of the PHP version it runs.
func (s *Server) CheckPHPAt(ctx context.Context, addr string) error {
	a, err := parsePHP(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, phpTimeout)
	defer cancel()
	hint := fmt.Sprintf("start php-fpm on %s (systemctl start php8.2-fpm, or the version installed), or set the address it listens on; then verify the site", s.ex.Host())
	fix := []entities.Action{entities.Do("server.edit", s.name(), "php-fpm=SOCKET|HOST:PORT"), entities.Do("site.verify", "DOMAIN")}
	network, target := "tcp", net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	if a.Socket != "" {
		network, target = "unix", a.Socket
		fi, err := s.ex.Stat(ctx, a.Socket)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return s.errf(provision.ErrUnreachable, hint, nil, "php-fpm does not answer at %s on %s: no such socket", addr, s.ex.Host()).With(fix...)
		case err == nil && fi.Mode()&fs.ModeSocket == 0:
			return s.errf(provision.ErrUnreachable, hint, nil, "php-fpm does not answer at %s on %s: it is not a socket", addr, s.ex.Host()).With(fix...)
		}
	}
	conn, err := s.dial(ctx, network, target)
	if err != nil {
		if a.Socket != "" && !s.ex.IsLocal() {
			return fmt.Errorf("php-fpm at %s on %s %w through SSH: %v", addr, s.ex.Host(), ErrNotChecked, err)
		}
		return s.errf(provision.ErrUnreachable, hint, err, "php-fpm does not answer at %s on %s", addr, s.ex.Host()).With(fix...)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := fcgiGetValues(conn); err != nil {
		return s.errf(provision.ErrUnreachable, hint+" (the address must be php-fpm's own, not the web server's)", err,
			"%s on %s does not answer as php-fpm does (FastCGI)", addr, s.ex.Host()).With(fix...)
	}
	return nil
}

// fcgiGetValues sends an FCGI_GET_VALUES request for FCGI_MPXS_CONNS and
// reads the header of the FCGI_GET_VALUES_RESULT record.
func fcgiGetValues(rw io.ReadWriter) error {
	name := "FCGI_MPXS_CONNS"
	body := append([]byte{byte(len(name)), 0}, name...)
	pad := (8 - len(body)%8) % 8
	rec := make([]byte, 8, 8+len(body)+pad)
	rec[0], rec[1] = 1, fcgiTypeGetValues
	binary.BigEndian.PutUint16(rec[4:], uint16(len(body)))
	rec[6] = byte(pad)
	rec = append(append(rec, body...), make([]byte, pad)...)
	if _, err := rw.Write(rec); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return fmt.Errorf("no FastCGI answer: %w", err)
	}
	if hdr[0] != 1 || hdr[1] != fcgiTypeGetValuesResult {
		return fmt.Errorf("not a FastCGI answer (record version %d, type %d)", hdr[0], hdr[1])
	}
	return nil
}
