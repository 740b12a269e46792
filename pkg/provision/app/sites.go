package app

import (
	"context"
	"fmt"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// FoundSite is a site found on a platform's disk, for importing it.
type FoundSite struct {
	Domain  string   `json:"domain"`
	Aliases []string `json:"aliases"`
	// DB is the database its settings name. Type is "mysql" or
	// "postgresql" (Drupal's driver says no more than that).
	DB DB `json:"-"`
	// Aegir says whether aegir wrote its settings.
	Aegir bool `json:"aegir"`
}

// FindSites lists the sites a platform holds, with their aliases and
// database: for Drupal every sites/DOMAIN/settings.php (not default or
// all; aliases from sites/sites.php and from trusted_host_patterns of the
// form ^host$; a leading "PORT." of sites.php is dropped), read by
// including it with php-cli as runAs (the web server
// user: settings.php is the site's code); for WordPress the site
// configurations aegir wrote in wp-content/aegir-sites. Directories whose
// name is not a domain are skipped with a warning. Each way is one command
// on the server.
func FindSites(ctx context.Context, ex exec.Executor, p Platform, runAs string, log Logf) ([]FoundSite, error) {
	d, err := p.driver()
	if err != nil {
		return nil, err
	}
	sites, err := d.FindSites(ctx, ex, p, runAs, log)
	sort.Slice(sites, func(i, j int) bool { return sites[i].Domain < sites[j].Domain })
	return sites, err
}

// trustedHost reads back a host from a trusted_host_patterns entry of the
// form ^www\.example\.com$.
var trustedHost = regexp.MustCompile(`^\^((?:[a-z0-9-]|\\\.)+)\$$`)

func findDrupalSites(ctx context.Context, ex exec.Executor, p Platform, runAs string, log Logf) ([]FoundSite, error) {
	script, err := PHPScript(ScriptDrupalSites)
	if err != nil {
		return nil, err
	}
	var out struct {
		Sites []struct {
			Dir     string
			Aegir   bool
			Aliases []string
			Trusted []string
			DB      map[string]any
		}
	}
	if err := runPHP(ctx, ex, ScriptDrupalSites, script, nil, phpRun{Dir: p.Docroot, User: runAs, Timeout: stepTimeout, Log: log}, &out); err != nil {
		return nil, asTaskError(err, provision.ErrPlatform, "reading the sites of "+p.Root)
	}
	var sites []FoundSite
	for _, s := range out.Sites {
		domain, err := entities.NormalizeDomain("site directory", s.Dir)
		if err != nil || domain != s.Dir {
			log.log(provision.LevelWarning, "skipped %s: its name is not a domain", path.Join(p.SitesDir(), s.Dir))
			continue
		}
		f := FoundSite{Domain: domain, Aegir: s.Aegir}
		hosts := append([]string{}, s.Aliases...)
		for _, t := range s.Trusted {
			if m := trustedHost.FindStringSubmatch(t); m != nil {
				hosts = append(hosts, strings.ReplaceAll(m[1], `\.`, "."))
			}
		}
		f.Aliases = cleanAliases(domain, hosts)
		str := func(k string) string {
			switch v := s.DB[k].(type) {
			case string:
				return v
			case float64:
				return strconv.Itoa(int(v))
			}
			return ""
		}
		f.DB = DB{Type: "mysql", Name: str("database"), User: str("username"), Password: str("password"), Host: str("host")}
		if str("driver") == "pgsql" {
			f.DB.Type = "postgresql"
		}
		f.DB.Port, _ = strconv.Atoi(str("port"))
		if s.DB == nil {
			log.log(provision.LevelWarning, "site %s has no $databases['default']['default'] in its settings.php", domain)
		}
		sites = append(sites, f)
	}
	return sites, nil
}

// portPrefix is the "PORT." that sites.php puts before a host name to
// mean HOST:PORT.
var portPrefix = regexp.MustCompile(`^[0-9]+\.`)

// cleanAliases keeps the distinct valid domains of hosts other than
// domain, without sites.php's port prefixes.
func cleanAliases(domain string, hosts []string) []string {
	seen := map[string]bool{domain: true}
	var out []string
	for _, h := range hosts {
		if p := portPrefix.FindString(h); p != "" && strings.Contains(h[len(p):], ".") {
			h = h[len(p):]
		}
		if d, err := entities.NormalizeDomain("alias", h); err == nil && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// wordPressSitesScript prints every .php file of the sites directory ($1)
// with the record marker $2, as drupalScript does.
const wordPressSitesScript = `cd -- "$1" || exit 3
m=$2
set -- *.php
[ -e "$1" ] || exit 0
exec awk -v m="$m" 'FNR==1{print m " F " FILENAME} {print}' "$@"
`

func findWordPressSites(ctx context.Context, ex exec.Executor, p Platform, log Logf) ([]FoundSite, error) {
	mark := newMarker()
	res, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", wordPressSitesScript, "aegir-sites", p.SitesDir(), mark}, Timeout: checkTimeout})
	if err != nil {
		return nil, fmt.Errorf("list the sites of %s on %s: %w", p.Root, ex.Host(), err)
	}
	var sites []FoundSite
	for _, f := range parseRecords(res.Stdout, mark) {
		d := phpDefines(f.data)
		domain := d["AEGIR_SITE"]
		if domain == "" || f.rel != domain+".php" {
			continue // an alias's file, or not a site's configuration
		}
		if n, err := entities.NormalizeDomain("site", domain); err != nil || n != domain {
			log.log(provision.LevelWarning, "skipped %s: %q is not a domain", f.rel, domain)
			continue
		}
		db := DB{Type: "mysql", Name: d["DB_NAME"], User: d["DB_USER"], Password: d["DB_PASSWORD"], Host: d["DB_HOST"]}
		if h, port, err := net.SplitHostPort(db.Host); err == nil {
			db.Host = h
			db.Port, _ = strconv.Atoi(port)
		}
		sites = append(sites, FoundSite{Domain: domain, Aliases: cleanAliases(domain, splitList(d["AEGIR_ALIASES"])), DB: db, Aegir: true})
	}
	return sites, nil
}
