#!/usr/bin/env bash
# make demo: aegir's main job end to end on this machine.
#
# Builds nothing itself (make demo builds bin/aegir first), then:
#   1. an aegir home in $DEMO_HOME (default /var/tmp/aegir-demo),
#   2. a private nginx (Debian's) on 127.0.0.1:$DEMO_PORT that includes aegir's config,
#      as a system nginx would with one include line,
#   3. a WordPress platform copied from Debian's wordpress package,
#   4. `aegir server add`, `aegir platform add`, `aegir site install` with an alias,
#   5. the site answering over HTTP, its alias redirecting.
# Run it again at will: it starts from a clean demo home each time.
set -euo pipefail
cd "$(dirname "$0")/.."

AEGIR=${AEGIR:-$PWD/bin/aegir}
DEMO_HOME=${DEMO_HOME:-/var/tmp/aegir-demo}
DEMO_PORT=${DEMO_PORT:-8080}
DOMAIN=${DEMO_DOMAIN:-blog.demo.test}
export AEGIR_HOME=$DEMO_HOME/home

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

[ -x "$AEGIR" ] || fail "no aegir binary at $AEGIR; run: make demo (it builds it)"
if (exec 3<>/dev/tcp/127.0.0.1/"$DEMO_PORT") 2>/dev/null && ! [ -f "$DEMO_HOME/nginx/nginx.pid" ]; then
  fail "port $DEMO_PORT on 127.0.0.1 is taken by another program; run with DEMO_PORT=another-port make demo"
fi

say "Clean demo home: $DEMO_HOME"
if [ -f "$AEGIR_HOME/aegir.db" ]; then
  # Drop the previous demo site's database and user through aegir itself
  # (while its nginx still runs, so that the vhost removal can reload it).
  "$AEGIR" -y site delete "$DOMAIN" --no-backup -q >/dev/null 2>&1 || true
fi
if [ -f "$DEMO_HOME/nginx/nginx.pid" ]; then
  nginx -p "$DEMO_HOME/nginx" -c "$DEMO_HOME/nginx/nginx.conf" -s stop 2>/dev/null || true
  sleep 0.5
fi
rm -rf "$DEMO_HOME"
mkdir -p "$DEMO_HOME/nginx/tmp" "$DEMO_HOME/platforms"
chmod 755 "$DEMO_HOME"

say "aegir init"
"$AEGIR" init
# The web server's workers (www-data) read what aegir writes under config/.
chmod 711 "$AEGIR_HOME"

say "A private nginx on 127.0.0.1:$DEMO_PORT, including aegir's config"
cp /etc/nginx/fastcgi_params "$DEMO_HOME/nginx/"
cat > "$DEMO_HOME/nginx/nginx.conf" <<NGINX
user www-data;
worker_processes 1;
pid $DEMO_HOME/nginx/nginx.pid;
error_log $DEMO_HOME/nginx/error.log warn;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log $DEMO_HOME/nginx/access.log;
    client_body_temp_path $DEMO_HOME/nginx/tmp/body;
    fastcgi_temp_path $DEMO_HOME/nginx/tmp/fastcgi;
    proxy_temp_path $DEMO_HOME/nginx/tmp/proxy;
    uwsgi_temp_path $DEMO_HOME/nginx/tmp/uwsgi;
    scgi_temp_path $DEMO_HOME/nginx/tmp/scgi;
    # What a system nginx has on its port (Debian's sites-enabled/default):
    # a server for the names aegir does not serve. A reload of a server
    # with no site yet waits until the port answers (docs/web-servers.md).
    server {
        listen 127.0.0.1:$DEMO_PORT default_server;
        return 404;
    }
    # The one line a system nginx gets (see docs/web-servers.md):
    include $AEGIR_HOME/config/demo/nginx.con[f];
}
NGINX
NGINX_CMD="nginx -p $DEMO_HOME/nginx -c $DEMO_HOME/nginx/nginx.conf"
$NGINX_CMD

say "A WordPress platform from Debian's wordpress package"
cp -a --dereference /usr/share/wordpress "$DEMO_HOME/platforms/wordpress"
chown -R root:root "$DEMO_HOME/platforms/wordpress"

say "aegir server add demo (this machine: nginx on port $DEMO_PORT, MariaDB)"
"$AEGIR" server add demo --host localhost \
  --http nginx --http-port "$DEMO_PORT" --http-listen-ip 127.0.0.1 --http-test-cmd "$NGINX_CMD -t" --http-restart-cmd "$NGINX_CMD -s reload" \
  --db mariadb

say "aegir platform add wordpress"
"$AEGIR" platform add wordpress --server demo --root "$DEMO_HOME/platforms/wordpress"

say "aegir site install $DOMAIN --alias www.$DOMAIN --redirect"
"$AEGIR" site install "$DOMAIN" --platform wordpress --alias "www.$DOMAIN" --redirect

say "The site answers"
# At once: the install returned once nginx served the new site.
body=$(curl -sS --max-time 10 -H "Host: $DOMAIN" "http://127.0.0.1:$DEMO_PORT/" || true)
title=$(printf '%s' "$body" | grep -o '<title>[^<]*</title>' | head -1 || true)
[ -n "$title" ] || fail "http://$DOMAIN:$DEMO_PORT/ did not answer with a page; see $DEMO_HOME/nginx/error.log"
echo "GET http://$DOMAIN:$DEMO_PORT/  ->  $title"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: www.$DOMAIN" "http://127.0.0.1:$DEMO_PORT/some/page")
echo "GET http://www.$DOMAIN:$DEMO_PORT/some/page  ->  $code"

say "aegir site list"
"$AEGIR" site list

cat <<DONE

The site runs. To open it in a browser on this machine, add to /etc/hosts:
    127.0.0.1 $DOMAIN www.$DOMAIN
and visit http://$DOMAIN:$DEMO_PORT/

Try next (export AEGIR_HOME=$AEGIR_HOME first):
    aegir site show $DOMAIN --format json
    aegir task list                        # every change is a task, with its log: aegir task log ID
    aegir site disable $DOMAIN             # answers "site disabled"; aegir site enable $DOMAIN
    aegir site login-reset $DOMAIN         # a one-time login link
    aegir package list --platform wordpress
    aegir site backup $DOMAIN              # one .tar.gz in \$AEGIR_HOME/backups: aegir backup list
    aegir site delete $DOMAIN              # a backup first, then vhost, files, database and user go
    aegir site restore $DOMAIN             # brings the deleted site back from that backup
Stop the demo's nginx with: $NGINX_CMD -s stop
DONE
