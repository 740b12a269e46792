package exec

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/aegir-project/aegir/pkg/entities"
)

// KnownHosts is where the SSH host keys that connections trust are kept:
// a known_hosts file by default (FileKnownHosts), or a store that several
// masters share, which the front end gives. A host is named as
// knownhosts.Normalize names it: "host" for port 22, "[host]:port" for
// another.
type KnownHosts interface {
	// Keys are the keys recorded for host; a key among them is trusted.
	Keys(ctx context.Context, host string) ([]KnownKey, error)
	// Add records key as host's first key, a first contact's, and
	// reports whether it wrote it (false: it was recorded already, by
	// another connection). When host has any other key recorded (of any
	// type: another connection's first contact, made meanwhile), it
	// writes nothing and returns a *KeyConflictError naming those, as a
	// connection refuses any key the host's known keys lack. Of callers
	// adding keys of one host at once, at most one is told its key was
	// recorded, and the host then has that key alone.
	Add(ctx context.Context, host string, key ssh.PublicKey) (bool, error)
	// Forget removes every key recorded for host and says how many.
	Forget(ctx context.Context, host string) (int, error)
	// String says where the keys are kept, for messages.
	String() string
}

// KnownKey is a host key as recorded, with where it was recorded.
type KnownKey struct {
	Key ssh.PublicKey
	// Where says where it is recorded, for messages: "FILE line N", or
	// the store's words (who recorded it, when).
	Where string
}

// KeyConflictError is an Add refused: the host has other keys recorded
// (Known).
type KeyConflictError struct {
	Host  string
	Known []KnownKey
}

func (e *KeyConflictError) Error() string {
	var old []string
	for _, k := range e.Known {
		old = append(old, describeKey(k))
	}
	return fmt.Sprintf("%s has another host key recorded: %s", e.Host, strings.Join(old, ", "))
}

func describeKey(k KnownKey) string {
	return fmt.Sprintf("%s %s (%s)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Where)
}

// SameKey reports whether a and b are the same public key.
func SameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// FileKnownHosts keeps host keys in an OpenSSH known_hosts file (File),
// as ssh does: hashed host names, patterns and markers (@revoked) are
// understood; keys are added in plain lines, the file created 0600.
type FileKnownHosts struct {
	File string
}

var _ KnownHosts = FileKnownHosts{}

// knownHostsMu serialises changes to known_hosts files within this
// process.
var knownHostsMu sync.Mutex

func (f FileKnownHosts) String() string { return f.File }

// callback loads the file afresh: another connection may have just
// recorded a key.
func (f FileKnownHosts) callback() (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(f.File); errors.Is(err, fs.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	cb, err := knownhosts.New(f.File)
	if err != nil {
		return nil, fmt.Errorf("cannot read known hosts file %s: %v", f.File, err)
	}
	return cb, nil
}

// hostAddr turns a normalized host ("h", "[h]:p") back into the host:port
// address the known_hosts library checks.
func hostAddr(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndex(host, "]:"); i > 0 {
			return net.JoinHostPort(host[1:i], host[i+2:])
		}
	}
	return net.JoinHostPort(host, "22")
}

// Keys asks the file for the keys of host with a key no host has: the
// library's answer lists every one it knows.
func (f FileKnownHosts) Keys(_ context.Context, host string) ([]KnownKey, error) {
	cb, err := f.callback()
	if err != nil {
		return nil, err
	}
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var ke *knownhosts.KeyError
	// knownhosts checks the address by name; remote only has to be set.
	err = cb(hostAddr(host), &net.TCPAddr{IP: net.IPv4zero}, probe)
	if !errors.As(err, &ke) {
		if err == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("checking the host key of %s in %s: %v", host, f.File, err)
	}
	out := make([]KnownKey, 0, len(ke.Want))
	for _, k := range ke.Want {
		out = append(out, KnownKey{Key: k.Key, Where: fmt.Sprintf("%s line %d", k.Filename, k.Line)})
	}
	return out, nil
}

// Revoked refuses a key marked @revoked in the file. A KnownHosts with a
// Revoked method has it called before Keys: a connection refuses a key
// it refuses, whatever else is recorded.
func (f FileKnownHosts) Revoked(host string, key ssh.PublicKey) error {
	cb, err := f.callback()
	if err != nil {
		return err
	}
	var re *knownhosts.RevokedError
	if errors.As(cb(hostAddr(host), &net.TCPAddr{IP: net.IPv4zero}, key), &re) {
		return fmt.Errorf("%w: the host key %s of %s is marked revoked in %s:%d; refusing to connect; "+
			"if the key is trusted again, remove that @revoked line",
			ErrHostKey, ssh.FingerprintSHA256(key), host, re.Revoked.Filename, re.Revoked.Line)
	}
	return nil
}

// staleHint says how to remove host's stale key by hand.
func (f FileKnownHosts) staleHint(host string) string {
	return fmt.Sprintf("remove the stale line with: ssh-keygen -R %s -f %s  then record the new one", Quote(host), Quote(f.File))
}

// Add appends a plain line for key, host's first (KnownHosts), creating
// the file (0600) and its directory (0700) when needed.
func (f FileKnownHosts) Add(ctx context.Context, host string, key ssh.PublicKey) (bool, error) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	known, err := f.Keys(ctx, host)
	if err != nil {
		return false, err
	}
	for _, k := range known {
		if SameKey(k.Key, key) {
			return false, nil // recorded meanwhile by another connection
		}
	}
	if len(known) > 0 {
		// Recorded meanwhile by another connection, of this type or
		// another: that first contact was the host's.
		return false, &KeyConflictError{Host: host, Known: known}
	}
	return appendKnownHost(f.File, host, key)
}

