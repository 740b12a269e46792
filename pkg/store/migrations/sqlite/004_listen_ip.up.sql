-- aegir state, version 4: the address a web service's virtual hosts listen on.
ALTER TABLE services ADD COLUMN listen_ip TEXT NOT NULL DEFAULT '';
