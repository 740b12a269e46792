package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// BenchState is a large state for the benchmarks of the command line
// (make bench, scripts/benchseed).
type BenchState struct {
	Sites  int // installed sites siteNNNNN.example.test, each with the alias www.DOMAIN, over the live platforms in turn
	Tasks  int // site.verify tasks, over the sites in turn
	Queued int // of the tasks, how many (the newest) are queued; the others ended in success
	// ClientSites of the sites (the first ones) belong to Client, which
	// is added if it does not exist; the others to no client.
	Client      string
	ClientSites int
}

// SeedBench writes b in one transaction. The platforms must exist. It
// checks nothing AddSite checks: it only fills a state for benchmarks.
func (s *Store) SeedBench(ctx context.Context, b BenchState) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		type platform struct{ id, server int64 }
		rows, err := tx.QueryContext(ctx, `SELECT id, server_id FROM platforms WHERE status <> 'deleted' ORDER BY id`)
		if err != nil {
			return err
		}
		ps, err := scanAll(rows, func(r *sql.Rows, p *platform) error { return r.Scan(&p.id, &p.server) })
		if err != nil {
			return err
		}
		if len(ps) == 0 && b.Sites > 0 {
			return fmt.Errorf("store: no platform to seed sites on")
		}
		now := s.Now()
		var client sql.NullInt64
		if b.ClientSites > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO clients (name, created) VALUES (?, ?) ON CONFLICT DO NOTHING`, b.Client, ms2(now)); err != nil {
				return err
			}
			if client, err = clientID(ctx, tx, b.Client); err != nil {
				return err
			}
		}
		sites := make([]*entities.Site, 0, b.Sites)
		for i := 1; i <= b.Sites; i++ {
			p := ps[i%len(ps)]
			v := &entities.Site{Domain: fmt.Sprintf("site%05d.example.test", i)}
			v.Aliases = []string{"www." + v.Domain}
			name := fmt.Sprintf("site%05d", i)
			cid := client
			if i > b.ClientSites {
				cid = sql.NullInt64{}
			}
			newID, err := insert(ctx, tx, `INSERT INTO sites (domain, platform_id, db_server_id, client_id, status, db_name, db_user, created) VALUES (?, ?, ?, ?, 'installed', ?, ?, ?)`,
				v.Domain, p.id, p.server, cid, name, name, ms2(now))
			if err != nil {
				return err
			}
			v.ID = newID
			if err := s.setNames(ctx, tx, v); err != nil {
				return err
			}
			sites = append(sites, v)
		}
		if len(sites) == 0 && b.Tasks > 0 {
			return fmt.Errorf("store: no site to seed tasks on")
		}
		var first, lastDone int64
		for i := range b.Tasks {
			v := sites[i%len(sites)]
			t, err := s.insertTaskAt(ctx, tx, now, entities.TaskSiteVerify, entities.TargetSite, v.ID, v.Domain, nil)
			if err != nil {
				return err
			}
			if i == 0 {
				first = t.ID
			}
			if i < b.Tasks-b.Queued {
				lastDone = t.ID
			}
		}
		if lastDone == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE tasks SET status = 'success', started = created, finished = created WHERE id BETWEEN ? AND ?`, first, lastDone)
		return err
	})
}

// FleetState is a fleet for the fleet-scale benchmarks and tests (issue
// 20 point 4): Servers remote servers (webNNNN at webNNNN.fleet.test, SSH
// user aegir, each with nginx and MariaDB, reached through an SSH tunnel, enabled), a WordPress platform
// on each (wpNNNN at /var/www/wp), and Sites installed sites
// siteNNNNNN.fleet.test (each with the alias www.DOMAIN) over the servers
// in turn, with their databases on their own server.
type FleetState struct {
	Servers, Sites int
	// HTTPSEvery: every HTTPSEvery-th site has HTTPS on, with an ACME
	// certificate due for renewal (the cert queue's work); 0: none.
	HTTPSEvery int
	// Ran is when half the sites last ran cron, statistics and a backup
	// (scattered over the hour before it); the other half never ran (every
	// other block of Servers sites, so that each server has some).
	Ran time.Time
}

