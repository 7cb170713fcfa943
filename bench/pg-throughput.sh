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
bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
WORK=$(mktemp -d)
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$WORK"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { "${as_pg[@]}" "$bin/pg_ctl" stop -m immediate -D "$WORK/data" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
"${as_pg[@]}" "$bin/initdb" -D "$WORK/data" -U postgres -A trust >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" start -w -D "$WORK/data" -l "$WORK/server.log" \
    -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=100" >/dev/null
"${as_pg[@]}" psql -h 127.0.0.1 -p "$PORT" -U postgres -qc 'CREATE DATABASE bench' >/dev/null

cargo bench -q -p switchboard-engine --bench throughput --no-run 2>/dev/null
run() {
    SB_BENCH_N=$N SB_BENCH_CONCURRENCY=$CONCURRENCY "$@" \
        cargo bench -q -p switchboard-engine --bench throughput 2>/dev/null | awk '/^throughput:/ { print $2 }'
}
pg=$(run env SB_BENCH_STORAGE="postgres://postgres@127.0.0.1:$PORT/bench")
sqlite=$(run env)
printf 'PostgreSQL: %.0f executions/s\nSQLite:     %.0f executions/s\nPostgreSQL / SQLite: %.2f\n' \
    "$pg" "$sqlite" "$(awk -v a="$pg" -v b="$sqlite" 'BEGIN { print a / b }')"
