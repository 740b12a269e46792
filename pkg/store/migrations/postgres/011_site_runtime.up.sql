-- aegir state, version 11: each site's runtime (docs/isolation.md): the
-- PHP version it runs ('' is its server's default) and whether it runs in
-- a php-fpm pool and as a Unix user of its own (site) or in the server's
-- shared pool (shared); and the php-fpm versions a web server's verify
-- found, comma-separated, oldest first.
ALTER TABLE sites ADD COLUMN php TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN isolation TEXT NOT NULL DEFAULT 'shared' CHECK (isolation IN ('site','shared'));
ALTER TABLE services ADD COLUMN php_versions TEXT NOT NULL DEFAULT '';
