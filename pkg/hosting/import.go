package hosting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/db"
	"github.com/aegir-project/aegir/pkg/store"
)

// importSites records the sites found on a platform as installed sites,
// each with a verify task. A site already recorded is left alone, so an
// import run twice changes nothing.
func (r *Runner) importSites(ctx context.Context, t *entities.Task, found []provision.FoundSite, secrets map[string]string, log provision.Logger) error {
	p, err := r.Store.GetPlatformByID(ctx, t.TargetID)
	if err != nil {
		return err
	}
	servers, err := r.Store.ListServers(ctx)
	if err != nil {
		return err
	}
	added := 0
	for _, f := range found {
		if _, err := r.Store.GetSite(ctx, f.Domain); err == nil {
			log.Log(provision.LevelInfo, fmt.Sprintf("site %s is already recorded; left as it is", f.Domain))
			continue
		}
		dbs := matchDBServer(servers, p.Server, f)
		if dbs == "" {
			provision.LogFix(log, provision.LevelWarning, fmt.Sprintf("site %s: no database server of aegir's is at %s; add it, then import again", f.Domain, f.DBHost),
				[]entities.Action{entities.Do("server.add", "NAME", "host=HOST", "db=TYPE", "db-host="+f.DBHost)})
			continue
		}
		// The database named in the site's own settings (its code) must
		// be no other site's: else deleting this one would drop it.
		if taken, err := r.dbTaken(ctx, servers, dbs, f.DBName, f.DBUser); err != nil {
			return err
		} else if taken != "" {
			log.Log(provision.LevelWarning, fmt.Sprintf("site %s not imported: its settings name the database or user %s on %s, which another site of aegir's or the server itself uses; give it a database and user of its own and import again", f.Domain, taken, dbs))
			continue
		}
		v := &entities.Site{Domain: f.Domain, Aliases: f.Aliases, Platform: p.Name, DBServer: dbs, DBName: f.DBName, DBUser: f.DBUser,
			DBPassword: secrets["db_password/"+f.Domain], Language: "en", HTTPS: entities.HTTPSOff}
		if _, err := r.Store.ImportSite(ctx, v); err != nil {
			var cf *store.ConflictError
			if errors.As(err, &cf) {
				log.Log(provision.LevelWarning, fmt.Sprintf("site %s not imported: %s", f.Domain, cf.Msg))
				continue
			}
			return err
		}
		added++
		log.Log(provision.LevelInfo, fmt.Sprintf("imported site %s (database %s on %s); its verify task is queued", f.Domain, f.DBName, dbs))
	}
	log.Log(provision.LevelInfo, fmt.Sprintf("%d of %d sites found on %s imported", added, len(found), p.Name))
	return nil
}

// dbTaken returns which of name and user another live site on the
// database server dbs already uses as its database or user, or that is
// the server's own (its admin user, a system database); "" if none.
func (r *Runner) dbTaken(ctx context.Context, servers []*entities.Server, dbs, name, user string) (string, error) {
	for _, s := range servers {
		if s.Name != dbs {
			continue
		}
		for _, n := range []string{name, user} {
			if n == "" {
				continue
			}
			if db.IsSystemName(n) {
				return n, nil
			}
			for _, sv := range s.Services {
				if sv.Kind == entities.KindDB && sv.AdminUser == n {
					return n, nil
				}
			}
			taken, err := r.Store.DBNameTaken(ctx, s.ID, n)
			if err != nil || taken {
				return n, err
			}
		}
	}
	return "", nil
}

// matchDBServer finds the server whose database service a found site's
// settings point at: same address (any loopback address for a server on
// this machine) and port. Empty if none.
func matchDBServer(servers []*entities.Server, platformServer string, f provision.FoundSite) string {
	host, port := f.DBHost, f.DBPort
	if h, p, err := net.SplitHostPort(host); err == nil {
		host = h
		port, _ = strconv.Atoi(p)
	}
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || h == "" || (ip != nil && ip.IsLoopback())
	}
	var best string
	for _, s := range servers {
		for _, sv := range s.Services {
			if sv.Kind != entities.KindDB || (port != 0 && port != sv.Port) {
				continue
			}
			same := sv.DBHost == host || (loopback(host) && loopback(sv.DBHost) && s.IsLocal())
			if !same {
				continue
			}
			if s.Name == platformServer {
				return s.Name
			}
			if best == "" {
				best = s.Name
			}
		}
	}
	return best
}
