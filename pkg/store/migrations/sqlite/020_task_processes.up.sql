-- aegir state, version 20: the process groups a running task has on remote
-- servers (issue 20 points 2 and 3), which its master once kept only in its
-- own tmp/task-ID/. The rescue of a task whose master died, run by any
-- master sharing the state, kills those still running (over SSH, as user)
-- and forgets them. A row goes when its command ends, or with the task's
-- end or its rescue. Local processes stay in the master's own record: only
-- the same host can kill them.
CREATE TABLE task_processes (
    task_id  INTEGER NOT NULL,
    host     TEXT NOT NULL,
    username TEXT NOT NULL,
    pid      TEXT NOT NULL,
    name     TEXT NOT NULL,
    master   TEXT NOT NULL DEFAULT '',
    started  INTEGER NOT NULL,
    PRIMARY KEY (task_id, host, pid)
);
