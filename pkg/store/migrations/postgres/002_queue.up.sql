-- aegir state, version 2: bookkeeping of the scheduled queues (cron, backup,
-- stats), owned by pkg/queue.

-- When each queue last gave each site a task. The rotation orders sites by
-- the later of this and the site's last successful run (sites.last_cron,
-- last_backup, last_stats), so a site whose task keeps failing still goes
-- to the back of the line and cannot starve the others.
CREATE TABLE IF NOT EXISTS queue_items (
  queue       TEXT NOT NULL,
  site_id     BIGINT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  last_queued BIGINT NOT NULL,
  PRIMARY KEY (queue, site_id)
);
CREATE INDEX IF NOT EXISTS queue_items_site ON queue_items(site_id);

CREATE INDEX IF NOT EXISTS sites_status ON sites(status);

INSERT INTO queue_runs (name, last_run) VALUES ('cron', NULL), ('backup', NULL), ('stats', NULL) ON CONFLICT DO NOTHING;
