package acme

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Info describes a certificate chain's leaf.
type Info struct {
	Names     []string  `json:"names"` // DNS names it covers
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Serial    string    `json:"serial"`
	// ID is a short fingerprint of the leaf (for file names).
	ID   string            `json:"id"`
	Leaf *x509.Certificate `json:"-"`
}

// ParseChain reads a PEM chain, leaf first.
func ParseChain(chainPEM []byte) (Info, error) {
	blk, rest := pem.Decode(chainPEM)
	for blk != nil && blk.Type != "CERTIFICATE" {
		blk, rest = pem.Decode(rest)
	}
	if blk == nil {
		return Info{}, errors.New("no PEM certificate found")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return Info{}, err
	}
	sum := sha256.Sum256(leaf.Raw)
	issuer := leaf.Issuer.CommonName
	if issuer == "" && len(leaf.Issuer.Organization) > 0 {
		issuer = leaf.Issuer.Organization[0]
	}
	names := append([]string(nil), leaf.DNSNames...)
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	return Info{Names: names, Issuer: issuer, NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		Serial: leaf.SerialNumber.Text(16), ID: hex.EncodeToString(sum[:6]), Leaf: leaf}, nil
}

// Missing lists the names the certificate does not cover (wildcards in the
// certificate count).
func (i Info) Missing(names []string) []string {
	var out []string
	for _, n := range names {
		if i.Leaf == nil || i.Leaf.VerifyHostname(n) != nil {
			out = append(out, n)
		}
	}
	return out
}

// RenewAt is when a certificate is due for renewal: before its expiry by
// renewBefore (default DefaultRenewBefore), or by a third of its lifetime
// for a certificate too short-lived for that.
func (i Info) RenewAt(renewBefore time.Duration) time.Time {
	if renewBefore <= 0 {
		renewBefore = DefaultRenewBefore
	}
	if third := i.NotAfter.Sub(i.NotBefore) / 3; third < renewBefore {
		renewBefore = third
	}
	return i.NotAfter.Add(-renewBefore)
}

// CheckPair checks a certificate an administrator brings before it is
// installed: the key matches the certificate, it covers every name, and it
// is valid at now. The error says which check failed.
func CheckPair(chainPEM, keyPEM []byte, names []string, now time.Time) (Info, error) {
	info, err := ParseChain(chainPEM)
	if err != nil {
		return info, fmt.Errorf("the certificate file holds no readable certificate: %v", err)
	}
	if _, err := ParseKey(keyPEM); err != nil {
		return info, fmt.Errorf("the key file holds no readable private key: %v", err)
	}
	if _, err := tls.X509KeyPair(chainPEM, keyPEM); err != nil {
		return info, fmt.Errorf("the key does not match the certificate: %v", err)
	}
	if missing := info.Missing(names); len(missing) > 0 {
		return info, fmt.Errorf("the certificate does not cover %s (it covers %s)", strings.Join(missing, ", "), strings.Join(info.Names, ", "))
	}
	if now.After(info.NotAfter) {
		return info, fmt.Errorf("the certificate expired on %s", info.NotAfter.Format(time.RFC3339))
	}
	if now.Before(info.NotBefore) {
		return info, fmt.Errorf("the certificate is not valid before %s", info.NotBefore.Format(time.RFC3339))
	}
	return info, nil
}
