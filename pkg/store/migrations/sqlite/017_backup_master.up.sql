-- aegir state, version 17: the master whose backups directory holds a
-- backup's archive (its name: the master key, by default its host name),
-- so that a restore run by another master, whose backups directory is
-- not shared with it, says where the archive is. '' for backups recorded
-- before.
ALTER TABLE backups ADD COLUMN master TEXT NOT NULL DEFAULT '';
