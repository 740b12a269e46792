#!/usr/bin/env bash
# make bench, upgrade part: `aegir platform migrate` of 50 WordPress sites
# between two WordPress platforms on one server (a private nginx, the
# system's php-fpm and MariaDB), one move at a time (--per-server 1)
# against 4 at once (--per-server 4), alternately in the same run: the
# sites go from a to b one at a time, back from b to a 4 at a time, and
# so on (ROUNDS times each). Every site passes its health gate (a verify's
# health check and its front page's title) before its old copy goes; what
# that gate costs is read from the moves' logs. Reports the wall time of
# each pass, the medians, the ratio, and the gate's share of a move. The
# figures in docs/benchmarks.md (Upgrades) come from this output.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=${AEGIR:-$PWD/bin/aegir}
ROUNDS=${ROUNDS:-2}
N=${SITES:-50}
[ -x "$AEGIR" ] || { echo "bench-migrate: no $AEGIR; run make build" >&2; exit 1; }
. scripts/bench-lib.sh

prefix=bm$$
bench_setup bench-migrate "$prefix"
export AEGIR_QUEUE_CRON_ENABLED=false AEGIR_QUEUE_STATS_ENABLED=false AEGIR_QUEUE_CERT_ENABLED=false
echo "upgrade benchmark: $N WordPress sites on a private nginx, in $work"
port=$(free_port)
start_nginx "$work/nginx" "$port" "$AEGIR_HOME/config/bench/nginx.conf"
"$AEGIR" server add bench --host localhost --http nginx --http-port "$port" --http-listen-ip 127.0.0.1 \
  --http-test-cmd "$NGINX_CMD -t" --http-restart-cmd "$NGINX_CMD -s reload" \
  --db mariadb --db-host 127.0.0.1 -q >/dev/null
cp -a "$work/wp" "$work/wp2"
"$AEGIR" platform add a --server bench --root "$work/wp" -q >/dev/null
"$AEGIR" platform add b --server bench --root "$work/wp2" -q >/dev/null
for i in $(seq 1 "$N"); do
  "$AEGIR" site install "$prefix-$i.test" --platform a --queue -q >/dev/null
done
"$AEGIR" hosting dispatch --workers 4 -q >/dev/null
failed=$("$AEGIR" task list --status error --format csv --fields id | tail -n +2 | wc -l)
[ "$failed" -eq 0 ] || { echo "bench-migrate: $failed site installs failed: aegir task list --status error" >&2; exit 1; }

