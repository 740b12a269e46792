-- aegir state, version 15: what a task's log line proposes to do (a JSON
-- list of {verb, target, args}, as tasks.fix), which each front end words
-- as its commands beside the line's neutral message.
ALTER TABLE task_log ADD COLUMN fix TEXT NOT NULL DEFAULT '';
