-- aegir state, version 13: platform locks and platforms aegir builds
-- (docs/platforms.md). A locked platform takes no new sites (install,
-- clone, migrate onto it are refused); its lifecycle status (queued,
-- enabled) is kept beside the lock, so a verify does not undo it. A
-- platform built from git records its repository, the ref asked for and
-- the commit checked out; composer is how it was built after the checkout:
-- '' (not), 'install', or 'project:PKG[:VERSION]' (create-project).
ALTER TABLE platforms ADD COLUMN locked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE platforms ADD COLUMN git_url TEXT NOT NULL DEFAULT '';
ALTER TABLE platforms ADD COLUMN git_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE platforms ADD COLUMN git_commit TEXT NOT NULL DEFAULT '';
ALTER TABLE platforms ADD COLUMN composer TEXT NOT NULL DEFAULT '';
UPDATE platforms SET locked = 1, status = 'enabled' WHERE status = 'locked';
