-- aegir state, version 22: the ACME account of each CA directory (issue 20
-- point 2), which each master once kept in its own HOME/acme, so that the
-- masters sharing the state use one account. key_pem is the account's
-- private key: a secret, which makes the state (and its backups) secret.
-- The first master to need the account inserts its row (ON CONFLICT DO
-- NOTHING): another that inserted at the same time uses the row's key.
-- location is the account's URL at the CA, empty until registered.
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    key_pem   TEXT NOT NULL,
    location  TEXT NOT NULL DEFAULT '',
    email     TEXT NOT NULL DEFAULT '',
    master    TEXT NOT NULL DEFAULT '',
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL
);
