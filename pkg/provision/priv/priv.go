// Package priv is the master's side of aegir's privileged helper: the one
// program a remote server's deploy user may run as root (one sudo rule),
// with a fixed set of operations that each check their arguments against
// the helper's own configuration on the server (pkg/provision/privhelper).
//
// The helper is the aegir binary itself, installed by root as
// DefaultPath: a binary of that name runs only the helper's operations,
// never the rest of aegir. Its configuration (DefaultConfigFile) names
// the deploy user, the web server's user and group, the directories under
// which it hands files over or removes them (the roots), and php-fpm's
// pool and runtime directories; the caller gives none of these.
package priv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Name is the helper's program name: a binary of that name runs as the
// helper (cmd/aegir checks it).
const Name = "aegir-priv"

// DefaultPath is where root installs the helper on a server.
const DefaultPath = "/usr/local/sbin/" + Name

// DefaultConfigFile is the helper's configuration on the server.
const DefaultConfigFile = "/etc/aegir/priv.conf"

// Protocol is the version of the operations below; the helper's
// `version` says its own, and a master refuses another.
const Protocol = "1"

// The operations. Each answers one line on stdout (changed, unchanged,
// created, exists, ok) and exits 0; a refused argument exits 2 with one
// line naming it; a failure exits 1.
const (
	OpVersion       = "version"        // -> "aegir-priv PROTOCOL SHA256"
	OpUserAdd       = "user-add"       // DOMAIN: its site user ae-*, unless aegir's is there
	OpUserDel       = "user-del"       // DOMAIN: its site user, if aegir's
	OpPoolWrite     = "pool-write"     // DOMAIN VERSION PLATFORM_ROOT: the pool, rendered by the helper; tested
	OpPoolRemove    = "pool-remove"    // DOMAIN VERSION: the pool file and socket; tested
	OpFPMReload     = "fpm-reload"     // VERSION
	OpRuntime       = "runtime"        // DOMAIN site|shared|drop: the site's runtime directories (drop: a shared site's tmp and sessions)
	OpRuntimeRemove = "runtime-remove" // DOMAIN
	OpChown         = "chown"          // [-R] OWNER:GROUP PATH: under a root, to the deploy, web or a site user
	OpRemove        = "remove"         // PATH: a tree under a root
	OpRunAs         = "run-as"         // USER [NAME=VALUE...] -- PROGRAM ARGS...: as a site's user ae-*
	OpConfig        = "config"         // -> its configuration's roots and php-fpm directories, as JSON (HelperConfig)
)

// HelperConfig is what the helper's config operation tells of its
// configuration: what a master compares with its own (server verify).
type HelperConfig struct {
	File       string   `json:"file"` // where it is on the server
	DeployUser string   `json:"deploy_user"`
	Roots      []string `json:"roots"`
	PoolDir    string   `json:"pool_dir"`    // with {version}
	RuntimeDir string   `json:"runtime_dir"` // defaults filled in
}

// Config asks the helper its configuration (OpConfig).
func (c Client) Config(ctx context.Context) (HelperConfig, error) {
	var hc HelperConfig
	out, err := c.Run(ctx, OpConfig)
	if err != nil {
		return hc, err
	}
	if err := json.Unmarshal([]byte(out), &hc); err != nil {
		return hc, fmt.Errorf("%s %s on %s: its answer %.200q: %v", Name, OpConfig, c.Ex.Host(), out, err)
	}
	return hc, nil
}

// Exit codes of the helper.
const (
	ExitFailed  = 1
	ExitRefused = 2
)

// Client runs the helper on a server through `sudo -n`.
type Client struct {
	Ex   exec.Executor
	Path string // DefaultPath when empty
}

// Command is the command that runs op with args.
func (c Client) Command(op string, args ...string) exec.Command {
	p := c.Path
	if p == "" {
		p = DefaultPath
	}
	return exec.Command{Name: "sudo", Args: append([]string{"-n", p, op}, args...)}
}

// Run runs op and returns its answer line. A refusal or failure is an
// error that quotes the helper's message and says how to set it up when
// sudo itself refused.
func (c Client) Run(ctx context.Context, op string, args ...string) (string, error) {
	cmd := c.Command(op, args...)
	res, err := c.Ex.Run(ctx, cmd)
	if err == nil {
		return strings.TrimSpace(string(res.Stdout)), nil
	}
	msg := strings.TrimSpace(string(res.Stderr))
	var xe *exec.ExitError
	if errors.As(err, &xe) && msg == "" {
		msg = strings.TrimSpace(xe.Stderr)
	}
	if strings.Contains(msg, "sudo:") || errors.Is(err, exec.ErrNotFound) {
		return "", provision.Errorf(provision.ErrCommand, "install the helper and its sudo rule on the server (docs/remote-servers.md, step 5), then verify the server",
			"the privileged helper %s could not run on %s: %s", cmd.Args[1], c.Ex.Host(), firstLine(msg, err))
	}
	return "", fmt.Errorf("%s %s on %s: %s", Name, op, c.Ex.Host(), firstLine(msg, err))
}

