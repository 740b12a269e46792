package hosting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/store"
)

// StateKnownHosts keeps the SSH host keys the masters trust in the state
// (exec.KnownHosts): a key one master accepted is trusted by every master
// sharing the state, and a key that changed is refused by all. File (the
// master's AEGIR_HOME/known_hosts) is written from the state's keys for
// OpenSSH tools (rsync's ssh), which read that file: each time a
// connection looks a host up, and when a key is recorded or forgotten.
//
// A File that aegir has not written yet (one from before the state kept
// host keys) is imported on first use: its plain lines that the state
// lacks are recorded there (a hashed line too, when it is the hash of one
// of Hosts); a line of a host the state has other keys of, none of them
// the line's (of its type or another: a key the dial would call changed),
// is not (Import says which); lines that name no host
// known (patterns, other hashed names, @revoked and @cert-authority
// markers) are kept as they are near the end of the file, for the tools;
// aegir's own connections read only its @revoked lines (Revoked), and a
// plain line of a key revoked there is not imported.
// Once aegir wrote File, the lines added after its last line (by hand)
// are imported the same way; the lines above it are the state's, written
// again from it: a key forgotten through another master is not brought
// back by this master's copy.
type StateKnownHosts struct {
	Store  *store.Store
	File   string
	Master string // the master that records keys (queue.Master)
	// Hosts are the servers' addresses (HostOf), which hashed lines are
	// matched against: a hashed line of one of them is imported.
	Hosts []string
	// Warnf, if set, is told of each line of File not imported.
	Warnf func(ImportConflict)

	mu sync.Mutex
	// mirror is what File held for each host when this process last
	// wrote or read it in full, and mirrorStat the file as it was then:
	// a lookup whose host the state and mirror agree on, of a File
	// unchanged since, need not read every key of the state.
	mirror     map[string][]string
	mirrorStat fileStamp
	// revoked are the keys File marks @revoked, as read when File was
	// revokedStat.
	revoked     []ssh.PublicKey
	revokedStat fileStamp
	revokedRead bool
}

// fileStamp tells a File changed (rewritten by another process, edited by
// hand) from the one this process wrote or read.
type fileStamp struct {
	exists bool
	size   int64
	mtime  int64
	ino    uint64
}

func stampOf(file string) fileStamp {
	fi, err := os.Stat(file)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

var _ exec.KnownHosts = (*StateKnownHosts)(nil)

// mirrorHeader starts a File written from the state; a File without it
// is imported.
const mirrorHeader = "# aegir: SSH host keys written from the state, which every master sharing it trusts.\n" +
	"# Lines changed or removed above the last line are written again from the state; forget keys through aegir.\n"

// mirrorFooter ends what aegir wrote: lines added after it (by hand:
// ssh-keyscan >> known_hosts) are imported as an old File's are.
const mirrorFooter = "# aegir: lines added below this one are recorded in the state at the next connection.\n"

// keptHeader is followed by the lines of the imported file that name no
// host plainly, kept as they were.
const keptHeader = "# aegir: kept from the file before its import (no plain host name, or a marker):\n"

// ImportConflict is a line of File not imported: the state has other
// keys of its host, none of them the line's.
type ImportConflict struct {
	Host       string
	File, Line string // the line's key: type and fingerprint
	State      string // the state's key: type, fingerprint, who recorded it
}

func (c ImportConflict) String() string {
	return fmt.Sprintf("the key %s of %s in %s was not imported: the state has %s for it, which every master trusts; "+
		"if the state's key is the wrong one, forget the server's host key and record the new one", c.Line, c.Host, c.File, c.State)
}

func (k *StateKnownHosts) String() string { return "the state" }

// Import imports what File has that aegir did not write (see
// StateKnownHosts) and writes it from the state. It returns the lines not
// imported, which Warnf is told of too.
func (k *StateKnownHosts) Import(ctx context.Context) ([]ImportConflict, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sync(ctx, nil)
}

// sync is Import, dropping the kept lines that drop says to. The caller
// holds k.mu.
func (k *StateKnownHosts) sync(ctx context.Context, drop func(string) bool) ([]ImportConflict, error) {
	old, err := os.ReadFile(k.File)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", k.File, err)
	}
	var conflicts []ImportConflict
	var kept []string
	added := old // an old File is imported whole
	if bytes.HasPrefix(old, []byte(mirrorHeader)) {
		kept = keptLines(old)
		_, added, _ = bytes.Cut(old, []byte(mirrorFooter))
	}
	revoked := revokedKeys(old)
	fresh := map[string]bool{} // hosts whose first key this import recorded
	for _, line := range strings.Split(string(added), "\n") {
		c, keep, err := k.importLine(ctx, line, revoked, fresh)
		if err != nil {
			return nil, err
		}
		conflicts = append(conflicts, c...)
		if keep {
			kept = append(kept, line)
		}
	}
	if drop != nil {
		kept = slices.DeleteFunc(kept, drop)
	}
	if err := k.write(ctx, kept); err != nil {
		return nil, err
	}
	if k.Warnf != nil {
		for _, c := range conflicts {
			k.Warnf(c)
		}
	}
	return conflicts, nil
}

