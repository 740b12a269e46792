package drupal

import (
	"context"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// trustedHost reads back a host from a trusted_host_patterns entry of the
// form ^www\.example\.com$.
var trustedHost = regexp.MustCompile(`^\^((?:[a-z0-9-]|\\\.)+)\$$`)

func findSites(ctx context.Context, ex exec.Executor, p app.Platform, runAs string, log app.Logf) ([]app.FoundSite, error) {
	script, err := PHPScript(ScriptSites)
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
	if err := app.RunPHP(ctx, ex, ScriptSites, script, nil, app.PHPRun{Dir: p.Docroot, User: runAs, Timeout: app.StepTimeout, Log: log}, &out); err != nil {
		return nil, app.AsTaskError(err, provision.ErrPlatform, "reading the sites of "+p.Root)
	}
	var sites []app.FoundSite
	for _, s := range out.Sites {
		domain, err := entities.NormalizeDomain("site directory", s.Dir)
		if err != nil || domain != s.Dir {
			log.Printf(provision.LevelWarning, "skipped %s: its name is not a domain", path.Join(p.SitesDir(), s.Dir))
			continue
		}
		f := app.FoundSite{Domain: domain, Aegir: s.Aegir}
		hosts := append([]string{}, s.Aliases...)
		for _, t := range s.Trusted {
			if m := trustedHost.FindStringSubmatch(t); m != nil {
				hosts = append(hosts, strings.ReplaceAll(m[1], `\.`, "."))
			}
		}
		f.Aliases = app.CleanAliases(domain, hosts)
		str := func(k string) string {
			switch v := s.DB[k].(type) {
			case string:
				return v
			case float64:
				return strconv.Itoa(int(v))
			}
			return ""
		}
		f.DB = app.DB{Type: "mysql", Name: str("database"), User: str("username"), Password: str("password"), Host: str("host")}
		if str("driver") == "pgsql" {
			f.DB.Type = "postgresql"
		}
		f.DB.Port, _ = strconv.Atoi(str("port"))
		if s.DB == nil {
			log.Printf(provision.LevelWarning, "site %s has no $databases['default']['default'] in its settings.php", domain)
		}
		sites = append(sites, f)
	}
	return sites, nil
}
