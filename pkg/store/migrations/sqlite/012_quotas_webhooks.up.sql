-- aegir state, version 12: quotas per client, a site's disk usage, and
-- webhooks with their deliveries.

-- A client's quotas; 0 is no limit. quota_disk is in bytes (a site's
-- database and files, as the statistics queue last measured them),
-- quota_backups the backups its sites keep in all.
ALTER TABLE clients ADD COLUMN quota_sites INTEGER NOT NULL DEFAULT 0 CHECK (quota_sites >= 0);
ALTER TABLE clients ADD COLUMN quota_disk INTEGER NOT NULL DEFAULT 0 CHECK (quota_disk >= 0);
ALTER TABLE clients ADD COLUMN quota_backups INTEGER NOT NULL DEFAULT 0 CHECK (quota_backups >= 0);

-- A site's disk usage in bytes, as site.stats measured it: its database on
-- the database server and its files on the web server.
ALTER TABLE site_stats ADD COLUMN db_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE site_stats ADD COLUMN files_bytes INTEGER NOT NULL DEFAULT 0;

-- A webhook: a URL told of the events it lists (comma-separated), all of
-- them or (client_id) only those of one client's sites. The secret signs
-- every delivery; the state file is private (0600).
CREATE TABLE webhooks (
  id        INTEGER PRIMARY KEY,
  url       TEXT NOT NULL,
  events    TEXT NOT NULL,
  client_id INTEGER REFERENCES clients(id) ON DELETE CASCADE,
  secret    TEXT NOT NULL,
  created   INTEGER NOT NULL
);

-- One event for one webhook: its JSON body, sent by the dispatcher until
-- the receiver answers 2xx or the attempts run out.
CREATE TABLE webhook_deliveries (
  id           INTEGER PRIMARY KEY,
  webhook_id   INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  event        TEXT NOT NULL,
  body         TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','failed')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  status_code  INTEGER NOT NULL DEFAULT 0,
  error        TEXT NOT NULL DEFAULT '',
  created      INTEGER NOT NULL,
  next_attempt INTEGER NOT NULL,
  last_attempt INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);

-- Events that happen once per state (a certificate close to expiry, a
-- stale backup, a site that became unhealthy), so that each is told once.
CREATE TABLE webhook_marks (
  key     TEXT PRIMARY KEY,
  created INTEGER NOT NULL
) WITHOUT ROWID;
