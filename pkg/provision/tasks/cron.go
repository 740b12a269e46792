package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() {
	engine.Register("site.cron", siteCron)
	engine.Register("site.stats", siteStats)
}

// cronTimeout bounds one site's cron run.
const cronTimeout = 5 * time.Minute

// siteCron runs a site's cron. Drupal: its own cron run through aegir's
// PHP step as the web server user (drupal_cron_run(); 8+ the cron
// service), or the platform's drush when one is configured. Not through
// the site's URL: that needs the cron key from the database, fails for a
// disabled site (the web server answers its "disabled" page) and runs
// under the web server's PHP time limit, and when PHP itself fails (a
// missing extension, the database refusing) the URL way fails too, with
// less to say. WordPress: wp-cron.php through the site's URL, as a
// visitor's request starts it.
func siteCron(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	return nil, s.p.Driver.Cron(ctx, s.ex, s.p, s.appSite())
}

// visit requests path from the site's web server with the site's domain
// as Host and returns the status code (web.Server.Request: from the web
// server itself, so that a server whose sites a firewall keeps from the
// master, or that listens only on its loopback, runs its cron too).
func (s *site) visit(ctx context.Context, path string) (int, error) {
	scheme := "http"
	if s.c.Site.HTTPS.Mode == entities.HTTPSRequired {
		scheme = "https"
	}
	a, err := s.ws.Request(ctx, scheme, s.c.Site.Domain, path, "aegir-cron", cronTimeout)
	if err != nil {
		return 0, provision.Errorf(provision.ErrUnreachable, "check that the web server runs and listens on that address",
			"cron of %s: %v (from %s)", s.c.Site.Domain, err, s.ex.Host())
	}
	return a.Code, nil
}

// siteStats reads a site's users, active users (seen in the last 30
// days, where the application records it), posts and comments from its
// database.
func siteStats(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	s, err := openSite(ctx, env, c)
	if err != nil {
		return nil, err
	}
	svc, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	conn, err := svc.Open(ctx, c.Site.DB.Name)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	since := time.Now().Add(-30 * 24 * time.Hour).Unix()
	queries := s.p.Driver.StatsQueries(s.p, since)
	stats := map[string]int64{}
	for _, k := range []string{"users", "active_users", "posts", "comments"} {
		rows, err := conn.Query(ctx, queries[k])
		if err != nil {
			// A site without comments (the module off) has no such table.
			env.Logf(provision.LevelDebug, "statistics of %s: %s: %v", c.Site.Domain, k, err)
			continue
		}
		var n int64
		if rows.Next() {
			_ = rows.Scan(&n)
		}
		rows.Close()
		stats[k] = n
	}
	out := &provision.SiteStats{Users: stats["users"], ActiveUsers: stats["active_users"], Posts: stats["posts"], Comments: stats["comments"]}
	// Disk usage, for the client's disk quota: a measure that fails leaves
	// the counts saved and says why.
	if out.DBBytes, err = svc.Size(ctx, c.Site.DB.Name); err != nil {
		env.Logf(provision.LevelWarning, "size of the database of %s: %v", c.Site.Domain, err)
	}
	if out.FilesBytes, err = s.filesBytes(ctx); err != nil {
		env.Logf(provision.LevelWarning, "size of the files of %s on %s: %v", c.Site.Domain, s.ex.Host(), err)
	}
	env.Logf(provision.LevelInfo, "statistics of %s: %d users (%d active), %d posts, %d comments; database %s, files %s",
		c.Site.Domain, out.Users, out.ActiveUsers, out.Posts, out.Comments, entities.FormatSize(out.DBBytes), entities.FormatSize(out.FilesBytes))
	return &provision.Changes{Site: &provision.SiteChanges{Stats: out}}, nil
}

// filesBytes is the disk space the site's own files take on its web
// server: du over the paths its backup holds (the application's
// BackupParts; the platform's code is shared and not counted), those
// that exist. du runs through the web server's executor, so a remote
// site is measured where it lives.
func (s *site) filesBytes(ctx context.Context) (int64, error) {
	var paths []string
	for _, p := range s.p.Driver.BackupParts(s.p, s.c.Site.Domain) {
		if _, err := s.ex.Lstat(ctx, p.Path); err == nil {
			paths = append(paths, p.Path)
		}
	}
	if len(paths) == 0 {
		return 0, nil
	}
	res, runErr := s.ex.Run(ctx, exec.Command{Name: "du", Args: append([]string{"-s", "-k", "--"}, paths...), Timeout: cronTimeout})
	n, err := parseDu(res.Stdout)
	if err != nil {
		return 0, errors.Join(runErr, err)
	}
	// du exits 1 when it could not read part of a tree, after it printed
	// what it could: that is a low figure, still worth keeping.
	return n, runErr
}

// parseDu sums the sizes (KiB) of du -s -k's lines "SIZE\tPATH", in bytes.
func parseDu(out []byte) (int64, error) {
	var total int64
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("du printed %q, not a size", l)
		}
		total += n * 1024
		lines++
	}
	if lines == 0 {
		return 0, errors.New("du printed no size")
	}
	return total, nil
}
