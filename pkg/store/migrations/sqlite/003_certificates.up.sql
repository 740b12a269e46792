-- aegir state, version 3: HTTPS certificates of sites.

CREATE TABLE certificates (
  id          INTEGER PRIMARY KEY,
  site_id     INTEGER NOT NULL UNIQUE REFERENCES sites(id) ON DELETE CASCADE,
  names       TEXT NOT NULL,              -- the names it covers, space-separated, domain first
  issuer      TEXT NOT NULL DEFAULT '',
  source      TEXT NOT NULL CHECK (source IN ('acme','admin')),
  not_before  INTEGER,
  not_after   INTEGER,
  cert_path   TEXT NOT NULL DEFAULT '',   -- on the web server
  key_path    TEXT NOT NULL DEFAULT '',
  -- Renewal: a failed one is retried after renew_after, backing off.
  renew_after INTEGER,
  failures    INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT NOT NULL DEFAULT '',
  updated     INTEGER NOT NULL
);
CREATE INDEX certificates_not_after ON certificates(not_after);

INSERT OR IGNORE INTO queue_runs (name, last_run) VALUES ('cert', NULL);