// importLine records the key of one line of an old File for each of its
// hosts, and reports whether the line is kept as it is instead (it names
// no host plainly, or has a marker). The line of a key revoked (marked
// @revoked in File) is neither recorded nor kept. A key of a host the
// state has other keys of, recorded before this import (fresh: the hosts
// whose first key it recorded), is refused whatever its type, as a
// connection refuses it.
func (k *StateKnownHosts) importLine(ctx context.Context, line string, revoked []ssh.PublicKey, fresh map[string]bool) ([]ImportConflict, bool, error) {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return nil, false, nil
	}
	marker, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(t))
	if err != nil || marker != "" || len(hosts) == 0 {
		return nil, true, nil
	}
	if slices.ContainsFunc(revoked, func(r ssh.PublicKey) bool { return exec.SameKey(r, key) }) {
		return nil, false, nil
	}
	names := make([]string, 0, len(hosts))
	for _, h := range hosts {
		name := k.resolve(h)
		if name == "" {
			return nil, true, nil
		}
		names = append(names, name)
	}
	var out []ImportConflict
	for _, h := range names {
		conflict := func(recs ...store.HostKey) {
			var state []string
			for _, r := range recs {
				state = append(state, r.Type+" "+r.Fingerprint+" ("+where(r)+")")
			}
			out = append(out, ImportConflict{Host: h, File: k.File, Line: key.Type() + " " + ssh.FingerprintSHA256(key),
				State: strings.Join(state, ", ")})
		}
		if !fresh[h] {
			recs, err := k.Store.HostKeys(ctx, h)
			if err != nil {
				return nil, false, err
			}
			if len(recs) > 0 {
				if !slices.ContainsFunc(recs, func(r store.HostKey) bool { return r.Key == authorizedKey(key) }) {
					conflict(recs...)
				}
				continue
			}
		}
		rec, wrote, err := k.Store.AddHostKey(ctx, k.record(h, key))
		if err != nil {
			return nil, false, err
		}
		if wrote {
			fresh[h] = true
		}
		if rec.Key != authorizedKey(key) {
			conflict(rec)
		}
	}
	return out, false, nil
}

// revokedKeys are the keys of a known_hosts file's @revoked lines.
func revokedKeys(file []byte) []ssh.PublicKey {
	var out []ssh.PublicKey
	for _, line := range strings.Split(string(file), "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "@revoked") {
			continue
		}
		if marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(t)); err == nil && marker == "revoked" {
			out = append(out, key)
		}
	}
	return out
}

