package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	acmeapi "github.com/mholt/acmez/v3/acme"

	"github.com/aegir-project/aegir/pkg/provision"
)

// Account is an ACME account with one CA. Its private key is the
// account's identity: registering the key again answers the same account.
type Account struct {
	Directory string // the CA's directory URL
	KeyPEM    []byte // the account's private key, PEM: a secret
	Location  string // the account's URL at the CA; empty until registered
	Email     string // the contact it was registered with
}

// ErrNoAccount is Accounts.Load's answer for a directory with no account.
var ErrNoAccount = errors.New("no ACME account for this directory")

// Accounts is where the ACME accounts live, one for each CA directory:
// the home's files (HomeAccounts, when Config.Accounts is nil), or a
// place several masters share, so that they use one account.
type Accounts interface {
	// Load is the account of directory, or ErrNoAccount.
	Load(ctx context.Context, directory string) (Account, error)
	// Create stores a as its directory's account unless the directory has
	// one already, and answers the account stored: a, or the one that was
	// there, whose key the caller uses instead (a's is then kept nowhere).
	// Two callers at once end with one account.
	Create(ctx context.Context, a Account) (Account, error)
	// Save records the location and email of the directory's account if
	// its key is still a's (nothing otherwise).
	Save(ctx context.Context, a Account) error
	// String says where the accounts are, for messages.
	String() string
}

// accountFile is what account.json keeps (the key is in account.key).
type accountFile struct {
	Directory string `json:"directory"`
	Email     string `json:"email,omitempty"`
	Location  string `json:"location"`
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// AccountDir is the directory of the home's account with the CA at dir:
// HOME/acme/HOST[_PORT]_PATH, e.g. acme-v02.api.letsencrypt.org_directory.
func AccountDir(home, dir string) string {
	key := dir
	if u, err := url.Parse(dir); err == nil && u.Host != "" {
		key = u.Host + u.Path
	}
	key = unsafeChars.ReplaceAllString(key, "_")
	return filepath.Join(home, "acme", key)
}

// HomeAccounts keeps the accounts in files of an aegir home:
// AccountDir/account.key (mode 0600) and account.json (its URL and
// contact), written under an flock of AccountDir/lock.
type HomeAccounts struct {
	Home string
}

var _ Accounts = HomeAccounts{}

func (h HomeAccounts) String() string { return filepath.Join(h.Home, "acme") }

// KeyFile is the file of the account key for directory.
func (h HomeAccounts) KeyFile(directory string) string {
	return filepath.Join(AccountDir(h.Home, directory), "account.key")
}

// Load reads the account of directory (Accounts).
func (h HomeAccounts) Load(_ context.Context, directory string) (Account, error) {
	dir := AccountDir(h.Home, directory)
	keyPEM, err := os.ReadFile(filepath.Join(dir, "account.key"))
	if errors.Is(err, fs.ErrNotExist) {
		return Account{}, ErrNoAccount
	}
	if err == nil {
		_, err = ParseKey(keyPEM)
	}
	if err != nil {
		return Account{}, provision.Errorf(provision.ErrInternal,
			"move the file away (the CA account is made again on the next try)", "reading the ACME account key %s: %v", filepath.Join(dir, "account.key"), err)
	}
	var saved accountFile
	if b, err := os.ReadFile(filepath.Join(dir, "account.json")); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	return Account{Directory: directory, KeyPEM: keyPEM, Location: saved.Location, Email: saved.Email}, nil
}

// Create writes a's key unless the directory has one (Accounts).
func (h HomeAccounts) Create(ctx context.Context, a Account) (Account, error) {
	unlock, err := h.lock(a.Directory)
	if err != nil {
		return Account{}, err
	}
	defer unlock()
	if had, err := h.Load(ctx, a.Directory); !errors.Is(err, ErrNoAccount) {
		return had, err
	}
	if err := writePrivate(h.KeyFile(a.Directory), a.KeyPEM); err != nil {
		return Account{}, h.err(err)
	}
	if a.Location != "" {
		return a, h.writeJSON(a)
	}
	return a, nil
}

// Save writes account.json if the key is a's (Accounts).
func (h HomeAccounts) Save(ctx context.Context, a Account) error {
	unlock, err := h.lock(a.Directory)
	if err != nil {
		return err
	}
	defer unlock()
	had, err := h.Load(ctx, a.Directory)
	if err != nil {
		return err
	}
	if !sameKey(had.KeyPEM, a.KeyPEM) {
		return nil
	}
	return h.writeJSON(a)
}

func (h HomeAccounts) writeJSON(a Account) error {
	b, _ := json.MarshalIndent(accountFile{Directory: a.Directory, Email: a.Email, Location: a.Location}, "", "  ")
	if err := writePrivate(filepath.Join(AccountDir(h.Home, a.Directory), "account.json"), append(b, '\n')); err != nil {
		return h.err(err)
	}
	return nil
}

func (h HomeAccounts) lock(directory string) (func(), error) {
	dir := AccountDir(h.Home, directory)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, h.err(err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, h.err(err)
	}
	return unlock, nil
}

func (h HomeAccounts) err(err error) error {
	return provision.Errorf(provision.ErrInternal, "check that aegir may write in "+h.String(), "ACME account files: %v", err)
}

// accounts is where the client's accounts live.
func (c *Client) accounts() Accounts {
	if c.cfg.Accounts != nil {
		return c.cfg.Accounts
	}
	return HomeAccounts{Home: c.cfg.Home}
}

// account loads the account for the directory, or makes and registers
// one. The CA is asked every time (registering an existing key returns the
// existing account), so that an account the CA forgot is registered again.
func (c *Client) account(ctx context.Context) (acmeapi.Account, error) {
	store := c.accounts()
	a, err := store.Load(ctx, c.dir)
	switch {
	case errors.Is(err, ErrNoAccount):
		if a, err = c.createAccount(ctx, store); err != nil {
			return acmeapi.Account{}, err
		}
	case err != nil:
		return acmeapi.Account{}, err
	default:
		c.homeAccountUnused(ctx, store, a)
	}
	key, err := ParseKey(a.KeyPEM)
	if err != nil {
		return acmeapi.Account{}, provision.Errorf(provision.ErrInternal,
			"replace the account there (docs/https.md says how)", "the ACME account key of %s in %s is not readable: %v", c.dir, store, err)
	}
	acct := acmeapi.Account{TermsOfServiceAgreed: true, PrivateKey: key}
	if c.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + c.cfg.Email}
	}
	acct, err = c.ac.NewAccount(ctx, acct)
	if err != nil {
		return acct, err
	}
	if a.Location != acct.Location || a.Email != c.cfg.Email {
		if a.Location == "" {
			c.logf(provision.LevelInfo, "registered ACME account %s with %s", acct.Location, c.dir)
		}
		a.Location, a.Email = acct.Location, c.cfg.Email
		if err := store.Save(ctx, a); err != nil {
			return acct, err
		}
	}
	return acct, nil
}

