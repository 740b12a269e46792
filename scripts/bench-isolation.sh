#!/usr/bin/env bash
# make bench, isolation part (docs/isolation.md): the time of aegir site
# install of a WordPress site isolated (its own Unix user and php-fpm pool)
# against one shared (the server's pool), alternately, ROUNDS times each
# after one of each to warm the caches; the medians and their ratio (goal:
# at most 1.2x). Then what idle pools cost: the processes of the isolated
# sites' pools once idle (pm = ondemand: none), and php-fpm's master's
# memory with them against without. A private nginx and php-fpm (Debian's
# binaries, a root master that includes its pool directory) serve the
# sites; the figures in docs/benchmarks.md (Isolation) come from this.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=$PWD/bin/aegir
ROUNDS=${ROUNDS:-3}
FPM=${FPM:-/usr/sbin/php-fpm8.2}
[ -x "$AEGIR" ] || { echo "bench-isolation: no $AEGIR; run make build" >&2; exit 1; }
[ -x "$FPM" ] || { echo "bench-isolation: no $FPM (apt-get install php8.2-fpm)" >&2; exit 1; }
. scripts/bench-lib.sh
P=iso$$
sites=()
cleanup_sites() {
  local d
  for d in "${sites[@]}"; do "$AEGIR" -y site delete "$d" --no-backup -q >/dev/null 2>&1 || true; done
  [ ! -f "$work/fpm/php-fpm.pid" ] || kill "$(cat "$work/fpm/php-fpm.pid")" 2>/dev/null || true
}
BENCH_BEFORE_CLEANUP=cleanup_sites
bench_setup bench-isolation "$P"
echo "isolation benchmark: in $work"
mkdir -p "$work/fpm/pool.d"
cat > "$work/fpm/php-fpm.conf" <<FPMCONF
[global]
pid = $work/fpm/php-fpm.pid
error_log = $work/fpm/php-fpm.log
include = $work/fpm/pool.d/*.conf

[shared]
user = www-data
group = www-data
listen = $work/fpm/php-fpm.sock
listen.owner = www-data
listen.group = www-data
pm = ondemand
pm.max_children = 5
FPMCONF
"$FPM" --fpm-config "$work/fpm/php-fpm.conf"
for _ in $(seq 50); do [ -S "$work/fpm/php-fpm.sock" ] && break; sleep 0.1; done
cat >> "$AEGIR_HOME/aegir.yaml" <<YAML

php_fpm:
  pool_dir: $work/fpm/pool.d
  test_cmd: '$FPM -t --fpm-config $work/fpm/php-fpm.conf'
  reload_cmd: 'kill -USR2 "\$(cat $work/fpm/php-fpm.pid)"'
  runtime_dir: $work/runtime
  logrotate_file: $work/logrotate.conf
YAML
port=$(free_port)
start_nginx "$work/nginx" "$port" "$AEGIR_HOME/config/bench/nginx.conf"
"$AEGIR" server add bench --host localhost --http nginx --http-port "$port" --http-listen-ip 127.0.0.1 \
  --http-test-cmd "$NGINX_CMD -t" --http-restart-cmd "$NGINX_CMD -s reload" --php-fpm "$work/fpm/php-fpm.sock" \
  --db mariadb --db-host 127.0.0.1 -q >/dev/null
"$AEGIR" platform add wp --server bench --root "$work/wp" -q >/dev/null

now() { date +%s%N; }
ms() { echo "($2 - $1) / 1000000" | bc; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
install() { # DOMAIN ISOLATION: prints the milliseconds it took (run it in $(...): record the domain in sites first)
  local t0; t0=$(now)
  "$AEGIR" site install "$1" --platform wp --isolation "$2" -q >/dev/null
  ms "$t0" "$(now)"
}
master_rss() { ps -o rss= -p "$(cat "$work/fpm/php-fpm.pid")" | tr -d ' '; }

echo "warming the caches (one install of each, not counted)..."
sites+=("$P-wshared.test" "$P-wsite.test")
install "$P-wshared.test" shared >/dev/null
install "$P-wsite.test" site >/dev/null
rss_before=$(master_rss)
sh=() is=()
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS..."
  sites+=("$P-s$r.test" "$P-i$r.test")
  sh+=("$(install "$P-s$r.test" shared)")
  is+=("$(install "$P-i$r.test" site)")
done
SH=$(median "${sh[@]}"); IS=$(median "${is[@]}")
# Each isolated site's front page once, so that its pool started workers;
# then the idle timeout (10 s) passes.
for r in $(seq "$ROUNDS"); do curl -s -o /dev/null -H "Host: $P-i$r.test" "http://127.0.0.1:$port/"; done
busy=0
for r in $(seq "$ROUNDS"); do busy=$((busy + $(pgrep -c -u "$("$AEGIR" site show "$P-i$r.test" --field unix_user)" || true))); done
sleep 12
idle=0
for r in $(seq "$ROUNDS") w; do
  d="$P-i$r.test"; [ "$r" = w ] && d="$P-wsite.test"
  idle=$((idle + $(pgrep -c -u "$("$AEGIR" site show "$d" --field unix_user)" || true)))
done
rss_after=$(master_rss)
pools=$((ROUNDS + 1))

printf '\nmachine: %s cores, %s\n' "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf 'median of %s rounds, milliseconds\n\n' "$ROUNDS"
printf '%-52s %8s %8s\n' "site install (WordPress, private nginx and php-fpm)" "ms" "ratio"
printf '%-52s %8s %8s\n' "--isolation shared" "$SH" "1.00x"
printf '%-52s %8s %7.2fx\n' "--isolation site (user, pool, php-fpm test + reload)" "$IS" "$(echo "$IS / $SH" | bc -l)"
printf '\n%-52s %8s\n' "pool workers right after one request each ($ROUNDS pools)" "$busy"
printf '%-52s %8s\n' "pool workers after 12 s idle ($pools pools)" "$idle"
printf '%-52s %8s\n' "php-fpm master RSS KiB, shared + 1 isolated pool" "$rss_before"
printf '%-52s %8s\n' "php-fpm master RSS KiB, shared + $pools isolated pools" "$rss_after"
