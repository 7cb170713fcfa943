# Sourced by the benchmark scripts: starts a PostgreSQL server in "$WORK"
# on a free loopback port (as the `postgres` user when run as root) and
# stops it on exit. Sets PORT; `pg_database NAME` creates a database.
bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$WORK"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg_stop() { "${as_pg[@]}" "$bin/pg_ctl" stop -m immediate -D "$WORK/data" >/dev/null 2>&1 || true; }
"${as_pg[@]}" "$bin/initdb" -D "$WORK/data" -U postgres -A trust >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" start -w -D "$WORK/data" -l "$WORK/server.log" \
    -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=100" >/dev/null
pg_database() { "${as_pg[@]}" psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE $1" >/dev/null; }
