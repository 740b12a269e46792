-- aegir state, version 7: a web server reload that failed after its
-- changes were written, to be done again by the next task on the server.
-- reload_pending is when (unix ms) the failed reload started; 0: none. A
-- reload that starts later and serves clears it.
ALTER TABLE services ADD COLUMN reload_pending INTEGER NOT NULL DEFAULT 0;
