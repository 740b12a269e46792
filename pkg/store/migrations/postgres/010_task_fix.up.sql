-- aegir state, version 10: a failed task's fix, the actions its hint
-- proposes (a JSON list of {verb, target, args}), which each front end
-- words as its commands.
ALTER TABLE tasks ADD COLUMN fix TEXT NOT NULL DEFAULT '';