// createAccount stores a new account for the directory: the home's own
// when the accounts live elsewhere and the home has one (it is imported),
// otherwise a new key. When another caller stored one first, that one is
// used.
func (c *Client) createAccount(ctx context.Context, store Accounts) (Account, error) {
	mine := Account{Directory: c.dir, Email: c.cfg.Email}
	home := HomeAccounts{Home: c.cfg.Home}
	imported := false
	if _, files := store.(HomeAccounts); !files {
		local, err := home.Load(ctx, c.dir)
		switch {
		case err == nil:
			mine, imported = local, true
		case !errors.Is(err, ErrNoAccount):
			c.logf(provision.LevelWarning, "the ACME account of this home is not imported into %s: %v; a new account is made there", store, err)
		}
	}
	if !imported {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return Account{}, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(ec)
		if err != nil {
			return Account{}, err
		}
		mine.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	a, err := store.Create(ctx, mine)
	if err != nil {
		return Account{}, err
	}
	won := sameKey(a.KeyPEM, mine.KeyPEM)
	switch {
	case won && imported:
		c.logf(provision.LevelInfo, "imported the ACME account %s of %s from %s into %s: every master that shares it uses that account",
			orUnregistered(a.Location), c.dir, home.KeyFile(c.dir), store)
	case won:
		c.logf(provision.LevelInfo, "made a new ACME account key for %s in %s", c.dir, store)
	case imported:
		c.homeAccountUnused(ctx, store, a)
	}
	return a, nil
}

// homeAccountUnused says once (a note beside the home's key records that
// it was said) that the home has an account of its own for the directory
// which is left unused because store holds another one.
func (c *Client) homeAccountUnused(ctx context.Context, store Accounts, used Account) {
	home := HomeAccounts{Home: c.cfg.Home}
	if _, files := store.(HomeAccounts); files {
		return
	}
	local, err := home.Load(ctx, c.dir)
	if err != nil || sameKey(local.KeyPEM, used.KeyPEM) {
		return
	}
	note := filepath.Join(AccountDir(c.cfg.Home, c.dir), "account.unused")
	text := fmt.Sprintf("the ACME account of %s used is %s, kept in %s; this home's own account (%s, %s) is not used\n",
		c.dir, orUnregistered(used.Location), store, home.KeyFile(c.dir), orUnregistered(local.Location))
	if b, err := os.ReadFile(note); err == nil && string(b) == text {
		return
	}
	c.logf(provision.LevelInfo, "%s already holds an ACME account for %s (%s), which is used: this home's own (%s, %s) is left as it is, unused; remove it once you no longer need it",
		store, c.dir, orUnregistered(used.Location), home.KeyFile(c.dir), orUnregistered(local.Location))
	_ = writePrivate(note, []byte(text))
}

func orUnregistered(location string) string {
	if location == "" {
		return "not registered yet"
	}
	return location
}

// sameKey says whether two PEM keys are the same key.
func sameKey(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ka, err1 := ParseKey(a)
	kb, err2 := ParseKey(b)
	if err1 != nil || err2 != nil {
		return false
	}
	pa, ok := ka.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pa.Equal(kb.Public())
}

// lockDir holds an exclusive flock on dir/lock until the returned func.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// ParseKey reads a PEM private key: PKCS#8, EC or PKCS#1 RSA.
func ParseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key found")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", blk.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
}

// writePrivate writes a 0600 file atomically (created 0600, never wider).
func writePrivate(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o600)
	}
	if werr == nil {
		werr = os.Rename(tmp, p)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}
