#!/usr/bin/env bash
# make bench: speed of the command line on a large state, side by side with
# a baseline process start in the same run. Figures go to docs/benchmarks.md
# by hand from this output.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=$PWD/bin/aegir
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export AEGIR_HOME=$work/home

echo "seeding 10,000 sites (each with an alias; 50 of client acme) and 100,000 tasks (500 queued)..."
go run ./scripts/benchseed -home "$AEGIR_HOME" -sites 10000 -tasks 100000 -queued 500 -client-sites 50

# median wall time in ms of N runs of a command
median_ms() {
  local n=$1; shift
  local times=()
  for _ in $(seq 1 "$n"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f", m/1000}'
}

base=$(median_ms 21 /bin/true)
ver=$(median_ms 21 "$AEGIR" version)
sl=$(median_ms 11 "$AEGIR" site list --format json)
tq=$(median_ms 11 "$AEGIR" task list --status queued --limit 0)
tl=$(median_ms 11 "$AEGIR" task list)
sc=$(median_ms 11 "$AEGIR" __complete site show '')
go test -run '^$' -bench . -benchtime 20x ./pkg/provision/app/drupal/ 2>/dev/null | grep -E '^Benchmark' || true
# What a task that rewrote a site's settings spends on php-fpm's opcache, against a php-fpm reload
# (docs/benchmarks.md, Opcache).
go test -run '^$' -bench 'RefreshPHP|PHPFPMReload' -benchtime 20x ./pkg/provision/web/ 2>/dev/null | grep -E '^Benchmark' || true

printf '\n%-45s %10s %12s\n' "command" "median ms" "vs /bin/true"
printf '%-45s %10s %12s\n' "/bin/true (process start baseline)" "$base" "1.0x"
for row in "aegir version|$ver" "aegir site list --format json (10k sites)|$sl" "aegir task list --status queued (500 of 100k)|$tq" "aegir task list (newest 100 of 100k)|$tl" "aegir __complete site show '' (10k domains)|$sc"; do
  name=${row%|*}; ms=${row#*|}
  printf '%-45s %10s %11.1fx\n' "$name" "$ms" "$(echo "$ms / $base" | bc -l)"
done

# The HTTP API: server time of the site lists, requests a second with wrk (docs/benchmarks.md, HTTP API).
bash scripts/bench-api.sh

# Fleet scale, simulated: 10,000 to 100,000 sites on simulated servers, on SQLite and PostgreSQL
# (docs/benchmarks.md, Fleet scale).
bash scripts/bench-fleet.sh

# Backups and restores, side by side with tar and mariadb-dump (docs/benchmarks.md, Backups).
bash scripts/bench-backup.sh

# Reloads: 24 queued alias edits on one server, 1 worker against 4 (docs/benchmarks.md, Reloads).
bash scripts/bench-reload.sh

# Isolation: site install isolated against shared, and what idle pools cost (docs/benchmarks.md, Isolation).
bash scripts/bench-isolation.sh

# Upgrades: platform migrate of 50 sites, 4 moves at once against one at a time, and what one
# site's health gate costs (docs/benchmarks.md, Upgrades).
bash scripts/bench-migrate.sh
