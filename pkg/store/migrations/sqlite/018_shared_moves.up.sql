-- aegir state, version 18: what a second master needs of a move another
-- master ran (issue 20 point 2). move_journals holds a running move's undo
-- steps (the journal once kept in the master's home), so that any master's
-- rescue plays back a dead master's half-done move; move_locks are the
-- locks a move holds on its task and its site, each with its holder (its
-- master's name, process) and a lease the holder renews: a dead holder's
-- lock is taken over once its lease has run out (at once by its own master).
CREATE TABLE move_journals (
    task_id INTEGER PRIMARY KEY,
    body    TEXT NOT NULL,
    host    TEXT NOT NULL DEFAULT '',
    updated INTEGER NOT NULL
);
CREATE TABLE move_locks (
    name        TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    token       TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    taken       INTEGER NOT NULL
);
