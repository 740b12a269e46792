-- aegir state, version 9: the users of the HTTP API (aegir serve), their
-- tokens and the audit log of its requests. A user is an admin (every
-- record) or a client's user (only that client's sites). A token's secret
-- is kept only as its SHA-256 (hex): it is shown once, when it is made.
-- The audit log names the user as text, so that it outlives the user.
CREATE TABLE users (
  id        INTEGER PRIMARY KEY,
  name      TEXT NOT NULL UNIQUE,
  client_id INTEGER REFERENCES clients(id) ON DELETE RESTRICT,
  role      TEXT NOT NULL DEFAULT 'client' CHECK (role IN ('admin','client')),
  created   INTEGER NOT NULL,
  CHECK (role = 'admin' OR client_id IS NOT NULL)
);

CREATE TABLE tokens (
  id        INTEGER PRIMARY KEY,
  user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  hash      TEXT NOT NULL UNIQUE,
  scope     TEXT NOT NULL DEFAULT 'read' CHECK (scope IN ('read','write')),
  created   INTEGER NOT NULL,
  expires   INTEGER,
  last_used INTEGER,
  revoked   INTEGER
);
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE audit_log (
  id       INTEGER PRIMARY KEY,
  time     INTEGER NOT NULL,
  user     TEXT NOT NULL DEFAULT '',
  token_id INTEGER,
  method   TEXT NOT NULL,
  path     TEXT NOT NULL,
  status   INTEGER NOT NULL,
  task_id  INTEGER
);
CREATE INDEX audit_log_time ON audit_log(time);
