package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
)

const siteCols = `x.id, x.domain, x.redirect, p.name, ws.name, COALESCE(c.name, ''), ds.name, x.db_name, x.db_user, x.db_password, x.profile, x.language, x.https,
	x.status, x.created, x.last_cron, x.platform_id, x.db_server_id, x.db_grant_host,
	x.health_status, x.health_http_code, x.health_time_ms, x.health_checked, x.health_error, x.php, x.isolation`

const siteFrom = ` FROM sites x
	JOIN platforms p ON p.id = x.platform_id
	JOIN servers ws ON ws.id = p.server_id
	JOIN servers ds ON ds.id = x.db_server_id
	LEFT JOIN clients c ON c.id = x.client_id`

func scanSite(sc interface{ Scan(...any) error }) (*entities.Site, error) {
	var v entities.Site
	var created int64
	var lastCron, checked sql.NullInt64
	var h entities.SiteHealth
	if err := sc.Scan(&v.ID, &v.Domain, &v.Redirect, &v.Platform, &v.Server, &v.Client, &v.DBServer, &v.DBName, &v.DBUser, &v.DBPassword,
		&v.Profile, &v.Language, &v.HTTPS, &v.Status, &created, &lastCron, &v.PlatformID, &v.DBServerID, &v.DBGrantHost,
		&h.Status, &h.HTTPCode, &h.TimeMS, &checked, &h.Error, &v.PHP, &v.Isolation); err != nil {
		return nil, err
	}
	if checked.Valid {
		h.Checked = fromMs(checked.Int64)
		v.Health = &h
	}
	v.Aliases = []string{}
	v.UnixUser = entities.SiteUnixUserOf(&v)
	v.Created = fromMs(created)
	v.LastCron = fromNullMs(lastCron)
	return &v, nil
}

// AddSite records a site with its aliases and queues its install task.
// The platform, database server and client are given by name in v.
func (s *Store) AddSite(ctx context.Context, v *entities.Site) (*entities.Task, error) {
	return s.AddSiteWithOptions(ctx, v, nil)
}

// AddSiteWithOptions is AddSite with options for the install task (the
// site's title and admin account: hosting.OptTitle and the others).
func (s *Store) AddSiteWithOptions(ctx context.Context, v *entities.Site, opts map[string]string) (*entities.Task, error) {
	return s.addSite(ctx, v, entities.SiteQueued, entities.TaskSiteInstall, opts)
}

// ImportSite records a site found installed on its platform (with its
// database details in v) and queues its verify task.
func (s *Store) ImportSite(ctx context.Context, v *entities.Site) (*entities.Task, error) {
	return s.addSite(ctx, v, entities.SiteInstalled, entities.TaskSiteVerify, nil)
}

