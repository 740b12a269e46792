package wordpress

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

//go:embed php/wp-login-plugin.php
var loginPlugin []byte

// LoginPlugin is where aegir's login plugin lives on a WordPress
// platform, relative to its root: a must-use plugin, which WordPress loads
// for every site of the platform (aegir's dispatcher leaves WP_CONTENT_DIR
// at ROOT/wp-content, whatever a Debian wp-config.php said).
const LoginPlugin = "wp-content/mu-plugins/aegir-login.php"

// LoginLinkTTL is how long a WordPress login link made by
// LoginLink is good for.
const LoginLinkTTL = 24 * time.Hour

// EnsureLoginPlugin puts aegir's login plugin in place on the
// platform (LoginPlugin, mode 0644, owned by aegir's user as the
// platform's code and dispatcher are), unless it is there as written. The
// mu-plugins directory must be a directory, not a symbolic link (the web
// server's user may own wp-content). It reports whether it wrote the file.
func EnsureLoginPlugin(ctx context.Context, ex exec.Executor, p app.Platform, log app.Logf) (bool, error) {
	if p.Type != entities.PlatformWordPress {
		return false, fmt.Errorf("platform %s is %s, not WordPress", p.Root, p.Type)
	}
	file := path.Join(p.Root, LoginPlugin)
	dir := path.Dir(file)
	switch fi, err := ex.Lstat(ctx, dir); {
	case errors.Is(err, fs.ErrNotExist):
		if err := ex.MkdirAll(ctx, dir, 0o755); err != nil {
			return false, app.PlatformError("give aegir's user write access to "+path.Dir(dir), "create %s on %s: %v", dir, ex.Host(), err)
		}
	case err != nil:
		return false, fmt.Errorf("stat %s on %s: %w", dir, ex.Host(), err)
	case !fi.IsDir():
		return false, app.PlatformError("make "+dir+" a plain directory (move what it points to), then verify the platform",
			"%s on %s is not a directory (%s): aegir writes its login plugin only into a real directory", dir, ex.Host(), fi.Mode().Type()).
			With(entities.Do("platform.verify", "NAME"))
	}
	if fi, err := ex.Lstat(ctx, file); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o644 {
		if cur, err := app.ReadOptional(ctx, ex, file); err != nil {
			return false, err
		} else if bytes.Equal(cur, loginPlugin) {
			return false, nil
		}
	}
	if err := ex.WriteFile(ctx, file, loginPlugin, 0o644); err != nil {
		return false, app.PlatformError("give aegir's user write access to "+dir, "write %s on %s: %v", file, ex.Host(), err)
	}
	log.Printf(provision.LevelInfo, "wrote aegir's login plugin as %s", file)
	return true, nil
}

// newLoginToken makes a login token of 256 bits from crypto/rand, in
// URL-safe base64 (43 characters), and its SHA-256 in hex.
func newLoginToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	token = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:])
}

// LoginLink makes a one-time login link for a WordPress site's
// administrator (user; empty: the first administrator): aegir's login
// plugin (put in place first if it is missing) logs whoever opens it in
// as that user, once, within LoginLinkTTL, and lands on the dashboard.
// The token is made here; only its SHA-256 reaches the site (its
// database); the link carries it in its fragment (#token=), which
// browsers never send, so no access log sees it. The link is for the
// caller to print once, never to log or keep. url is the site's address
// (empty: http://DOMAIN).
func LoginLink(ctx context.Context, ex exec.Executor, p app.Platform, domain, url, user, runAs string, log app.Logf) (string, error) {
	if err := entities.ValidateAccountName("user name", user); err != nil {
		return "", provision.Errorf(provision.ErrInvalidContext, "check the user name", "login link for %s: %v", domain, err)
	}
	if p.Type == entities.PlatformWordPress {
		if _, err := EnsureLoginPlugin(ctx, ex, p, log); err != nil {
			return "", err
		}
	}
	token, hash := newLoginToken()
	var out struct{ URL, User string }
	o := app.SiteStep{Domain: domain, URL: url, User: runAs, Log: log}
	in := map[string]any{"user": user, "token_hash": hash, "ttl": int(LoginLinkTTL / time.Second)}
	if err := scripts.RunStep(ctx, ex, p, ScriptLogin, o, app.StepTimeout, in, &out); err != nil {
		return "", app.AsTaskError(err, provision.ErrCommand, "login link for "+domain)
	}
	log.Printf(provision.LevelInfo, "made a one-time login link for user %s of %s, good for %d hours: printed once, kept nowhere", out.User, domain, int(LoginLinkTTL.Hours()))
	return out.URL + "#token=" + token, nil
}
