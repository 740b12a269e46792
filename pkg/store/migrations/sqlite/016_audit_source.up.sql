-- aegir state, version 16: the address an API or dashboard request came
-- from (its connection's, without the port), which aegir audit list shows
-- beside who made it: the refused tokens of an address are limited.
ALTER TABLE audit_log ADD COLUMN source TEXT NOT NULL DEFAULT '';
