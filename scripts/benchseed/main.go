// Command benchseed fills an aegir state database with many sites and
// tasks, for make bench: benchseed -home DIR -sites 10000 -tasks 100000.
// With -servers N it seeds a fleet instead (store.SeedFleet: N servers,
// -sites sites over them, no tasks), in -state (a PostgreSQL DSN) or in
// DIR/aegir.db.
package main

import (
	"context"
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
	client := flag.String("client", "acme", "the client of the first -client-sites sites")
	clientSites := flag.Int("client-sites", 0, "how many sites belong to -client")
	servers := flag.Int("servers", 0, "seed a fleet of this many servers (store.SeedFleet) instead")
	state := flag.String("state", "", "the state to seed (a PostgreSQL DSN); default: HOME/aegir.db")
	flag.Parse()
	if *servers > 0 {
		if err := fleet(*home, *state, store.FleetState{Servers: *servers, Sites: *sites, HTTPSEvery: 10, Ran: time.Now().Add(-time.Hour)}); err != nil {
			fmt.Fprintln(os.Stderr, "benchseed:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*home, store.BenchState{Sites: *sites, Tasks: *tasks, Queued: *queued, Client: *client, ClientSites: *clientSites}); err != nil {
		fmt.Fprintln(os.Stderr, "benchseed:", err)
		os.Exit(1)
	}
}

func fleet(home, state string, f store.FleetState) error {
	if state == "" {
		if home == "" {
			return fmt.Errorf("-home or -state is required")
		}
		state = filepath.Join(home, "aegir.db")
	}
	st, err := store.Open(context.Background(), state, true)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.SeedFleet(context.Background(), f)
}

func run(home string, b store.BenchState) error {
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
	return st.SeedBench(ctx, b)
}
