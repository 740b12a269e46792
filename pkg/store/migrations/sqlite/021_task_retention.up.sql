-- aegir state, version 21: indexes for the retention of finished tasks
-- (tasks.keep, Store.PruneTasks). tasks_finished finds the top-level tasks
-- that ended before a cutoff, oldest first, without reading the others;
-- tasks_target_type answers "is there a newer task of this type on this
-- target?" (the newest of each is kept, however old) with one probe, and
-- serves the last task of a type on a target (a site's last verify).
CREATE INDEX tasks_finished ON tasks(finished, id) WHERE parent_id IS NULL;
CREATE INDEX tasks_target_type ON tasks(target_kind, target_id, type, id);
