-- aegir state, version 5: a database service reached through an SSH tunnel
-- (aegir server add --db-tunnel), for one that listens only on its server's
-- loopback address.
ALTER TABLE services ADD COLUMN db_tunnel BIGINT NOT NULL DEFAULT 0 CHECK (db_tunnel IN (0, 1));