func firstLine(msg string, err error) string {
	if msg == "" {
		return err.Error()
	}
	l, _, _ := strings.Cut(msg, "\n")
	return l
}

// Executor is ex with the helper behind Chown and RemoveAll: what the
// deploy user may not do itself (give a file to a site's user, remove
// what a site's PHP wrote) is asked of the helper, which checks it.
type Executor struct {
	exec.Executor
	Helper Client
}

// Run runs c; a command as a site's user (ae-*) goes through the helper's
// run-as, which becomes that user and no other, instead of sudo -u.
func (e Executor) Run(ctx context.Context, c exec.Command) (exec.Result, error) {
	if !strings.HasPrefix(c.User, entities.SiteUserPrefix) {
		return e.Executor.Run(ctx, c)
	}
	h := e.Helper.Command(OpRunAs, c.User)
	h.Args = append(h.Args, c.Env...)
	h.Args = append(append(h.Args, "--", c.Name), c.Args...)
	if c.Shown != "" {
		h.Shown = strings.Join(h.Args[:len(h.Args)-len(c.Args)], " ") + " " + c.Shown
	}
	h.Stdin, h.Dir, h.Timeout = c.Stdin, c.Dir, c.Timeout
	return e.Executor.Run(ctx, h)
}

// Dial is the wrapped executor's (a tunnel from the server).
func (e Executor) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d, ok := e.Executor.(exec.Dialer); ok {
		return d.Dial(ctx, network, addr)
	}
	return nil, fmt.Errorf("no tunnel from %s", e.Host())
}

// Chown is the executor's Chown, else the helper's chown.
func (e Executor) Chown(ctx context.Context, path, owner, group string) error {
	err := e.Executor.Chown(ctx, path, owner, group)
	var xe *exec.ExitError
	if err == nil || !errors.As(err, &xe) {
		return err
	}
	if _, herr := e.Helper.Run(ctx, OpChown, Spec(owner, group), path); herr != nil {
		return fmt.Errorf("%w; the helper too: %v", err, herr)
	}
	return nil
}

// RemoveAll is the executor's RemoveAll, else the helper's remove.
func (e Executor) RemoveAll(ctx context.Context, path string) error {
	err := e.Executor.RemoveAll(ctx, path)
	var xe *exec.ExitError
	if err == nil || !errors.As(err, &xe) {
		return err
	}
	if _, herr := e.Helper.Run(ctx, OpRemove, path); herr != nil {
		return fmt.Errorf("%w; the helper too: %v", err, herr)
	}
	return nil
}

// Spec is chown's OWNER[:GROUP].
func Spec(owner, group string) string {
	if group == "" {
		return owner
	}
	return owner + ":" + group
}

// FindProgram keeps the wrapped executor's memory of programs.
func (e Executor) FindProgram(ctx context.Context, names ...string) (string, error) {
	return exec.FindProgram(ctx, e.Executor, names...)
}

// SelfSum is the SHA-256 of the running program's file: the helper's
// version says its own, which a master compares with its own.
func SelfSum() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Check asks the helper its version, as server verify does: ok when it
// runs, speaks this Protocol and is this very binary; else a message
// that says what is missing and how to install or upgrade it.
func (c Client) Check(ctx context.Context) (ok bool, msg string) {
	p := c.Path
	if p == "" {
		p = DefaultPath
	}
	install := fmt.Sprintf("as root on the server: install -o root -g root -m 0755 aegir %s, write %s and the sudo rule (docs/remote-servers.md, step 5)", p, DefaultConfigFile)
	out, err := c.Run(ctx, OpVersion)
	if err != nil {
		return false, fmt.Sprintf("the privileged helper %s does not run on %s (%v): shared sites are hosted without it, isolated sites cannot be; to have them, %s",
			p, c.Ex.Host(), err, install)
	}
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != Name || f[1] != Protocol {
		return false, fmt.Sprintf("the privileged helper %s on %s answers %q, not protocol %s: upgrade it, %s", p, c.Ex.Host(), out, Protocol, install)
	}
	if mine, err := SelfSum(); err == nil && mine != f[2] {
		return true, fmt.Sprintf("the privileged helper %s on %s is another build of aegir (SHA-256 %.12s, this one %.12s): it works; to upgrade it, copy this aegir there the same way (%s)",
			p, c.Ex.Host(), f[2], mine, install)
	}
	return true, fmt.Sprintf("the privileged helper %s on %s is this aegir (protocol %s)", p, c.Ex.Host(), Protocol)
}
