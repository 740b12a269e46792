-- aegir state, version 1: the entity model and the queues.
-- Times are Unix milliseconds (UTC); the store turns them into time.Time.

CREATE TABLE clients (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL UNIQUE,
  email   TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL
);

CREATE TABLE servers (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL,
  host            TEXT NOT NULL,
  ssh_user        TEXT NOT NULL DEFAULT '',
  ssh_port        INTEGER NOT NULL DEFAULT 22,
  ssh_key         TEXT NOT NULL DEFAULT '',
  accept_host_key INTEGER NOT NULL DEFAULT 0,
  remote_home     TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','enabled','locked','deleted')),
  created         INTEGER NOT NULL,
  verified        INTEGER
);
CREATE UNIQUE INDEX servers_name_live ON servers(name) WHERE status <> 'deleted';

CREATE TABLE services (
  id                  INTEGER PRIMARY KEY,
  server_id           INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
  kind                TEXT NOT NULL CHECK (kind IN ('http','db')),
  type                TEXT NOT NULL CHECK (type IN ('nginx','apache','mariadb','mysql','postgresql')),
  status              TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','enabled','error')),
  version             TEXT NOT NULL DEFAULT '',
  port                INTEGER NOT NULL,
  https_port          INTEGER NOT NULL DEFAULT 0,
  test_cmd            TEXT NOT NULL DEFAULT '',
  restart_cmd         TEXT NOT NULL DEFAULT '',
  php_fpm             TEXT NOT NULL DEFAULT '',
  db_host             TEXT NOT NULL DEFAULT '',
  admin_user          TEXT NOT NULL DEFAULT '',
  admin_password_file TEXT NOT NULL DEFAULT '',
  message             TEXT NOT NULL DEFAULT '',
  verified            INTEGER,
  UNIQUE (server_id, kind),
  CHECK ((kind = 'http' AND type IN ('nginx','apache')) OR (kind = 'db' AND type IN ('mariadb','mysql','postgresql')))
);

