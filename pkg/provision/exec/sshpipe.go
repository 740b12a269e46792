package exec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// openedMarker is the line the remote shell writes to stderr once it has
// opened a named pipe for openPipe.
const openedMarker = "aegir-pipe-open"

// openPipe streams a named pipe (FIFO) from the server through a session.
// SFTP cannot: its server reads at offsets, which a pipe refuses, and its
// open blocks the whole SFTP session until a writer comes. A shell opens
// the pipe (waiting for the writer, as opening a FIFO does), says so on
// stderr, and becomes cat; Open returns once the pipe is open.
func (s *SSH) openPipe(ctx context.Context, p string) (io.ReadCloser, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := sync.OnceFunc(func() { <-s.sem })
	sess, err := s.newSession(ctx)
	if err != nil {
		release()
		return nil, fmt.Errorf("%w: %w: %s: opening an SSH session: %v", ErrUnreachable, ErrNotStarted, s.host, err)
	}
	stdout, err1 := sess.StdoutPipe()
	stderr, err2 := sess.StderrPipe()
	script := `exec <"$1" || exit 1; echo ` + openedMarker + ` >&2; exec cat`
	c := Command{Name: "sh", Args: []string{"-c", script, "sh", p}}
	err = errors.Join(err1, err2)
	if err == nil {
		err = sess.Start(RemoteCommand(c, s.cfg.User))
	}
	if err != nil {
		sess.Close()
		release()
		return nil, fmt.Errorf("%w: %w: %s: reading %s: %v", ErrUnreachable, ErrNotStarted, s.host, p, err)
	}
	// Until Close, the end of ctx ends the stream.
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	pr := &pipeReader{s: s, path: p, sess: sess, out: stdout, release: release, stop: stop}
	errs := bufio.NewReader(stderr)
	line, _ := errs.ReadString('\n')
	if strings.TrimSpace(line) != openedMarker {
		rest, _ := io.ReadAll(io.LimitReader(errs, 4096))
		_ = pr.Close()
		msg := strings.TrimSpace(line + string(rest))
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open %s on %s: %w", p, s.host, ctx.Err())
		}
		if strings.Contains(msg, "No such file") {
			return nil, fmt.Errorf("open %s on %s: %w", p, s.host, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open %s on %s: %s", p, s.host, msg)
	}
	// What cat says later (an error) is kept for the end of the stream.
	go func() {
		b, _ := io.ReadAll(io.LimitReader(errs, tailMaxBytes))
		_, _ = io.Copy(io.Discard, errs)
		pr.mu.Lock()
		pr.errOut = b
		pr.mu.Unlock()
	}()
	return pr, nil
}

// pipeReader is the stream of openPipe.
type pipeReader struct {
	s       *SSH
	path    string
	sess    *ssh.Session
	out     io.Reader
	release func()
	stop    func() bool

	waitOnce sync.Once
	waitErr  error

	mu     sync.Mutex
	errOut []byte
	closed bool
}

// Read reads the pipe; at its end, a command that failed is an error
// rather than io.EOF.
func (r *pipeReader) Read(b []byte) (int, error) {
	n, err := r.out.Read(b)
	if err != io.EOF {
		return n, err
	}
	r.waitOnce.Do(func() { r.waitErr = r.sess.Wait() })
	if werr := r.waitErr; werr != nil {
		r.mu.Lock()
		msg := string(bytes.TrimSpace(r.errOut))
		r.mu.Unlock()
		return n, fmt.Errorf("reading %s on %s: %v %s", r.path, r.s.host, werr, msg)
	}
	return n, io.EOF
}

// Close ends the stream and frees its session.
func (r *pipeReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.stop()
	_ = r.sess.Close()
	r.release()
	return nil
}