// Forget rewrites the file without the lines that name host (by name or
// hashed), atomically, keeping its mode.
func (f FileKnownHosts) Forget(_ context.Context, host string) (int, error) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	old, err := os.ReadFile(f.File)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var keep [][]byte
	n := 0
	for _, line := range bytes.SplitAfter(old, []byte("\n")) {
		if LineNamesHost(line, host) {
			n++
			continue
		}
		keep = append(keep, line)
	}
	if n == 0 {
		return 0, nil
	}
	return n, NewLocal().WriteFile(context.Background(), f.File, bytes.Join(keep, nil), 0o600)
}

// LineNamesHost reports whether a known_hosts line (not a marker line)
// names host among its hosts, plainly or hashed.
func LineNamesHost(line []byte, host string) bool {
	fields := strings.Fields(string(line))
	if len(fields) < 3 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], "@") {
		return false
	}
	for _, h := range strings.Split(fields[0], ",") {
		if EntryNamesHost(h, host) {
			return true
		}
	}
	return false
}

// EntryNamesHost reports whether one host entry of a known_hosts line
// (plain, or hashed: |1|salt|hash) is host; patterns are not matched.
func EntryNamesHost(entry, host string) bool {
	return entry == host || hashedMatch(entry, host)
}

// hashedMatch reports whether a hashed host entry (|1|salt|hash) is host.
func hashedMatch(entry, host string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(host))
	return hmac.Equal(m.Sum(nil), want)
}

// hostKeys verifies a server's host key against the known hosts and,
// when allowed, records the key of a host seen for the first time.
type hostKeys struct {
	ctx    context.Context
	known  KnownHosts
	accept bool
	server string               // the server's name in aegir, for hints
	logf   func(string, ...any) // nil: not logged
	// err is the verdict of the last check, kept because the SSH library
	// folds it into a handshake error string.
	err error
}

