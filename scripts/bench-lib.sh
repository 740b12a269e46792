# Sourced by the make bench scripts.

# start_nginx DIR PORT INCLUDE starts a
# private nginx (Debian's binary) in DIR, on 127.0.0.1:PORT, that includes
# INCLUDE inside http {} as a system nginx includes aegir's file (the glob
# lets it start before the file exists), and sets NGINX_CMD to the command
# that drives it (add -t, -s reload, -s stop).
start_nginx() {
  local dir=$1 port=$2 include=$3
  mkdir -p "$dir/tmp"
  cp /etc/nginx/fastcgi_params "$dir/"
  cat > "$dir/nginx.conf" <<NGINX
user www-data;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port default_server;
        return 404;
    }
    include ${include%?}[${include: -1}];
}
NGINX
  NGINX_CMD="nginx -p $dir -c $dir/nginx.conf"
  $NGINX_CMD
}

# free_port prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# drop_dbs PREFIX drops the MariaDB databases and users whose names start
# with PREFIX.
drop_dbs() {
  local d u
  for d in $(mariadb -N -e "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '${1}%'"); do
    mariadb -e "DROP DATABASE IF EXISTS \`$d\`"
  done
  for u in $(mariadb -N -e "SELECT CONCAT('\`', User, '\`@\`', Host, '\`') FROM mysql.user WHERE User LIKE '${1}%'"); do
    mariadb -e "DROP USER $u"
  done
}

# bench_setup NAME DBPREFIX makes the work dir $work (/var/tmp/aegir-NAME.*)
# with an aegir home ($AEGIR_HOME, that the web server's workers can pass),
# the sites' runtime directory and logrotate file
# and a WordPress tree in $work/wp. On exit bench_cleanup runs the
# command in $BENCH_BEFORE_CLEANUP, drops the databases and users of
# DBPREFIX, stops the private nginx and removes $work.
bench_setup() {
  work=$(mktemp -d "/var/tmp/aegir-$1.XXXXXX")
  chmod 755 "$work"
  export AEGIR_HOME=$work/home
  # The sites' runtime (logs, tmp, pools) and the logrotate file in the
  # work dir too, not in /var/lib/aegir and /etc/logrotate.d/aegir.
  export AEGIR_PHP_FPM_RUNTIME_DIR=$work/runtime AEGIR_PHP_FPM_LOGROTATE_FILE=$work/logrotate.conf
  BENCH_DB_PREFIX=$2
  NGINX_CMD=
  trap bench_cleanup EXIT
  "$AEGIR" init -q >/dev/null
  chmod 711 "$AEGIR_HOME"
  cp -a --dereference /usr/share/wordpress "$work/wp"
  chown -R root:root "$work/wp"
}

bench_cleanup() {
  [ -z "${BENCH_BEFORE_CLEANUP:-}" ] || $BENCH_BEFORE_CLEANUP
  drop_dbs "$BENCH_DB_PREFIX"
  [ -z "$NGINX_CMD" ] || $NGINX_CMD -s stop 2>/dev/null || true
  rm -rf "$work"
}