// Revoked refuses a key that File marks @revoked (exec.KnownHosts'
// connections ask before Keys), as a connection checking File did before
// the state kept host keys: a master's revocation holds on its
// connections whatever the state has. File is read again only when it
// changed since its last read.
func (k *StateKnownHosts) Revoked(host string, key ssh.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st := stampOf(k.File); !k.revokedRead || st != k.revokedStat {
		b, err := os.ReadFile(k.File)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", k.File, err)
		}
		k.revoked, k.revokedStat, k.revokedRead = revokedKeys(b), st, true
	}
	for _, r := range k.revoked {
		if exec.SameKey(r, key) {
			return fmt.Errorf("%w: the host key %s of %s is marked revoked in %s; refusing to connect; "+
				"remove that line if the key is trusted again; if not, forget the server's host key, for every master",
				exec.ErrHostKey, ssh.FingerprintSHA256(key), host, k.File)
		}
	}
	return nil
}

// resolve is the host a line's host entry names: the entry when plain,
// the one of Hosts it is the hash of when hashed, else "" (a pattern, or
// the hash of no server's address).
func (k *StateKnownHosts) resolve(entry string) string {
	if !strings.ContainsAny(entry, "|*?!") {
		return entry
	}
	if strings.HasPrefix(entry, "|1|") {
		for _, h := range k.Hosts {
			if exec.EntryNamesHost(entry, h) {
				return h
			}
		}
	}
	return ""
}

func (k *StateKnownHosts) record(host string, key ssh.PublicKey) store.HostKey {
	return store.HostKey{Host: host, Type: key.Type(), Key: authorizedKey(key), Fingerprint: ssh.FingerprintSHA256(key), AddedBy: k.Master}
}

