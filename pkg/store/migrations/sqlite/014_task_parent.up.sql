-- aegir state, version 14: a task's parent. A platform migrate is one
-- parent task with a site.migrate child per site; its children are run by
-- the parent alone (the dispatcher's claims skip them), in waves.
ALTER TABLE tasks ADD COLUMN parent_id INTEGER REFERENCES tasks(id);
CREATE INDEX tasks_parent ON tasks(parent_id, id) WHERE parent_id IS NOT NULL;
