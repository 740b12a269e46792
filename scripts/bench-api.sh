#!/usr/bin/env bash
# make bench, API part: the HTTP API's server time for GET /api/sites over
# 10,000 sites (an admin, and a client's user whose client has 50 of them)
# from pkg/api's Go benchmarks, then requests a second for
# GET /api/sites/{domain} with wrk against a real aegir serve on the state
# AEGIR_HOME (bench.sh seeds it; 50 sites are client acme's). The figures
# in docs/benchmarks.md (HTTP API) come from this output.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=${AEGIR:-$PWD/bin/aegir}
. scripts/bench-lib.sh
[ -n "${AEGIR_HOME:-}" ] || { echo "bench-api: AEGIR_HOME must be a seeded state (bench.sh)" >&2; exit 1; }

go test -run '^$' -bench . -benchtime 20x ./pkg/api/ | grep -E '^Benchmark'

command -v wrk >/dev/null || { echo "bench-api: no wrk (apt-get install wrk); skipping requests a second" >&2; exit 0; }
"$AEGIR" user add bench-admin --role admin -q >/dev/null 2>&1 || true
"$AEGIR" user add bench-client --client acme -q >/dev/null 2>&1 || true
admin=$("$AEGIR" token create --user bench-admin -q)
client=$("$AEGIR" token create --user bench-client -q)
port=$(free_port)
"$AEGIR" serve --listen "127.0.0.1:$port" --rate 1000000 --burst 1000000 -q &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/api/openapi.json" && break
  sleep 0.1
done
# Baseline: the OpenAPI document, served from memory with no token, audited
# as every request is.
echo "wrk: GET /api/openapi.json (baseline: no token, no state read but the audit log's entry)"
wrk -t2 -c8 -d10s "http://127.0.0.1:$port/api/openapi.json" | grep -E 'Requests/sec|Latency|requests in|Non-2xx'
for who in admin client; do
  tok=$admin; [ "$who" = client ] && tok=$client
  echo "wrk: GET /api/sites/site00007.example.test as the $who (2 threads, 8 connections, 10 s)"
  wrk -t2 -c8 -d10s -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/sites/site00007.example.test" |
    grep -E 'Requests/sec|Latency|requests in|Non-2xx'
done
