#!/usr/bin/env bash
# Executions per second end to end on PostgreSQL, beside the same on SQLite,
# in one run: the engine's throughput bench (bench/throughput.sh) pointed at
# a PostgreSQL server this script starts in a temporary folder on a free
# loopback port (as the `postgres` user when run as root), with the
# server's default durability settings. One node.
#
#   bench/pg-throughput.sh            # N=5000, 16 at a time
#   N=20000 bench/pg-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
CONCURRENCY=${CONCURRENCY:-16}
WORK=$(mktemp -d)
cleanup() { pg_stop; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
. bench/lib/pg.sh
pg_database bench

cargo bench -q -p switchboard-engine --bench throughput --no-run 2>/dev/null
run() {
    SB_BENCH_N=$N SB_BENCH_CONCURRENCY=$CONCURRENCY "$@" \
        cargo bench -q -p switchboard-engine --bench throughput 2>/dev/null | awk '/^throughput:/ { print $2 }'
}
pg=$(run env SB_BENCH_STORAGE="postgres://postgres@127.0.0.1:$PORT/bench")
sqlite=$(run env)
printf 'PostgreSQL: %.0f executions/s\nSQLite:     %.0f executions/s\nPostgreSQL / SQLite: %.2f\n' \
    "$pg" "$sqlite" "$(awk -v a="$pg" -v b="$sqlite" 'BEGIN { print a / b }')"
