#!/usr/bin/env bash
# make bench: fleet scale, simulated (docs/benchmarks.md, Fleet scale). A
# fleet of 100 sites a server (10,000, 30,000 and 100,000 sites) on
# simulated servers (pkg/internal/simexec, a recording executor the aegir
# binary does not contain), on SQLite and on PostgreSQL: one dispatch's
# planning and claiming of every queue, a cron plan, a whole dispatch pass
# through the back end (with the most connections one server got), then
# `aegir site list --format json` (wall time, CPU time, peak RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=$PWD/bin/aegir
SIZES=${AEGIR_BENCH_FLEET:-10000,30000,100000}
PG_ADMIN=${AEGIR_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
work=$(mktemp -d)
db=""
cleanup() {
  if [ -n "$db" ]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== fleet scale: date $(date -u +%FT%TZ), load: $(uptime)"
go build -o "$work/benchseed" ./scripts/benchseed
go test -c -o "$work/hosting.test" ./pkg/hosting
for state in sqlite postgres; do
  echo "== $state: go benchmarks (sizes $SIZES)"
  # Each benchmark state is a database (or file) of its own, dropped after.
  (cd pkg/hosting && AEGIR_TEST_STATE=$state AEGIR_BENCH_FLEET=$SIZES "$work/hosting.test" -test.run '^$' \
    -test.bench 'FleetPlanClaim|FleetCronPlan' -test.benchtime 3x -test.timeout 60m | grep -E '^Benchmark|FAIL')
  (cd pkg/hosting && AEGIR_TEST_STATE=$state AEGIR_BENCH_FLEET=$SIZES "$work/hosting.test" -test.run '^$' \
    -test.bench 'FleetDispatch' -test.benchtime 1x -test.timeout 60m | grep -E '^Benchmark|FAIL|connections')
  # The host key lookup of an SSH dial with 10 and 1,000 servers' keys in the state.
  (cd pkg/hosting && AEGIR_TEST_STATE=$state "$work/hosting.test" -test.run '^$' \
    -test.bench 'StateKnownHostsKeys' -test.benchtime 300x -test.timeout 10m | grep -E '^Benchmark|FAIL')
done

# site list --format json: three runs each, wall and CPU seconds, peak RSS.
for n in ${SIZES//,/ }; do
  for state in sqlite postgres; do
    home=$work/home-$state-$n
    mkdir -p "$home"
    if [ "$state" = postgres ]; then
      db=aegir_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
      psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
      dsn=${PG_ADMIN%%/postgres\?*}/$db?sslmode=disable
      "$work/benchseed" -servers $((n / 100)) -sites "$n" -state "$dsn"
      export AEGIR_STATE=$dsn
    else
      "$work/benchseed" -home "$home" -servers $((n / 100)) -sites "$n"
      unset AEGIR_STATE
    fi
    for _ in 1 2 3; do
      AEGIR_HOME=$home /usr/bin/time -f "site list --format json, $n sites, $state: %e s wall, %U+%S s CPU, %M KB peak RSS" \
        "$AEGIR" site list --format json >/dev/null
    done
    unset AEGIR_STATE
    if [ -n "$db" ]; then psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null; db=""; fi
    rm -rf "$home"
  done
done
echo "== load after: $(uptime)"