// SeedFleet writes f in one transaction, with multi-row inserts (a fleet
// of 100,000 sites takes seconds, not the minutes AddSite would). It
// checks nothing AddSite checks: it only fills a state for benchmarks.
// On PostgreSQL it refreshes the planner's statistics after, as aegir
// state migrate does after its copy.
func (s *Store) SeedFleet(ctx context.Context, f FleetState) error {
	if f.Servers <= 0 {
		return fmt.Errorf("store: a fleet needs servers")
	}
	if err := s.seedFleet(ctx, f); err != nil {
		return err
	}
	return s.analyze(ctx)
}

func (s *Store) seedFleet(ctx context.Context, f FleetState) error {
	now := ms2(s.Now())
	return s.tx(ctx, func(tx *sql.Tx) error {
		servers := make([]int64, f.Servers)
		platforms := make([]int64, f.Servers)
		for i := range f.Servers {
			name := fmt.Sprintf("web%04d", i+1)
			id, err := insert(ctx, tx, `INSERT INTO servers (name, host, ssh_user, ssh_port, status, created, verified) VALUES (?, ?, 'aegir', 22, 'enabled', ?, ?)`,
				name, name+".fleet.test", now, now)
			if err != nil {
				return err
			}
			servers[i] = id
			if _, err := tx.ExecContext(ctx, `INSERT INTO services (server_id, kind, type, status, version, port, https_port, php_fpm, verified) VALUES (?, 'http', 'nginx', 'enabled', '1.22.1', 80, 443, '/run/php/php8.2-fpm.sock', ?)`, id, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO services (server_id, kind, type, status, version, port, db_host, admin_user, db_tunnel, verified) VALUES (?, 'db', 'mariadb', 'enabled', '10.11.6', 3306, '127.0.0.1', 'root', 1, ?)`, id, now); err != nil {
				return err
			}
			if platforms[i], err = insert(ctx, tx, `INSERT INTO platforms (name, server_id, root, type, core_version, docroot, status, created, verified) VALUES (?, ?, '/var/www/wp', 'wordpress', '6.4.2', '/var/www/wp', 'enabled', ?, ?)`,
				fmt.Sprintf("wp%04d", i+1), id, now, now); err != nil {
				return err
			}
		}
		var ran *int64
		if !f.Ran.IsZero() {
			r := ms2(f.Ran)
			ran = &r
		}
		const batch = 500
		for lo := 1; lo <= f.Sites; lo += batch {
			hi := min(lo+batch-1, f.Sites)
			var q strings.Builder
			q.WriteString(`INSERT INTO sites (domain, platform_id, db_server_id, https, status, db_name, db_user, created, last_cron, last_backup, last_stats) VALUES `)
			args := make([]any, 0, (hi-lo+1)*10)
			for i := lo; i <= hi; i++ {
				if i > lo {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, 'installed', ?, ?, ?, ?, ?, ?)")
				k := (i - 1) % f.Servers
				https := "off"
				if f.HTTPSEvery > 0 && i%f.HTTPSEvery == 0 {
					https = "on"
				}
				var last any
				if ((i-1)/f.Servers)%2 == 0 && ran != nil {
					last = *ran - int64(i*7919%3600000)
				}
				name := fmt.Sprintf("site%06d", i)
				args = append(args, name+".fleet.test", platforms[k], servers[k], https, name, name, now, last, last, last)
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		// Every site's names: its domain, then www.DOMAIN.
		if _, err := tx.ExecContext(ctx, `INSERT INTO site_names (name, site_id, is_alias, position) SELECT domain, id, ?, 0 FROM sites WHERE domain LIKE '%.fleet.test'`, false); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO site_names (name, site_id, is_alias, position) SELECT 'www.' || domain, id, ?, 1 FROM sites WHERE domain LIKE '%.fleet.test'`, true); err != nil {
			return err
		}
		// The HTTPS sites' certificates, due for renewal an hour ago.
		if f.HTTPSEvery > 0 {
			due := now - 3600000
			if _, err := tx.ExecContext(ctx, `INSERT INTO certificates (site_id, names, issuer, source, not_before, not_after, cert_path, key_path, renew_after, updated)
	SELECT id, domain || ' www.' || domain, 'simulated CA', 'acme', ?, ?, '', '', ?, ? FROM sites WHERE https = 'on' AND domain LIKE '%.fleet.test'`, due-80*86400000, due+30*86400000, due, now); err != nil {
				return err
			}
		}
		return nil
	})
}
