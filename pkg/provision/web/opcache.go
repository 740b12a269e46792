package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// php-fpm's opcache keeps the scripts it compiled in shared memory and
// looks at a script's file again at most every opcache.revalidate_freq
// seconds (2 by default on Debian; never with validate_timestamps off).
// So for a moment after a task rewrote a site's settings, php-fpm may
// still run them as they were: the site answers from its old database,
// or redirects to its old address. RefreshPHP makes php-fpm drop the
// files it has compiled: it asks php-fpm itself, over FastCGI at the
// address the virtual hosts pass PHP to (from the web server, through
// the SSH connection for a remote one), to run a small script of aegir's
// that calls opcache_invalidate on each file. The script lies beside the
// first file (a directory php-fpm reads, as it reads the file) under a
// hidden name that no virtual host serves, for the length of the request.
// One request per task that rewrote settings, a few milliseconds: no
// other file, and no other site, loses its compiled code, as a reload of
// php-fpm would make them all (docs/benchmarks.md, Opcache).
//
// When php-fpm cannot be asked so (a socket the SSH user may not open,
// opcache.restrict_api), RefreshPHP waits until opcache looks at the
// files again under Debian's settings (OpcacheSettle after written).

// OpcacheSettle is how long php-fpm may go on running a PHP file as it
// was before it was rewritten, when it cannot be asked to drop it: its
// opcache looks at a file's time at most every opcache.revalidate_freq
// seconds (2 by default), and a margin.
const OpcacheSettle = 2500 * time.Millisecond

// opcacheScript is run by php-fpm: for each file of the request's
// AEGIR_OPCACHE_FILES (one per line) it says "ok" once opcache forgot it,
// "gone" for a file that no longer exists; "off" when php-fpm runs without
// opcache (nothing to forget), "refused" when opcache does not let this
// script use its API. It is never compiled into the cache itself.
const opcacheScript = `<?php
// aegir: makes php-fpm forget the compiled code of files a task rewrote.
// Run once by aegir over FastCGI, then removed.
header('Content-Type: text/plain');
if (!function_exists('opcache_invalidate') || !ini_get('opcache.enable')) {
	echo "aegir-opcache off\n";
	exit;
}
echo "aegir-opcache on\n";
foreach (explode("\n", (string) ($_SERVER['AEGIR_OPCACHE_FILES'] ?? '')) as $f) {
	if ($f === '') {
		continue;
	}
	if (!file_exists($f)) {
		@opcache_invalidate($f, true);
		echo "gone\n";
	} elseif (@opcache_invalidate($f, true)) {
		echo "ok\n";
	} else {
		echo "refused\n";
	}
}
@opcache_invalidate(__FILE__, true);
`

// RefreshPHP makes php-fpm run files (absolute paths on the web server)
// as they are now, not as it compiled them before: a task calls it after
// it rewrote PHP files, before the site is asked for its health and
// before the task reports success. written is when the files were
// written, for the wait of the fallback.
func (s *Server) RefreshPHP(ctx context.Context, written time.Time, files ...string) {
	s.RefreshPHPAt(ctx, "", "", written, files...)
}

