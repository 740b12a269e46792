package app

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// DB is how a site reaches its database.
type DB struct {
	Type     string // mariadb, mysql or postgresql
	Name     string
	User     string
	Password string // secret
	Host     string
	Port     int // 0: the driver's default
}

// driver is the Drupal name of the database driver: mysql or pgsql.
func (d DB) PDODriver() (string, error) {
	switch d.Type {
	case "mariadb", "mysql", "":
		return "mysql", nil
	case "postgresql", "pgsql", "postgres":
		return "pgsql", nil
	}
	return "", fmt.Errorf("unknown database type %q (want mariadb, mysql or postgresql)", d.Type)
}

func (d DB) Check() error {
	if _, err := d.PDODriver(); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"database name", d.Name}, {"database user", d.User}, {"database host", d.Host}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{{"database name", d.Name}, {"database user", d.User}, {"database password", d.Password}, {"database host", d.Host}} {
		if err := CheckPHPValue(f.name, f.v); err != nil {
			return err
		}
	}
	if d.Port < 0 || d.Port > 65535 {
		return fmt.Errorf("database port %d is not a port number", d.Port)
	}
	return nil
}

// Owner says who owns the files aegir writes for a site. The settings
// file belongs to aegir's user and the web server's group (mode 0440); the
// files directories belong to the web server user.
type Owner struct {
	WebUser  string // e.g. www-data; empty: leave ownership as it is
	WebGroup string // e.g. www-data; empty: leave the group as it is
}

// settingsMode is the mode of a written settings file: read-only, and
// readable by the web server through its group.
const settingsMode = 0o440

// WriteConfig writes a settings file with settingsMode and the web
// server's group, unless it already holds exactly b.
func WriteConfig(ctx context.Context, ex exec.Executor, file string, old, b []byte, o Owner) (bool, error) {
	changed := !bytes.Equal(old, b)
	if changed {
		if err := ex.WriteFile(ctx, file, b, settingsMode); err != nil {
			return false, fmt.Errorf("write %s on %s: %w", file, ex.Host(), err)
		}
	}
	if o.WebGroup != "" {
		if err := ex.Chown(ctx, file, "", o.WebGroup); err != nil {
			return changed, fmt.Errorf("give %s to group %s on %s: %w", file, o.WebGroup, ex.Host(), err)
		}
	}
	return changed, nil
}

// CheckDomains checks a site's domain (normalised, RFC 1123) and its
// aliases (the same, and not the domain).
func CheckDomains(domain string, aliases []string) error {
	for i, d := range append([]string{domain}, aliases...) {
		field := "domain"
		if i > 0 {
			field = "alias"
		}
		n, err := entities.NormalizeDomain(field, d)
		if err != nil {
			return err
		}
		if n != d {
			return fmt.Errorf("%s %q is not in its normal form %q", field, d, n)
		}
		if i > 0 && d == domain {
			return fmt.Errorf("alias %q is the site's own domain", d)
		}
	}
	return nil
}

// SiteURL checks and normalises a site's address (no trailing slash);
// empty is http://DOMAIN.
func SiteURL(domain, raw string) (string, error) {
	if raw == "" {
		return "http://" + domain, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("site URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("site URL %q must be http:// or https:// with a host and nothing but a path", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