func authorizedKey(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// where says who recorded a key and when, for messages.
func where(r store.HostKey) string {
	by := "a master"
	if r.AddedBy != "" {
		by = "master " + r.AddedBy
	}
	return fmt.Sprintf("recorded by %s at %s", by, r.AddedAt.Format("2006-01-02 15:04 UTC"))
}

// keptLines are the lines of a File aegir wrote between keptHeader and
// mirrorFooter.
func keptLines(file []byte) []string {
	_, rest, ok := bytes.Cut(file, []byte(keptHeader))
	if !ok {
		return nil
	}
	rest, _, _ = bytes.Cut(rest, []byte(mirrorFooter))
	var out []string
	for _, l := range strings.Split(string(rest), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// write writes File from the state's keys (and kept, the lines kept from
// its import), when that changes it: atomically, mode 0600. A File that
// does not exist is not created for a state with no key.
func (k *StateKnownHosts) write(ctx context.Context, kept []string) error {
	keys, err := k.Store.HostKeys(ctx, "")
	if err != nil {
		return err
	}
	old, err := os.ReadFile(k.File)
	if errors.Is(err, fs.ErrNotExist) && len(keys) == 0 && len(kept) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(mirrorHeader)
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Host != keys[j].Host {
			return keys[i].Host < keys[j].Host
		}
		return keys[i].Type < keys[j].Type
	})
	for _, r := range keys {
		b.WriteString(r.Host + " " + r.Key + "\n")
	}
	if len(kept) > 0 {
		b.WriteString(keptHeader)
		for _, l := range kept {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString(mirrorFooter)
	if string(old) != b.String() {
		if err := exec.NewLocal().WriteFile(ctx, k.File, []byte(b.String()), 0o600); err != nil {
			return fmt.Errorf("writing %s from the state's host keys: %w", k.File, err)
		}
	}
	k.remember(keys)
	return nil
}

// remember notes what File now holds for each host, and the file's stamp.
func (k *StateKnownHosts) remember(keys []store.HostKey) {
	k.mirror = map[string][]string{}
	for _, r := range keys {
		k.mirror[r.Host] = append(k.mirror[r.Host], r.Key)
	}
	k.mirrorStat = stampOf(k.File)
}

// mirrorCurrent reports whether File is as this process last left it and
// holds exactly recs for host: then the tools that follow a lookup of
// host read the state's keys of it, and the sync can wait.
func (k *StateKnownHosts) mirrorCurrent(host string, recs []store.HostKey) bool {
	if k.mirror == nil || stampOf(k.File) != k.mirrorStat {
		return false
	}
	have := k.mirror[host]
	if len(have) != len(recs) {
		return false
	}
	for _, r := range recs {
		if !slices.Contains(have, r.Key) {
			return false
		}
	}
	return true
}

// Keys are the state's keys for host (exec.KnownHosts); File is brought
// up to date with the state on the way, for the tools that follow, unless
// it is as this process left it and has the state's keys of host already
// (a key of another host changed meanwhile is written at its own lookup).
func (k *StateKnownHosts) Keys(ctx context.Context, host string) ([]exec.KnownKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	recs, err := k.Store.HostKeys(ctx, host)
	if err != nil {
		return nil, err
	}
	if !k.mirrorCurrent(host, recs) {
		if _, err := k.sync(ctx, nil); err != nil {
			return nil, err
		}
		if recs, err = k.Store.HostKeys(ctx, host); err != nil { // the sync may have imported some
			return nil, err
		}
	}
	out := make([]exec.KnownKey, 0, len(recs))
	for _, r := range recs {
		k, err := knownKey(r)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// knownKey is a key of the state as exec knows it.
func knownKey(r store.HostKey) (exec.KnownKey, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.Key))
	if err != nil {
		return exec.KnownKey{}, fmt.Errorf("the state's host key of %s (%s) is not a public key: %v", r.Host, r.Type, err)
	}
	return exec.KnownKey{Key: key, Where: where(r)}, nil
}

// Add records key as host's first key in the state (exec.KnownHosts):
// the insert decides between masters that meet the host at once with
// keys of one type, the loser's key checked against the winner's. A
// writer that then finds a key of another type recorded for host (a
// master whose first contact was given another type, made meanwhile)
// deletes its own and is refused as a changed key would be: of writers
// of different types at once, none or one keeps its key, never two.
func (k *StateKnownHosts) Add(ctx context.Context, host string, key ssh.PublicKey) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	mine := k.record(host, key)
	rec, wrote, err := k.Store.AddHostKey(ctx, mine)
	if err != nil {
		return false, err
	}
	if !wrote {
		if rec.Key == authorizedKey(key) {
			return false, nil
		}
		known, err := knownKey(rec)
		if err != nil {
			return false, err
		}
		return false, &exec.KeyConflictError{Host: host, Known: []exec.KnownKey{known}}
	}
	recs, err := k.Store.HostKeys(ctx, host)
	if err != nil {
		return false, err
	}
	var others []exec.KnownKey
	for _, r := range recs {
		if r.Type == mine.Type {
			continue
		}
		known, err := knownKey(r)
		if err != nil {
			return false, err
		}
		others = append(others, known)
	}
	if len(others) > 0 {
		if err := k.Store.DeleteHostKey(ctx, mine); err != nil {
			return false, err
		}
		return false, &exec.KeyConflictError{Host: host, Known: others}
	}
	_, err = k.sync(ctx, nil)
	return true, err
}

// Forget deletes host's keys from the state and from File, kept lines
// that name it too (exec.KnownHosts).
func (k *StateKnownHosts) Forget(ctx context.Context, host string) (int, error) {
	gone, err := k.ForgetKeys(ctx, host)
	return len(gone), err
}

// ForgetKeys is Forget, returning the keys the state had.
func (k *StateKnownHosts) ForgetKeys(ctx context.Context, host string) ([]store.HostKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.sync(ctx, nil); err != nil {
		return nil, err
	}
	gone, err := k.Store.ForgetHostKeys(ctx, host)
	if err != nil {
		return nil, err
	}
	_, err = k.sync(ctx, func(l string) bool { return exec.LineNamesHost([]byte(l), host) })
	return gone, err
}

// HostOf is the host a server's host keys are recorded under: as
// known_hosts names it ("host", "[host]:port").
func HostOf(host string, port int) string {
	if port == 0 {
		port = 22
	}
	return knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
}
