// Command benchseed fills an aegir state database with many sites and
// tasks, for make bench: benchseed -home DIR -sites 10000 -tasks 100000.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func main() {
	home := flag.String("home", "", "aegir home to create")
	sites := flag.Int("sites", 10000, "sites")
	tasks := flag.Int("tasks", 100000, "tasks")
	queued := flag.Int("queued", 500, "of the tasks, how many are queued")
	flag.Parse()
	if err := run(*home, *sites, *tasks, *queued); err != nil {
		fmt.Fprintln(os.Stderr, "benchseed:", err)
		os.Exit(1)
	}
}

func run(home string, nSites, nTasks, nQueued int) error {
	ctx := context.Background()
	if home == "" {
		return fmt.Errorf("-home is required")
	}
	st, err := store.Open(ctx, filepath.Join(home, "aegir.db"), true)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.AddServer(ctx, &entities.Server{Name: "web1", Host: "localhost", SSHPort: 22, Services: []entities.Service{
		{Kind: "http", Type: "nginx", Port: 80, HTTPSPort: 443}, {Kind: "db", Type: "mariadb", Port: 3306, DBHost: "127.0.0.1", AdminUser: "root"},
	}}); err != nil {
		return err
	}
	for i := 0; i < 10; i++ {
		if _, err := st.AddPlatform(ctx, &entities.Platform{Name: fmt.Sprintf("p%d", i), Server: "web1", Root: fmt.Sprintf("/var/www/p%d", i)}); err != nil {
			return err
		}
	}
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	insSite, _ := tx.Prepare(`INSERT INTO sites (domain, platform_id, db_server_id, status, db_name, db_user, created) VALUES (?, ?, 1, 'installed', ?, ?, ?)`)
	insName, _ := tx.Prepare(`INSERT INTO site_names (name, site_id, is_alias, position) VALUES (?, ?, ?, ?)`)
	insTask, _ := tx.Prepare(`INSERT INTO tasks (type, target_kind, target_id, target, status, created, started, finished) VALUES (?, 'site', ?, ?, ?, ?, ?, ?)`)
	for i := 1; i <= nSites; i++ {
		d := fmt.Sprintf("site%05d.example.test", i)
		res, err := insSite.Exec(d, 1+i%10, fmt.Sprintf("site%05d", i), fmt.Sprintf("site%05d", i), now)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		if _, err := insName.Exec(d, id, 0, 0); err != nil {
			return err
		}
		if _, err := insName.Exec("www."+d, id, 1, 1); err != nil {
			return err
		}
	}
	for i := 0; i < nTasks; i++ {
		status := "success"
		var started, finished sql.NullInt64
		if i >= nTasks-nQueued {
			status = "queued"
		} else {
			started = sql.NullInt64{Int64: now, Valid: true}
			finished = started
		}
		site := 1 + i%nSites
		if _, err := insTask.Exec("site.verify", site, fmt.Sprintf("site%05d.example.test", site), status, now, started, finished); err != nil {
			return err
		}
	}
	return tx.Commit()
}
