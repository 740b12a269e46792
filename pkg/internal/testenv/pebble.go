package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Debian's pebble programs the fixture runs.
const (
	PebbleBinary       = "/usr/bin/pebble"
	ChallTestSrvBinary = "/usr/bin/pebble-challtestsrv"
)

// Pebble is a private ACME CA (Debian's pebble) for a test, with
// pebble-challtestsrv as its DNS server: every name resolves to 127.0.0.1
// unless the test says otherwise (SetA), so HTTP-01 validations go to
// 127.0.0.1:HTTPPort. Nothing leaves loopback.
type Pebble struct {
	Dir string
	// Directory is the ACME directory URL (acme_directory).
	Directory string
	// CAFile is the PEM root that signed pebble's own TLS certificate: the
	// acme_ca_file a client needs to talk to it.
	CAFile string
	// RootFile is pebble's issuing root, read from its management port:
	// what a TLS client (curl --cacert) trusts to accept the certificates
	// pebble issues.
	RootFile string
	// HTTPPort is where pebble sends HTTP-01 validations.
	HTTPPort int

	mgmt     string // pebble's management address
	challAPI string // pebble-challtestsrv's management URL
	client   *http.Client
}

// PebbleOptions configure StartPebble.
type PebbleOptions struct {
	// HTTPPort is the port pebble validates HTTP-01 challenges on (the test
	// web server's HTTP port). Required.
	HTTPPort int
	// Validity of the certificates pebble issues; 0: pebble's default.
	Validity time.Duration
}

// StartPebble starts pebble-challtestsrv (DNS only, on a free loopback
// port, answering 127.0.0.1 for every A query and nothing for AAAA) and
// pebble (directory and management API on free loopback ports, with a TLS
// certificate the fixture makes), both stopped when the test ends. Pebble
// runs with PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0 and
// PEBBLE_AUTHZREUSE=0 (every order is validated for real), and never with
// PEBBLE_VA_ALWAYS_VALID.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	Need(t, PebbleBinary, ChallTestSrvBinary)
	if o.HTTPPort == 0 {
		t.Fatal("testenv: StartPebble needs the HTTP-01 port")
	}
	dir := t.TempDir()
	p := &Pebble{Dir: dir, HTTPPort: o.HTTPPort, CAFile: filepath.Join(dir, "tls-ca.pem"), RootFile: filepath.Join(dir, "root.pem")}

	// pebble-challtestsrv: its DNS server only.
	dnsAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	challMgmt := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p.challAPI = "http://" + challMgmt
	StartDaemon(t, "pebble-challtestsrv", []string{ChallTestSrvBinary,
		"-management", challMgmt, "-dns01", dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""}, nil, func() error { return dialAddr(challMgmt) })

	// pebble's own TLS certificate, from a CA made here.
	caPEM, certPEM, keyPEM := makeTLSCert(t)
	mustWritePrivate(t, p.CAFile, caPEM)
	mustWritePrivate(t, filepath.Join(dir, "cert.pem"), certPEM)
	mustWritePrivate(t, filepath.Join(dir, "key.pem"), keyPEM)

	listen := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p.mgmt = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        p.mgmt,
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        FreePort(t), // tls-alpn-01 is not used
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      int64(o.Validity / time.Second),
	}}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	conf := filepath.Join(dir, "pebble-config.json")
	mustWritePrivate(t, conf, b)
	p.Directory = "https://" + listen + "/dir"

	argv := []string{"/usr/bin/env", "-u", "PEBBLE_VA_ALWAYS_VALID", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0",
		PebbleBinary, "-config", conf, "-dnsserver", dnsAddr}
	StartDaemon(t, "pebble", argv, nil, func() error {
		if err := dialAddr(listen); err != nil {
			return err
		}
		return dialAddr(p.mgmt)
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	root := p.get(t, "https://"+p.mgmt+"/roots/0")
	if !bytes.Contains(root, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("testenv: pebble's /roots/0 gave no certificate: %q", root)
	}
	mustWritePrivate(t, p.RootFile, root)
	return p
}

// SetA makes host (a name such as "a.test") resolve to ip instead of
// 127.0.0.1, e.g. 127.0.0.2 where nothing listens, so that its HTTP-01
// validation fails.
func (p *Pebble) SetA(t testing.TB, host, ip string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"host": host + ".", "addresses": []string{ip}})
	resp, err := p.client.Post(p.challAPI+"/add-a", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: pebble-challtestsrv add-a: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: pebble-challtestsrv add-a %s: %s", host, resp.Status)
	}
}

// ClearA undoes SetA: host resolves to 127.0.0.1 again.
func (p *Pebble) ClearA(t testing.TB, host string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"host": host + "."})
	resp, err := p.client.Post(p.challAPI+"/clear-a", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: pebble-challtestsrv clear-a: %v", err)
	}
	resp.Body.Close()
}

// Roots is a pool with pebble's issuing root, for a Go TLS client.
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(p.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

func (p *Pebble) get(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := p.client.Get(url)
	if err != nil {
		t.Fatalf("testenv: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: GET %s: %s: %s", url, resp.Status, b)
	}
	return b
}

// SelfSigned makes a self-signed ECDSA P-256 certificate for names (the
// first is its subject), valid from notBefore to notAfter: the PEM
// certificate, its PEM (PKCS#8) key, and its serial number in hex.
func SelfSigned(t testing.TB, names []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, serial string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), sn.Text(16)
}

// makeTLSCert makes a CA and a leaf for 127.0.0.1 and localhost signed by
// it, PEM-encoded.
func makeTLSCert(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aegir test pebble TLS CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func dialAddr(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func mustWritePrivate(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// String describes the CA for test logs.
func (p *Pebble) String() string {
	return fmt.Sprintf("pebble %s (HTTP-01 on port %d)", p.Directory, p.HTTPPort)
}