// algorithms returns the host key algorithms to ask the server for: the
// types of the keys already known for addr, so that a server with several
// host keys shows the one we know instead of one that looks "changed".
// Nil (the library's default list) for an unknown host.
func (h *hostKeys) algorithms(addr string) []string {
	known, err := h.known.Keys(h.ctx, knownhosts.Normalize(addr))
	if err != nil {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range known {
		t := k.Key.Type()
		if seen[t] {
			continue
		}
		seen[t] = true
		if t == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		algos = append(algos, t)
	}
	return algos
}

// check is the ssh.HostKeyCallback.
func (h *hostKeys) check(hostname string, _ net.Addr, key ssh.PublicKey) error {
	h.err = h.verify(hostname, key)
	return h.err
}

func (h *hostKeys) verify(hostname string, key ssh.PublicKey) error {
	host := knownhosts.Normalize(hostname)
	if r, ok := h.known.(interface {
		Revoked(string, ssh.PublicKey) error
	}); ok {
		if err := r.Revoked(host, key); err != nil {
			return err
		}
	}
	known, err := h.known.Keys(h.ctx, host)
	if err != nil {
		return h.unreadable(fmt.Sprintf("cannot read the known host keys (%s): %v", h.known, err))
	}
	for _, k := range known {
		if SameKey(k.Key, key) {
			return nil
		}
	}
	fp := ssh.FingerprintSHA256(key)
	if len(known) > 0 {
		return h.changedKeyError(host, key, known)
	}
	if !h.accept {
		return &HostKeyError{
			msg: fmt.Sprintf("the host key of %s is not known (%s %s, not in %s)", host, key.Type(), fp, h.known),
			hint: fmt.Sprintf("check the fingerprint with the server's admin (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on the server), "+
				"then record it", keyFileKind(key)),
			fix: []entities.Action{h.acceptAction()},
		}
	}
	recorded, err := h.known.Add(h.ctx, host, key)
	var kc *KeyConflictError
	switch {
	case errors.As(err, &kc):
		// Another connection (another master) recorded another key
		// first: that one is the host's.
		return h.changedKeyError(host, key, kc.Known)
	case err != nil:
		return h.unreadable(fmt.Sprintf("recording the host key of %s in %s: %v", host, h.known, err))
	}
	if recorded && h.logf != nil {
		h.logf("recorded the SSH host key of %s in %s: %s %s (accepted as the server's accept-host-key asked)", host, h.known, key.Type(), fp)
	}
	return nil
}

// unreadable refuses a connection whose host key could not be checked
// or recorded (the store of host keys did not answer): nothing is
// trusted; the hint says to connect again once the store answers.
func (h *hostKeys) unreadable(msg string) error {
	return &HostKeyError{msg: msg + "; the connection was refused, its host key unchecked",
		hint: fmt.Sprintf("check that %s can be read and written (for a database: that it answers), then try again", h.known)}
}

// acceptAction connects again recording a new key.
func (h *hostKeys) acceptAction() entities.Action {
	return entities.Do("server.edit", h.serverName(), "accept-host-key")
}

func (h *hostKeys) serverName() string {
	if h.server == "" {
		return "SERVER"
	}
	return h.server
}

// changedKeyError refuses key, which is not among the keys known for
// host: what is known and where, what is offered, what to do. A known
// hosts file says how to remove the stale line by hand; any other store
// is told to forget the host's keys, then record the new one.
func (h *hostKeys) changedKeyError(host string, key ssh.PublicKey, known []KnownKey) error {
	var old []string
	for _, k := range known {
		old = append(old, describeKey(k))
	}
	e := &HostKeyError{
		msg: fmt.Sprintf("the host key of %s has CHANGED: %s has %s, the server now offers %s %s. "+
			"Either the server was reinstalled or someone is intercepting the connection; refusing to connect",
			host, h.known, strings.Join(old, ", "), key.Type(), ssh.FingerprintSHA256(key)),
	}
	if s, ok := h.known.(interface{ staleHint(string) string }); ok {
		e.hint = "if you have confirmed the new key with the server's admin, " + s.staleHint(host)
		e.fix = []entities.Action{h.acceptAction()}
	} else {
		e.hint = "if you have confirmed the new key with the server's admin, forget the server's old host key and record the new one"
		e.fix = []entities.Action{entities.Do("server.edit", h.serverName(), "forget-host-key", "accept-host-key")}
	}
	return e
}

// HostKeyError is a host key refused: what is wrong, what to do and the
// action that does it. It wraps ErrHostKey.
type HostKeyError struct {
	msg, hint string
	fix       []entities.Action
}

func (e *HostKeyError) Error() string { return ErrHostKey.Error() + ": " + e.msg + "; " + e.hint }
func (e *HostKeyError) Unwrap() error { return ErrHostKey }

// Hint says what to do.
func (e *HostKeyError) Hint() string { return e.hint }

// Fix is the action that records the key.
func (e *HostKeyError) Fix() []entities.Action { return e.fix }

// keyFileKind names the host key file of a key type on a Debian server.
func keyFileKind(key ssh.PublicKey) string {
	switch key.Type() {
	case ssh.KeyAlgoED25519:
		return "ed25519"
	case ssh.KeyAlgoRSA:
		return "rsa"
	}
	return "ecdsa"
}

// appendKnownHost records key for host in file, creating the file (0600)
// and its directory (0700) when needed. It reports whether it wrote the
// line (false: another connection recorded it meanwhile). The caller
// holds knownHostsMu.
func appendKnownHost(file, host string, key ssh.PublicKey) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return false, err
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if bytes.Contains(old, []byte(line)) {
		return false, nil // recorded meanwhile by another connection
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}
