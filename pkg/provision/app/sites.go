package app

import (
	"context"
	"regexp"
	"sort"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
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
	d, err := p.findDriver()
	if err != nil {
		return nil, err
	}
	sites, err := d.FindSites(ctx, ex, p, runAs, log)
	sort.Slice(sites, func(i, j int) bool { return sites[i].Domain < sites[j].Domain })
	return sites, err
}

// portPrefix is the "PORT." that sites.php puts before a host name to
// mean HOST:PORT.
var portPrefix = regexp.MustCompile(`^[0-9]+\.`)

// CleanAliases keeps the distinct valid domains of hosts other than
// domain, without sites.php's port prefixes.
func CleanAliases(domain string, hosts []string) []string {
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