now() { date +%s%N; }
# cpu: the machine's busy and total jiffies (all cores), from /proc/stat.
cpu() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# own: the CPU jiffies the benchmark's servers used so far: MariaDB,
# php-fpm (master, workers, and those gone: the master's cutime) and the
# private nginx; with the pass's own children (kids: aegir and what it
# runs, php, mysql, tar, nginx -t), the benchmark's CPU without other
# jobs on the machine.
own() {
  local pids j fpm
  # The system's php-fpm (its master reads /etc/php), not the private
  # ones tests start.
  fpm=$(pgrep -f '^php-fpm: master process \(/etc/php' || true)
  pids="$(pidof mariadbd mysqld 2>/dev/null || true) $fpm $(for m in $fpm; do pgrep -P "$m"; done) $(pgrep -f "nginx.*$work/nginx" || true)"
  j=0
  for p in $pids; do
    [ -r "/proc/$p/stat" ] || continue
    j=$(( j + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$j"
}
# kids FILE: the user and system seconds of this shell's children that
# ended, from the output of times in FILE.
kids() { awk 'NR == 2 {gsub(/[ms]/, " "); print ($1 * 60 + $2 + $3 * 60 + $4)}' "$1"; }
# pass FROM TO PER_SERVER: migrate every site, print the seconds it took
# and the parent task's id.
pass() {
  local from=$1 to=$2 per=$3 s e id b0 t0 b1 t1 o0 k0 o1 k1
  read -r b0 t0 < <(cpu)
  read -r o0 < <(own)
  times > "$work/times0"
  s=$(now)
  "$AEGIR" platform migrate "$from" "$to" --canary 0 --wave "$N" --per-server "$per" -q >/dev/null ||
    { echo "bench-migrate: platform migrate $from $to failed: aegir task list --type platform.migrate" >&2; exit 1; }
  e=$(now)
  read -r b1 t1 < <(cpu)
  times > "$work/times1"
  read -r o1 < <(own)
  k0=$(kids "$work/times0") k1=$(kids "$work/times1")
  echo "$per $(( 100 * (b1 - b0) / (t1 - t0) )) $(( b1 - b0 )) $(( o1 - o0 )) $(echo "$k1 - $k0" | bc -l)" >> "$work/busy"
  id=$("$AEGIR" task list --type platform.migrate --limit 1 --format csv --fields id | tail -n 1)
  left=$("$AEGIR" site list --platform "$from" --format count)
  [ "$left" -eq 0 ] || { echo "bench-migrate: $left sites left on $from after task $id" >&2; exit 1; }
  # The last site answers on its new platform at once.
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $prefix-$N.test" "http://127.0.0.1:$port/")
  [ "$code" = 200 ] || echo "bench-migrate: $prefix-$N.test answered $code right after the pass, not 200" >&2
  printf '%s %s\n' "$(echo "($e - $s) / 1000000000" | bc -l)" "$id"
}

# gate PARENT: for each site move of task PARENT, its health gate's
# milliseconds (the front page read before the move plus the gate after
# it) and the move's, from the moves' logs and records.
gate() {
  local id
  for id in $("$AEGIR" task list --parent "$1" --limit 0 --format csv --fields id | tail -n +2); do
    "$AEGIR" task log "$id" | awk '
      function ms(d) { if (d ~ /ms$/) return d + 0; if (d ~ /µs$/) return 0; return d * 1000 }
      /health gate: .* before the move \(read in / { d = $NF; sub(/\)$/, "", d); g += ms(d) }
      /health gate passed on platform / { for (i = 1; i <= NF; i++) if ($i == "in") { d = $(i+1); sub(/:$/, "", d); g += ms(d) } }
      END { printf "%d ", g }'
    "$AEGIR" task show "$id" --format json | python3 -c 'import json,sys,datetime as d
t=json.load(sys.stdin); f=lambda s: d.datetime.fromisoformat(s.replace("Z","+00:00"))
print(int((f(t["finished"])-f(t["started"])).total_seconds()*1000))'
  done
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t1=() t4=() gates=()
from=a to=b
for round in $(seq 1 "$ROUNDS"); do
  read -r t id < <(pass "$from" "$to" 1); t1+=("$t")
  while read -r g m; do gates+=("$g $m"); done < <(gate "$id")
  read -r t id < <(pass "$to" "$from" 4); t4+=("$t")
done
m1=$(printf '%s\n' "${t1[@]}" | median)
m4=$(printf '%s\n' "${t4[@]}" | median)
gm=$(printf '%s\n' "${gates[@]}" | awk '{print $1}' | median)
mm=$(printf '%s\n' "${gates[@]}" | awk '{print $2}' | median)
printf '\nplatform migrate of %s sites, one server, %s rounds (seconds per pass):\n' "$N" "$ROUNDS"
printf '%-22s %-30s %10s %14s\n' "moves at once" "seconds per pass" "median s" "s per site"
printf '%-22s %-30s %10.2f %14.2f\n' "1 (--per-server 1)" "$(printf '%.2f ' "${t1[@]}")" "$m1" "$(echo "$m1 / $N" | bc -l)"
printf '%-22s %-30s %10.2f %14.2f\n' "4 (--per-server 4)" "$(printf '%.2f ' "${t4[@]}")" "$m4" "$(echo "$m4 / $N" | bc -l)"
printf -- '--per-server 4 is %.1fx as fast as one at a time\n' "$(echo "$m1 / $m4" | bc -l)"
# How busy the machine's cores were during each pass (all processes: the
# sites' PHP, MariaDB, nginx, aegir, and whatever else ran meanwhile).
printf 'cores busy during the passes, 1 at a time: %s%%; 4 at once: %s%%\n' \
  "$(awk '$1 == 1 {printf "%s ", $2}' "$work/busy")" "$(awk '$1 == 4 {printf "%s ", $2}' "$work/busy")"
# The CPU the passes took, all processes (jiffies of /proc/stat, per
# second: getconf CLK_TCK), per site; on C cores, a pass takes at least
# its CPU / C, so one at a time can be at most T1 / (CPU4 / C) times as
# slow as 4 at once: the ratio's ceiling on this machine.
hz=$(getconf CLK_TCK)
cores=$(nproc)
c1=$(awk -v n="$N" -v hz="$hz" '$1 == 1 {print $3 / hz / n}' "$work/busy" | median)
c4=$(awk -v n="$N" -v hz="$hz" '$1 == 4 {print $3 / hz / n}' "$work/busy" | median)
o1=$(awk -v n="$N" -v hz="$hz" '$1 == 1 {print ($4 / hz + $5) / n}' "$work/busy" | median)
o4=$(awk -v n="$N" -v hz="$hz" '$1 == 4 {print ($4 / hz + $5) / n}' "$work/busy" | median)
printf 'CPU per site (median): all processes %.2f core-s one at a time, %.2f 4 at once; the benchmark'"'"'s own (aegir and its children, MariaDB, php-fpm, nginx) %.2f and %.2f\n' \
  "$c1" "$c4" "$o1" "$o4"
printf 'on %s cores a pass takes at least its CPU / %s: 4 at once can be at most %.1fx as fast as one at a time (%.2f s a site against %.2f own core-s / %s)\n' \
  "$cores" "$cores" "$(echo "($m1 / $N) / ($o4 / $cores)" | bc -l)" "$(echo "$m1 / $N" | bc -l)" "$o4" "$cores"
printf 'health gate of one site (one at a time; %s moves): median %s ms of a move of %s ms (%.0f%%)\n' \
  "${#gates[@]}" "$gm" "$mm" "$(echo "100 * $gm / $mm" | bc -l)"