CREATE TABLE platforms (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL,
  server_id    INTEGER NOT NULL REFERENCES servers(id) ON DELETE RESTRICT,
  root         TEXT NOT NULL,
  type         TEXT NOT NULL DEFAULT '' CHECK (type IN ('','drupal','wordpress')),
  core_version TEXT NOT NULL DEFAULT '',
  docroot      TEXT NOT NULL DEFAULT '',
  drush        TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','enabled','locked','deleted')),
  created      INTEGER NOT NULL,
  verified     INTEGER
);
CREATE UNIQUE INDEX platforms_name_live ON platforms(name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX platforms_root ON platforms(server_id, root) WHERE status <> 'deleted';

CREATE TABLE sites (
  id           INTEGER PRIMARY KEY,
  domain       TEXT NOT NULL,
  platform_id  INTEGER NOT NULL REFERENCES platforms(id) ON DELETE RESTRICT,
  db_server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE RESTRICT,
  client_id    INTEGER REFERENCES clients(id) ON DELETE SET NULL,
  redirect     INTEGER NOT NULL DEFAULT 0,
  profile      TEXT NOT NULL DEFAULT '',
  language     TEXT NOT NULL DEFAULT 'en',
  https        TEXT NOT NULL DEFAULT 'off' CHECK (https IN ('off','on','required')),
  db_name      TEXT NOT NULL DEFAULT '',
  db_user      TEXT NOT NULL DEFAULT '',
  db_password  TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','installed','disabled','deleted','migrating')),
  created      INTEGER NOT NULL,
  last_cron    INTEGER,
  last_backup  INTEGER,
  last_stats   INTEGER
);
CREATE UNIQUE INDEX sites_domain_live ON sites(domain) WHERE status <> 'deleted';
CREATE INDEX sites_platform ON sites(platform_id);
CREATE INDEX sites_db_server ON sites(db_server_id);
CREATE INDEX sites_client ON sites(client_id);

-- Every name a live site answers to (its domain and its aliases) appears
-- here once: the primary key keeps an alias from equalling another site's
-- domain or alias.
CREATE TABLE site_names (
  name     TEXT PRIMARY KEY,
  site_id  INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  is_alias INTEGER NOT NULL,
  position INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX site_names_site ON site_names(site_id, is_alias, position);

-- The model's rules, kept by the database itself: nothing in use is deleted.
CREATE TRIGGER clients_in_use BEFORE DELETE ON clients
WHEN EXISTS (SELECT 1 FROM sites WHERE client_id = OLD.id AND status <> 'deleted')
BEGIN SELECT RAISE(ABORT, 'aegir: client has sites'); END;

CREATE TRIGGER platforms_in_use BEFORE UPDATE OF status ON platforms
WHEN NEW.status = 'deleted' AND EXISTS (SELECT 1 FROM sites WHERE platform_id = OLD.id AND status <> 'deleted')
BEGIN SELECT RAISE(ABORT, 'aegir: platform has sites'); END;

CREATE TRIGGER servers_in_use BEFORE UPDATE OF status ON servers
WHEN NEW.status = 'deleted' AND (
  EXISTS (SELECT 1 FROM platforms WHERE server_id = OLD.id AND status <> 'deleted') OR
  EXISTS (SELECT 1 FROM sites WHERE db_server_id = OLD.id AND status <> 'deleted'))
BEGIN SELECT RAISE(ABORT, 'aegir: server is in use'); END;

-- A deleted site answers to no name any more, so its domain can be used again.
CREATE TRIGGER sites_deleted_names AFTER UPDATE OF status ON sites
WHEN NEW.status = 'deleted'
BEGIN DELETE FROM site_names WHERE site_id = NEW.id; END;

CREATE TABLE tasks (
  id          INTEGER PRIMARY KEY,
  type        TEXT NOT NULL,
  target_kind TEXT NOT NULL CHECK (target_kind IN ('server','platform','site','backup')),
  target_id   INTEGER NOT NULL,
  target      TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','processing','success','warning','error','cancelled')),
  options     TEXT NOT NULL DEFAULT '{}',
  created     INTEGER NOT NULL,
  started     INTEGER,
  finished    INTEGER,
  error       TEXT NOT NULL DEFAULT '',
  hint        TEXT NOT NULL DEFAULT '',
  error_code  TEXT NOT NULL DEFAULT '',
  result      TEXT NOT NULL DEFAULT '',
  attempt     INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  worker      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tasks_status ON tasks(status, id);
CREATE INDEX tasks_target ON tasks(target_kind, target_id, status);
CREATE INDEX tasks_type ON tasks(type, id);

CREATE TABLE task_log (
  id      INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  time    INTEGER NOT NULL,
  level   TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX task_log_task ON task_log(task_id, id);

CREATE TABLE packages (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL,
  type    TEXT NOT NULL CHECK (type IN ('module','theme','profile','plugin','core')),
  title   TEXT NOT NULL DEFAULT '',
  project TEXT NOT NULL DEFAULT '',
  UNIQUE (name, type)
);

CREATE TABLE package_releases (
  id         INTEGER PRIMARY KEY,
  package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
  version    TEXT NOT NULL,
  UNIQUE (package_id, version)
);

CREATE TABLE package_instances (
  id             INTEGER PRIMARY KEY,
  release_id     INTEGER NOT NULL REFERENCES package_releases(id) ON DELETE CASCADE,
  platform_id    INTEGER REFERENCES platforms(id) ON DELETE CASCADE,
  site_id        INTEGER REFERENCES sites(id) ON DELETE CASCADE,
  path           TEXT NOT NULL DEFAULT '',
  enabled        INTEGER NOT NULL DEFAULT 0,
  schema_version TEXT NOT NULL DEFAULT '',
  CHECK ((platform_id IS NULL) <> (site_id IS NULL))
);
CREATE INDEX package_instances_platform ON package_instances(platform_id);
CREATE INDEX package_instances_site ON package_instances(site_id);

CREATE TABLE backups (
  id      INTEGER PRIMARY KEY,
  site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  path    TEXT NOT NULL UNIQUE,
  size    INTEGER NOT NULL DEFAULT 0,
  sha256  TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL
);
CREATE INDEX backups_site ON backups(site_id, created);

-- One row a queue: when it last ran.
CREATE TABLE queue_runs (
  name     TEXT PRIMARY KEY,
  last_run INTEGER
) WITHOUT ROWID;

CREATE TABLE site_stats (
  site_id      INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
  users        INTEGER NOT NULL DEFAULT 0,
  active_users INTEGER NOT NULL DEFAULT 0,
  posts        INTEGER NOT NULL DEFAULT 0,
  comments     INTEGER NOT NULL DEFAULT 0,
  updated      INTEGER NOT NULL
);
