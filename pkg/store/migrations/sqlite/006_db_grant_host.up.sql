-- aegir state, version 6: the host a site's database user is granted for,
-- as the task that made the user chose it (the address its web server
-- connects from), so that later tasks drop and remake that same account
-- whatever name resolution says then.
ALTER TABLE sites ADD COLUMN db_grant_host TEXT NOT NULL DEFAULT '';
