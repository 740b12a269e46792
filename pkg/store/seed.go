package store

import (
	"context"
	"database/sql"
	"fmt"

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
