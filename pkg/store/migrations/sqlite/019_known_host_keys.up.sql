-- aegir state, version 19: the SSH host keys the masters trust (issue 20
-- point 2), kept in the state so that a key one master accepted is
-- trusted by every master sharing it, and a changed key refused by all.
-- host is as known_hosts names it ("host", "[host]:port"); key is the
-- authorized-key form ("ssh-ed25519 AAAA..."); one key of each type for a
-- host, whose insert decides between masters that meet it at once. Each
-- master's AEGIR_HOME/known_hosts is written from this table for OpenSSH
-- tools (rsync, ssh).
CREATE TABLE known_host_keys (
    host        TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    added_by    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (host, key_type)
);
