package wordpress

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// sitesScript prints every .php file of the sites directory ($1)
// with the record marker $2, as drupalScript does.
const sitesScript = `cd -- "$1" || exit 3
m=$2
set -- *.php
[ -e "$1" ] || exit 0
exec awk -v m="$m" 'FNR==1{print m " F " FILENAME} {print}' "$@"
`

func findSites(ctx context.Context, ex exec.Executor, p app.Platform, log app.Logf) ([]app.FoundSite, error) {
	mark := app.NewMarker()
	res, err := ex.Run(ctx, exec.Command{Name: "sh", Args: []string{"-c", sitesScript, "aegir-sites", p.SitesDir(), mark}, Timeout: app.CheckTimeout})
	if err != nil {
		return nil, fmt.Errorf("list the sites of %s on %s: %w", p.Root, ex.Host(), err)
	}
	var sites []app.FoundSite
	for _, f := range app.ParseRecords(res.Stdout, mark) {
		d := app.PHPDefines(f.Data)
		domain := d["AEGIR_SITE"]
		if domain == "" || f.Rel != domain+".php" {
			continue // an alias's file, or not a site's configuration
		}
		if n, err := entities.NormalizeDomain("site", domain); err != nil || n != domain {
			log.Printf(provision.LevelWarning, "skipped %s: %q is not a domain", f.Rel, domain)
			continue
		}
		db := app.DB{Type: "mysql", Name: d["DB_NAME"], User: d["DB_USER"], Password: d["DB_PASSWORD"], Host: d["DB_HOST"]}
		if h, port, err := net.SplitHostPort(db.Host); err == nil {
			db.Host = h
			db.Port, _ = strconv.Atoi(port)
		}
		sites = append(sites, app.FoundSite{Domain: domain, Aliases: app.CleanAliases(domain, app.SplitList(d["AEGIR_ALIASES"])), DB: db, Aegir: true})
	}
	return sites, nil
}
