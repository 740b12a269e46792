-- aegir state, version 8: a site's health as its last verify found it:
-- ok or error, the HTTP status and time of its answer, when, and why not
-- ok.
ALTER TABLE sites ADD COLUMN health_status TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN health_http_code BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN health_time_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN health_checked BIGINT;
ALTER TABLE sites ADD COLUMN health_error TEXT NOT NULL DEFAULT '';
