#!/usr/bin/env bash
# make bench, reload part: 24 queued alias edits of 24 WordPress sites on
# one nginx server, run by `aegir hosting dispatch` with 1 worker and with
# 4, alternately in the same run (ROUNDS times each). Every task returns
# only once nginx serves its change; tasks of one pass share reloads and
# their wait (docs/web-servers.md). Reports the reloads and the wall time
# of each pass, the medians, and the ratio of 1 worker to 4. The figures
# in docs/benchmarks.md (Reloads) come from this output.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=${AEGIR:-$PWD/bin/aegir}
ROUNDS=${ROUNDS:-3}
N=${SITES:-24}
[ -x "$AEGIR" ] || { echo "bench-reload: no $AEGIR; run make build" >&2; exit 1; }
. scripts/bench-lib.sh

prefix=br$$
bench_setup bench-reload "$prefix"
# Only the edits run: no scheduled cron, statistics or certificate tasks.
export AEGIR_QUEUE_CRON_ENABLED=false AEGIR_QUEUE_STATS_ENABLED=false AEGIR_QUEUE_CERT_ENABLED=false
echo "reload benchmark: $N WordPress sites on a private nginx, in $work"
port=$(free_port)
start_nginx "$work/nginx" "$port" "$AEGIR_HOME/config/bench/nginx.conf"
reloads=$work/reloads
"$AEGIR" server add bench --host localhost --http nginx --http-port "$port" --http-listen-ip 127.0.0.1 \
  --http-test-cmd "$NGINX_CMD -t" --http-restart-cmd "echo reload >> $reloads && $NGINX_CMD -s reload" \
  --db mariadb --db-host 127.0.0.1 -q >/dev/null
"$AEGIR" platform add wp --server bench --root "$work/wp" -q >/dev/null
for i in $(seq 1 "$N"); do
  "$AEGIR" site install "$prefix-$i.test" --platform wp --queue -q >/dev/null
done
"$AEGIR" hosting dispatch --workers 4 -q >/dev/null
failed=$("$AEGIR" task list --status error --format csv --fields id | tail -n +2 | wc -l)
[ "$failed" -eq 0 ] || { echo "bench-reload: $failed site installs failed: aegir task list --status error" >&2; exit 1; }

now() { date +%s%N; }
# pass ROUND WORKERS: queue one alias edit per site, dispatch, print
# "reloads seconds".
pass() {
  local round=$1 workers=$2 s e
  for i in $(seq 1 "$N"); do
    "$AEGIR" site edit "$prefix-$i.test" --add-alias "r$round-w$workers.$prefix-$i.test" --queue -q >/dev/null
  done
  : > "$reloads"
  s=$(now)
  "$AEGIR" hosting dispatch --workers "$workers" -q >/dev/null
  e=$(now)
  local bad
  bad=$("$AEGIR" task list --status error --format csv --fields id | tail -n +2 | wc -l)
  [ "$bad" -eq 0 ] || { echo "bench-reload: tasks failed: aegir task list --status error" >&2; exit 1; }
  # The last alias answers at once: the pass ended with nginx serving it.
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: r$round-w$workers.$prefix-$N.test" "http://127.0.0.1:$port/wp-login.php")
  [ "$code" = 200 ] || echo "bench-reload: the last new alias answered $code right after the pass, not 200" >&2
  printf '%s %s\n' "$(wc -l < "$reloads")" "$(echo "($e - $s) / 1000000000" | bc -l)"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
r1=() t1=() r4=() t4=()
for round in $(seq 1 "$ROUNDS"); do
  read -r r t < <(pass "$round" 1); r1+=("$r"); t1+=("$t")
  read -r r t < <(pass "$round" 4); r4+=("$r"); t4+=("$t")
done
m1=$(printf '%s\n' "${t1[@]}" | median)
m4=$(printf '%s\n' "${t4[@]}" | median)
printf '\n%s alias edits, one server, %s rounds (reloads; seconds):\n' "$N" "$ROUNDS"
printf '%-10s %-22s %-30s %10s\n' "workers" "reloads per pass" "seconds per pass" "median s"
printf '%-10s %-22s %-30s %10.2f\n' 1 "${r1[*]}" "$(printf '%.2f ' "${t1[@]}")" "$m1"
printf '%-10s %-22s %-30s %10.2f\n' 4 "${r4[*]}" "$(printf '%.2f ' "${t4[@]}")" "$m4"
printf '4 workers are %.1fx as fast as 1\n' "$(echo "$m1 / $m4" | bc -l)"
