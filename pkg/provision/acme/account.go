package acme

import (
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

// account loads the home's account for the directory, or makes and
// registers one. The CA is asked every time (registering an existing key
// returns the existing account), so that an account the CA forgot is
// registered again.
func (c *Client) account(ctx context.Context) (acmeapi.Account, error) {
	dir := AccountDir(c.cfg.Home, c.dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return acmeapi.Account{}, c.homeErr(err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return acmeapi.Account{}, c.homeErr(err)
	}
	defer unlock()
	keyPath := filepath.Join(dir, "account.key")
	key, err := readKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		ec, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return acmeapi.Account{}, gerr
		}
		if err = writeKey(keyPath, ec); err != nil {
			return acmeapi.Account{}, c.homeErr(err)
		}
		key = ec
		c.logf(provision.LevelInfo, "made a new ACME account key %s", keyPath)
	} else if err != nil {
		return acmeapi.Account{}, provision.Errorf(provision.ErrInternal,
			"move the file away (the CA account is made again on the next try)", "reading the ACME account key %s: %v", keyPath, err)
	}
	acct := acmeapi.Account{TermsOfServiceAgreed: true, PrivateKey: key}
	if c.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + c.cfg.Email}
	}
	var saved accountFile
	if b, err := os.ReadFile(filepath.Join(dir, "account.json")); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	acct, err = c.ac.NewAccount(ctx, acct)
	if err != nil {
		return acct, err
	}
	if saved.Location != acct.Location || saved.Email != c.cfg.Email {
		if saved.Location == "" {
			c.logf(provision.LevelInfo, "registered ACME account %s with %s", acct.Location, c.dir)
		}
		b, _ := json.MarshalIndent(accountFile{Directory: c.dir, Email: c.cfg.Email, Location: acct.Location}, "", "  ")
		if err := writePrivate(filepath.Join(dir, "account.json"), append(b, '\n')); err != nil {
			return acct, c.homeErr(err)
		}
	}
	return acct, nil
}

func (c *Client) homeErr(err error) error {
	return provision.Errorf(provision.ErrInternal, "check that aegir may write in "+filepath.Join(c.cfg.Home, "acme"), "ACME account files: %v", err)
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

func readKey(p string) (crypto.Signer, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ParseKey(b)
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

func writeKey(p string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return writePrivate(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
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