// RefreshPHPAt is RefreshPHP through the php-fpm pool at addr (a site's
// own pool, or the shared pool of its PHP version; empty: the server's),
// whose socket user may open (empty: the web server's user, as for every
// pool aegir makes).
func (s *Server) RefreshPHPAt(ctx context.Context, addr, user string, written time.Time, files ...string) {
	if len(files) == 0 {
		return
	}
	start := time.Now()
	state, err := s.invalidate(ctx, addr, user, files)
	switch {
	case err == nil && state == "off":
		s.logf(provision.LevelDebug, "php-fpm on %s runs without opcache: nothing compiled to forget", s.ex.Host())
		return
	case err == nil:
		s.logf(provision.LevelInfo, "php-fpm on %s forgot its compiled %s (%s)", s.ex.Host(), strings.Join(files, ", "), time.Since(start).Round(time.Millisecond))
		return
	}
	wait := time.Until(written.Add(OpcacheSettle))
	s.logf(provision.LevelInfo, "cannot make php-fpm on %s forget its compiled copy of %s: %v; waiting %s, until its opcache looks at the files again (opcache.revalidate_freq 2)",
		s.ex.Host(), strings.Join(files, ", "), err, max(wait, 0).Round(time.Millisecond))
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// invalidate runs opcacheScript in php-fpm for files and says whether
// opcache is "on" (every file forgotten) or "off".
func (s *Server) invalidate(ctx context.Context, addr, user string, files []string) (string, error) {
	for _, f := range files {
		if !path.IsAbs(f) || strings.ContainsAny(f, "\x00\n") {
			return "", fmt.Errorf("not a file path: %q", f)
		}
	}
	out, err := s.runScript(ctx, addr, user, path.Dir(files[0]), opcacheScript, map[string]string{"AEGIR_OPCACHE_FILES": strings.Join(files, "\n")})
	if err != nil {
		return "", err
	}
	return opcacheAnswer(out, files)
}

// runScript runs code (a PHP script of aegir's) in php-fpm at addr (empty:
// the server's), whose socket user may open (empty: the web server's
// user), with extra among the request's parameters, and returns what it
// wrote (FastCGI stdout). The script lies in dir (a directory php-fpm
// reads) under a hidden name that no virtual host serves, for the length
// of the request.
func (s *Server) runScript(ctx context.Context, addr, user, dir, code string, extra map[string]string) ([]byte, error) {
	if user == "" {
		user = s.cfg.PHPUser
	}
	if user == "" {
		user = s.cfg.WebUser
	}
	if addr == "" {
		var err error
		if addr, err = s.phpFPM(ctx); err != nil {
			return nil, err
		}
	}
	a, err := parsePHP(addr)
	if err != nil {
		return nil, err
	}
	script := path.Join(dir, ".aegir-opcache-"+newToken()+".php")
	if err := s.ex.WriteFile(ctx, script, []byte(code), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", script, err)
	}
	defer func() { _ = s.ex.Remove(context.WithoutCancel(ctx), script) }()
	ctx, cancel := context.WithTimeout(ctx, phpTimeout)
	defer cancel()
	params := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_SOFTWARE":   "aegir",
		"REQUEST_METHOD":    "GET",
		"SCRIPT_FILENAME":   script,
		"SCRIPT_NAME":       "/" + path.Base(script),
		"REQUEST_URI":       "/" + path.Base(script),
		"DOCUMENT_ROOT":     path.Dir(script),
		"QUERY_STRING":      "",
		"CONTENT_LENGTH":    "0",
		"REMOTE_ADDR":       "127.0.0.1",
		"SERVER_NAME":       "aegir-opcache.invalid",
	}
	maps.Copy(params, extra)
	req := fcgiRequest(params)
	out, err := s.fcgiDirect(ctx, a, req)
	if err != nil && user != "" {
		// A socket only the web server's user may open (Debian's
		// listen.mode 0660), or the site's own: the request goes
		// through php-cli run as that user on the web server, which
		// relays it.
		var rerr error
		if out, rerr = s.fcgiRelay(ctx, a, user, req); rerr != nil {
			err = fmt.Errorf("%w; relayed by php as %s: %v", err, user, rerr)
		} else {
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("php-fpm at %s: %w", addr, err)
	}
	return out, nil
}

// opcacheAnswer reads the script's answer (FastCGI stdout: headers, a
// blank line, the body).
func opcacheAnswer(out []byte, files []string) (string, error) {
	_, body, ok := bytes.Cut(out, []byte("\r\n\r\n"))
	if !ok {
		body = out
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	switch {
	case len(lines) == 1 && lines[0] == "aegir-opcache off":
		return "off", nil
	case lines[0] != "aegir-opcache on":
		return "", fmt.Errorf("aegir's script did not run: %.200q", strings.TrimSpace(string(out)))
	case len(lines) != len(files)+1:
		return "", fmt.Errorf("aegir's script answered for %d of %d files", len(lines)-1, len(files))
	}
	for i, l := range lines[1:] {
		if l != "ok" && l != "gone" {
			return "", fmt.Errorf("opcache refused to forget %s (check opcache.restrict_api)", files[i])
		}
	}
	return "on", nil
}

// FastCGI record types of a request (FastCGI 1.0, section 8).
const (
	fcgiBeginRequest = 1
	fcgiEndRequest   = 3
	fcgiParams       = 4
	fcgiStdin        = 5
	fcgiStdout       = 6
	fcgiStderr       = 7
	fcgiResponder    = 1
)

// fcgiRecord writes one record of request 1.
func fcgiRecord(w *bytes.Buffer, typ byte, content []byte) {
	pad := (8 - len(content)%8) % 8
	rec := make([]byte, 8, 8+len(content)+pad)
	rec[0], rec[1] = 1, typ
	binary.BigEndian.PutUint16(rec[2:], 1)
	binary.BigEndian.PutUint16(rec[4:], uint16(len(content)))
	rec[6] = byte(pad)
	rec = append(append(rec, content...), make([]byte, pad)...)
	w.Write(rec)
}

// fcgiLen encodes a name or value length of a FastCGI name-value pair.
func fcgiLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

// fcgiDirect sends req to php-fpm from the web server (through the SSH
// connection for a remote one) and reads its answer.
func (s *Server) fcgiDirect(ctx context.Context, a phpAddr, req []byte) ([]byte, error) {
	network, target := "tcp", net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	if a.Socket != "" {
		network, target = "unix", a.Socket
	}
	conn, err := s.dial(ctx, network, target)
	if err != nil {
		return nil, fmt.Errorf("it does not take aegir's connection: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	return fcgiRead(conn)
}

// fcgiRelayCode copies a FastCGI request from stdin to php-fpm at
// argv[1] and its answer to stdout: php-fpm ends the connection with
// the request.
const fcgiRelayCode = `$s = @stream_socket_client($argv[1], $no, $msg, 10);
if (!$s) { fwrite(STDERR, "cannot connect to $argv[1]: $msg\n"); exit(1); }
stream_set_timeout($s, 10);
fwrite($s, stream_get_contents(STDIN));
while (!feof($s)) { $b = fread($s, 65536); if ($b === false || $b === '') { break; } echo $b; }`

// fcgiRelay sends req to php-fpm through php-cli run as the web
// server's user on the web server, and reads its answer.
func (s *Server) fcgiRelay(ctx context.Context, a phpAddr, user string, req []byte) ([]byte, error) {
	target := "tcp://" + net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	if a.Socket != "" {
		target = "unix://" + a.Socket
	}
	res, err := s.ex.Run(ctx, exec.Command{Name: "php", Args: []string{"-r", fcgiRelayCode, "--", target}, Shown: "-r RELAY " + exec.Quote(target),
		Stdin: bytes.NewReader(req), User: user, Timeout: phpTimeout})
	if err != nil {
		return nil, err
	}
	return fcgiRead(bytes.NewReader(res.Stdout))
}

// fcgiRequest is one responder request (id 1, the connection closed after
// it) with params and no body.
func fcgiRequest(params map[string]string) []byte {
	var buf bytes.Buffer
	fcgiRecord(&buf, fcgiBeginRequest, []byte{0, fcgiResponder, 0, 0, 0, 0, 0, 0})
	var p []byte
	for k, v := range params {
		p = fcgiLen(fcgiLen(p, len(k)), len(v))
		p = append(append(p, k...), v...)
	}
	for len(p) > 0 {
		n := min(len(p), 65528)
		fcgiRecord(&buf, fcgiParams, p[:n])
		p = p[n:]
	}
	fcgiRecord(&buf, fcgiParams, nil)
	fcgiRecord(&buf, fcgiStdin, nil)
	return buf.Bytes()
}

// fcgiRead reads the answer to a request until its end, and returns what
// the application wrote on its stdout.
func fcgiRead(r io.Reader) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("no FastCGI answer: %w", err)
		}
		if hdr[0] != 1 {
			return nil, fmt.Errorf("not a FastCGI answer (record version %d)", hdr[0])
		}
		n := int(binary.BigEndian.Uint16(hdr[4:]))
		content := make([]byte, n+int(hdr[6]))
		if _, err := io.ReadFull(r, content); err != nil {
			return nil, fmt.Errorf("FastCGI answer cut short: %w", err)
		}
		content = content[:n]
		switch hdr[1] {
		case fcgiStdout:
			stdout.Write(content)
		case fcgiStderr:
			stderr.Write(content)
		case fcgiEndRequest:
			if stdout.Len() == 0 && stderr.Len() > 0 {
				return nil, errors.New(strings.TrimSpace(stderr.String()))
			}
			return stdout.Bytes(), nil
		}
		if stdout.Len()+stderr.Len() > MaxBody {
			return nil, errors.New("FastCGI answer too long")
		}
	}
}