func (s *Store) addSite(ctx context.Context, v *entities.Site, status, taskType string, opts map[string]string) (*entities.Task, error) {
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var platformID, dbServerID int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM platforms WHERE name = ? AND status <> 'deleted'`, v.Platform).Scan(&platformID)
		if errors.Is(err, sql.ErrNoRows) {
			return &NotFoundError{Kind: "platform", Name: v.Platform}
		} else if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT s.id FROM servers s JOIN services sv ON sv.server_id = s.id AND sv.kind = 'db' WHERE s.name = ? AND s.status <> 'deleted'`, v.DBServer).Scan(&dbServerID)
		if errors.Is(err, sql.ErrNoRows) {
			// In tx: a second connection could wait on this one's lock.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM servers WHERE name = ? AND status <> 'deleted'`, v.DBServer).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return &NotFoundError{Kind: "server", Name: v.DBServer}
			}
			return &ConflictError{Field: "db-server", Msg: "server " + quote(v.DBServer) + " has no database service",
				Hint: "add one, or pick another database server",
				Fix:  []entities.Action{entities.Do("server.edit", v.DBServer, "db=mariadb")}}
		} else if err != nil {
			return err
		}
		cid, err := clientID(ctx, tx, v.Client)
		if err != nil {
			return err
		}
		if taskType == entities.TaskSiteInstall {
			if err := refuseLocked(ctx, tx, platformID, v.Platform); err != nil {
				return err
			}
			if err := checkQuota(ctx, tx, cid); err != nil {
				return err
			}
		}
		if v.Isolation == "" {
			v.Isolation = entities.IsolationShared
		}
		newID, err := insert(ctx, tx, `INSERT INTO sites (domain, platform_id, db_server_id, client_id, redirect, profile, language, https, db_name, db_user, db_password, status, created, php, isolation)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Domain, platformID, dbServerID, cid, v.Redirect, v.Profile, v.Language, v.HTTPS, v.DBName, v.DBUser, v.DBPassword, status, s.now(), v.PHP, v.Isolation)
		if isUnique(err) {
			return &ConflictError{Field: "domain", Msg: "site " + quote(v.Domain) + " already exists", Fix: []entities.Action{entities.Do("site.show", v.Domain)}}
		}
		if err != nil {
			return err
		}
		v.ID = newID
		v.Status = status
		v.PlatformID, v.DBServerID = platformID, dbServerID
		if err := s.setNames(ctx, tx, v); err != nil {
			return err
		}
		task, err = s.insertTask(ctx, tx, taskType, entities.TargetSite, v.ID, v.Domain, opts)
		return err
	})
	return task, err
}

// setNames replaces the names a site answers to with its domain and aliases.
func (s *Store) setNames(ctx context.Context, tx *sql.Tx, v *entities.Site) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM site_names WHERE site_id = ?`, v.ID); err != nil {
		return err
	}
	names := append([]string{v.Domain}, v.Aliases...)
	for i, n := range names {
		_, err := tx.ExecContext(ctx, `INSERT INTO site_names (name, site_id, is_alias, position) VALUES (?, ?, ?, ?)`, n, v.ID, i > 0, i)
		if isUnique(err) {
			var owner string
			_ = tx.QueryRowContext(ctx, `SELECT x.domain FROM site_names n JOIN sites x ON x.id = n.site_id WHERE n.name = ?`, n).Scan(&owner)
			field := "--alias"
			if i == 0 {
				field = "domain"
			}
			if owner == v.Domain || owner == "" {
				return &ConflictError{Field: field, Msg: quote(n) + " is listed twice for this site"}
			}
			hint, fix := "remove it there first", entities.Do("site.edit", owner, "remove-alias="+n)
			if n == owner { // that site's own domain, which no edit removes
				hint, fix = "it is the domain of that site: pick another name; see that site", entities.Do("site.show", owner)
			}
			return &ConflictError{Field: field, Msg: quote(n) + " is already a name of site " + quote(owner), Hint: hint, Fix: []entities.Action{fix}}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// GetSite finds a live (not deleted) site by a name it answers to: its
// domain or one of its aliases (names are stored lower-case).
func (s *Store) GetSite(ctx context.Context, name string) (*entities.Site, error) {
	v, err := scanSite(s.db.QueryRowContext(ctx, `SELECT `+siteCols+siteFrom+` WHERE x.status <> 'deleted'
		AND (x.domain = ? OR x.id = (SELECT site_id FROM site_names WHERE name = ?)) LIMIT 1`, name, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "site", Name: name}
	}
	if err != nil {
		return nil, err
	}
	return v, s.loadAliases(ctx, []*entities.Site{v}, `site_id = ?`, v.ID)
}

// loadAliases fills the aliases of sites, reading the alias rows that
// match where (one query for any number of sites).
func (s *Store) loadAliases(ctx context.Context, sites []*entities.Site, where string, args ...any) error {
	if len(sites) == 0 {
		return nil
	}
	byID := make(map[int64]*entities.Site, len(sites))
	for _, v := range sites {
		byID[v.ID] = v
	}
	if s.dialect == sqliteDialect {
		return s.loadAliasesPacked(ctx, byID, where, args)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT site_id, name FROM site_names WHERE is_alias = 1 AND `+where+` ORDER BY site_id, position`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		if v := byID[id]; v != nil {
			v.Aliases = append(v.Aliases, name)
		}
	}
	return rows.Err()
}

// loadAliasesPacked is loadAliases on SQLite: the alias rows as one
// value, "ID NAME" each, joined by 0x1f (a name is a domain: no spaces,
// no control characters), as its driver pays for each column of each row.
func (s *Store) loadAliasesPacked(ctx context.Context, byID map[int64]*entities.Site, where string, args []any) error {
	var all sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT group_concat(site_id || ' ' || name, char(31) ORDER BY site_id, position)
		FROM site_names WHERE is_alias = 1 AND `+where, args...).Scan(&all); err != nil {
		return err
	}
	for rest := all.String; rest != ""; {
		one := rest
		if j := strings.IndexByte(rest, 0x1f); j >= 0 {
			one, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		sp := strings.IndexByte(one, ' ')
		if sp < 0 {
			return errors.New("store: an alias row reads " + strconv.Quote(one))
		}
		if v := byID[atoi64(one[:sp])]; v != nil {
			v.Aliases = append(v.Aliases, one[sp+1:])
		}
	}
	return nil
}

// GetSiteByID finds a site by id, deleted ones too.
func (s *Store) GetSiteByID(ctx context.Context, id int64) (*entities.Site, error) {
	v, err := scanSite(s.db.QueryRowContext(ctx, `SELECT `+siteCols+siteFrom+` WHERE x.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "site", Name: "#" + itoa(id)}
	}
	if err != nil {
		return nil, err
	}
	return v, s.loadAliases(ctx, []*entities.Site{v}, `site_id = ?`, v.ID)
}

// SiteFilter narrows ListSites.
type SiteFilter struct {
	Platform string
	Client   string
	Status   string // empty: every site but deleted ones
	Server   string // web server
	DBServer string
}

// ListSites lists sites by domain.
func (s *Store) ListSites(ctx context.Context, f SiteFilter) ([]*entities.Site, error) {
	q := siteFrom + ` WHERE 1=1`
	var args []any
	if f.Status != "" {
		q += ` AND x.status = ?`
		args = append(args, f.Status)
	} else {
		q += ` AND x.status <> 'deleted'`
	}
	for _, c := range []struct{ col, v string }{{"p.name", f.Platform}, {"c.name", f.Client}, {"ws.name", f.Server}, {"ds.name", f.DBServer}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	var out []*entities.Site
	var err error
	if s.dialect == sqliteDialect {
		out, err = s.listSitesPacked(ctx, q, args)
	} else {
		out, err = s.listSitesByColumn(ctx, q, args)
	}
	if err != nil {
		return nil, err
	}
	if len(out) > 200 {
		// Many sites: one pass over every alias beats a lookup per site.
		return out, s.loadAliases(ctx, out, `1 = 1`)
	}
	ids := make([]int64, len(out))
	for i, v := range out {
		ids[i] = v.ID
	}
	return out, s.loadAliases(ctx, out, `site_id IN (`+joinIDs(ids)+`)`)
}

// listSitesByColumn reads the sites of the query's FROM and WHERE q, one
// column a field.
func (s *Store) listSitesByColumn(ctx context.Context, q string, args []any) ([]*entities.Site, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+siteCols+q+` ORDER BY x.domain`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Site{}
	for rows.Next() {
		v, err := scanSite(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// sitePacked is siteCols but the free-text ones (the database password
// and the health error) as one text column, the fields joined by the
// unit separator (0x1f), which no name, domain, host or keyword a site
// has may contain (entities' validation refuses control characters).
// SQLite's driver pays for every column of every row (it takes and
// releases the connection's mutex about three times a column), so a list
// of many sites reads three columns a row rather than 26: 2.5 times
// less time in the store for 10,000 sites (docs/benchmarks.md).
const sitePacked = `concat_ws(char(31), x.id, x.domain, x.redirect, p.name, ws.name, COALESCE(c.name, ''), ds.name, x.db_name, x.db_user,
	x.profile, x.language, x.https, x.status, x.created, COALESCE(x.last_cron, ''), x.platform_id, x.db_server_id, x.db_grant_host,
	x.health_status, x.health_http_code, x.health_time_ms, COALESCE(x.health_checked, ''), x.php, x.isolation), x.db_password, x.health_error`

// sitePackedFields is how many fields sitePacked's first column joins.
const sitePackedFields = 24

// listSitesPacked is listSitesByColumn on SQLite, reading sitePacked. A
// row whose fields do not split as they should (a field with a 0x1f in
// it, which validation keeps out) is read again by its id, column by
// column.
func (s *Store) listSitesPacked(ctx context.Context, q string, args []any) ([]*entities.Site, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sitePacked+q+` ORDER BY x.domain`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*entities.Site{}
	var again []int
	var f [sitePackedFields]string
	for rows.Next() {
		var packed string
		v := &entities.Site{}
		var herr string
		if err := rows.Scan(&packed, &v.DBPassword, &herr); err != nil {
			return nil, err
		}
		if !splitPacked(packed, f[:]) {
			n, _ := strconv.ParseInt(packed[:max(0, strings.IndexByte(packed, 0x1f))], 10, 64)
			v.ID = n
			again = append(again, len(out))
			out = append(out, v)
			continue
		}
		v.ID = atoi64(f[0])
		v.Domain = f[1]
		v.Redirect = f[2] != "0" && f[2] != ""
		v.Platform, v.Server, v.Client, v.DBServer, v.DBName, v.DBUser = f[3], f[4], f[5], f[6], f[7], f[8]
		v.Profile, v.Language, v.HTTPS, v.Status = f[9], f[10], f[11], f[12]
		v.Created = fromMs(atoi64(f[13]))
		if f[14] != "" {
			t := fromMs(atoi64(f[14]))
			v.LastCron = &t
		}
		v.PlatformID, v.DBServerID = atoi64(f[15]), atoi64(f[16])
		v.DBGrantHost = f[17]
		if f[21] != "" {
			v.Health = &entities.SiteHealth{Status: f[18], HTTPCode: int(atoi64(f[19])), TimeMS: atoi64(f[20]), Checked: fromMs(atoi64(f[21])), Error: herr}
		}
		v.PHP, v.Isolation = f[22], f[23]
		v.Aliases = []string{}
		v.UnixUser = entities.SiteUnixUserOf(v)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, i := range again {
		v, err := scanSite(s.db.QueryRowContext(ctx, `SELECT `+siteCols+siteFrom+` WHERE x.id = ?`, out[i].ID))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// splitPacked splits s at its 0x1f into f, reporting whether it has
// exactly len(f) fields. The fields share s's memory.
func splitPacked(s string, f []string) bool {
	for i := range f {
		j := strings.IndexByte(s, 0x1f)
		if i == len(f)-1 {
			f[i] = s
			return j < 0
		}
		if j < 0 {
			return false
		}
		f[i], s = s[:j], s[j+1:]
	}
	return true
}

// atoi64 is s as a decimal integer, 0 if it is not one.
func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// UpdateSite saves a site's aliases, redirection, client, HTTPS mode, PHP
// version and isolation and queues a verify task, in one transaction. A
// site given to a client that reached its quota of sites or disk is
// refused (*entities.QuotaError).
func (s *Store) UpdateSite(ctx context.Context, v *entities.Site) (*entities.Task, error) {
	var task *entities.Task
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cid, err := clientID(ctx, tx, v.Client)
		if err != nil {
			return err
		}
		// A site that moves to another client counts against its quota.
		var cur sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT client_id FROM sites WHERE id = ?`, v.ID).Scan(&cur); err != nil {
			return err
		}
		if cid.Valid && cid != cur {
			if err := checkQuota(ctx, tx, cid); err != nil {
				return err
			}
		}
		if v.Isolation == "" {
			v.Isolation = entities.IsolationShared
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sites SET redirect = ?, client_id = ?, https = ?, php = ?, isolation = ? WHERE id = ?`, v.Redirect, cid, v.HTTPS, v.PHP, v.Isolation, v.ID); err != nil {
			return err
		}
		if err := s.setNames(ctx, tx, v); err != nil {
			return err
		}
		task, err = s.insertTask(ctx, tx, entities.TaskSiteVerify, entities.TargetSite, v.ID, v.Domain, nil)
		return err
	})
	return task, err
}

// SetSiteStatus sets a site's status. Marking it deleted frees its domain
// and aliases.
func (s *Store) SetSiteStatus(ctx context.Context, id int64, status string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sites SET status = ? WHERE id = ?`, status, id)
	return err
}

// SaveSiteDB records the database a site was given.
func (s *Store) SaveSiteDB(ctx context.Context, id int64, name, user, password string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sites SET db_name = ?, db_user = ?, db_password = ? WHERE id = ?`, name, user, password, id)
	return err
}

// SaveSiteGrantHost records the host the site's database user is granted for.
func (s *Store) SaveSiteGrantHost(ctx context.Context, id int64, host string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sites SET db_grant_host = ? WHERE id = ?`, host, id)
	return err
}

// SaveSiteHealth records what a site's health check found.
func (s *Store) SaveSiteHealth(ctx context.Context, id int64, h entities.SiteHealth) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sites SET health_status = ?, health_http_code = ?, health_time_ms = ?, health_checked = ?, health_error = ? WHERE id = ?`,
		h.Status, h.HTTPCode, h.TimeMS, ms2(h.Checked), h.Error, id)
	return err
}

// DBNameTaken reports whether a live site on the database server already
// uses name as its database or user name.
func (s *Store) DBNameTaken(ctx context.Context, dbServerID int64, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sites WHERE db_server_id = ? AND status <> 'deleted' AND (db_name = ? OR db_user = ?)`, dbServerID, name, name).Scan(&n)
	return n > 0, err
}

// QueueSiteTask records a task on a site.
func (s *Store) QueueSiteTask(ctx context.Context, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	return s.QueueTaskFor(ctx, "", typ, entities.TargetSite, v.ID, v.Domain, opts)
}

// QueueSiteTaskFor is QueueSiteTask for a task tied to master
// (Task.Master; "": none).
func (s *Store) QueueSiteTaskFor(ctx context.Context, master string, v *entities.Site, typ string, opts map[string]string) (*entities.Task, error) {
	return s.QueueTaskFor(ctx, master, typ, entities.TargetSite, v.ID, v.Domain, opts)
}

// clientID finds a client's id by name; an empty name is no client.
func clientID(ctx context.Context, tx *sql.Tx, name string) (sql.NullInt64, error) {
	if name == "" {
		return sql.NullInt64{}, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM clients WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, &NotFoundError{Kind: "client", Name: name}
	}
	return sql.NullInt64{Int64: id, Valid: true}, err
}
