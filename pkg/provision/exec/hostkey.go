package exec

import (
	"bytes"
	"crypto/ed25519"
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

// hostKeys verifies a server's host key against a known_hosts file and,
// when allowed, records the key of a host seen for the first time.
type hostKeys struct {
	file   string
	accept bool
	server string               // the server's name in aegir, for hints
	logf   func(string, ...any) // nil: not logged
	// err is the verdict of the last check, kept because the SSH library
	// folds it into a handshake error string.
	err error
}

// knownHostsMu serialises appends to known_hosts files within this process.
var knownHostsMu sync.Mutex

// callback loads the file afresh: another connection may have just
// recorded a key.
func (h *hostKeys) load() (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(h.file); errors.Is(err, fs.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	cb, err := knownhosts.New(h.file)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read known hosts file %s: %v", ErrHostKey, h.file, err)
	}
	return cb, nil
}

// algorithms returns the host key algorithms to ask the server for: the
// types of the keys already known for addr, so that a server with several
// host keys shows the one we know instead of one that looks "changed".
// Nil (the library's default list) for an unknown host.
func (h *hostKeys) algorithms(addr string) []string {
	cb, err := h.load()
	if err != nil {
		return nil
	}
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var ke *knownhosts.KeyError
	// knownhosts checks the address by name; remote only has to be set.
	if !errors.As(cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
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
func (h *hostKeys) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	h.err = h.verify(hostname, remote, key)
	return h.err
}

func (h *hostKeys) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := h.load()
	if err != nil {
		return err
	}
	err = cb(hostname, remote, key)
	if err == nil {
		return nil
	}
	host := knownhosts.Normalize(hostname)
	fp := ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%w: the host key %s of %s is marked revoked in %s:%d; refusing to connect",
			ErrHostKey, fp, host, re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return changedKeyError(host, key, ke.Want, h.file, h.acceptAction())
	case errors.As(err, &ke):
		if !h.accept {
			return &HostKeyError{
				msg: fmt.Sprintf("the host key of %s is not known (%s %s, not in %s)", host, key.Type(), fp, h.file),
				hint: fmt.Sprintf("check the fingerprint with the server's admin (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on the server), "+
					"then record it", keyFileKind(key)),
				fix: []entities.Action{h.acceptAction()},
			}
		}
		recorded, err := appendKnownHost(h.file, host, key)
		if err == nil && recorded && h.logf != nil {
			h.logf("recorded the SSH host key of %s in %s: %s %s (accepted as the server's accept-host-key asked)", host, h.file, key.Type(), fp)
		}
		return err
	}
	return fmt.Errorf("%w: checking the host key of %s: %v", ErrHostKey, host, err)
}

// acceptAction connects again recording a new key.
func (h *hostKeys) acceptAction() entities.Action {
	name := h.server
	if name == "" {
		name = "SERVER"
	}
	return entities.Do("server.edit", name, "accept-host-key")
}

func changedKeyError(host string, key ssh.PublicKey, want []knownhosts.KnownKey, file string, accept entities.Action) error {
	var old []string
	for _, k := range want {
		old = append(old, fmt.Sprintf("%s %s (%s line %d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	return &HostKeyError{
		msg: fmt.Sprintf("the host key of %s has CHANGED: known_hosts has %s, the server now offers %s %s. "+
			"Either the server was reinstalled or someone is intercepting the connection; refusing to connect",
			host, strings.Join(old, ", "), key.Type(), ssh.FingerprintSHA256(key)),
		hint: fmt.Sprintf("if you have confirmed the new key with the server's admin, remove the stale line with: "+
			"ssh-keygen -R %s -f %s  then record the new one", Quote(host), Quote(file)),
		fix: []entities.Action{accept},
	}
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
// line (false: another connection recorded it meanwhile).
func appendKnownHost(file, host string, key ssh.PublicKey) (bool, error) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return false, fmt.Errorf("%w: recording the host key of %s: %v", ErrHostKey, host, err)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%w: recording the host key of %s: %v", ErrHostKey, host, err)
	}
	if bytes.Contains(old, []byte(line)) {
		return false, nil // recorded meanwhile by another connection
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("%w: recording the host key of %s: %v", ErrHostKey, host, err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return false, fmt.Errorf("%w: recording the host key of %s in %s: %v", ErrHostKey, host, file, err)
	}
	return true, f.Close()
}
