#!/usr/bin/env bash
# Executions per second through the HTTP API with 1, 2 and 3 `switchboard
# serve` nodes on one PostgreSQL, in one run: a client submits N trivial
# executions (`true`, a local action) from C threads spread over the nodes,
# and the clock stops when the last has ended. Each node count gets a fresh
# database. Figures in docs/benchmarks.md ("Several nodes on PostgreSQL").
#
#   bench/ha-throughput.sh                    # N=3000, C=16, nodes 1 2 3
#   N=6000 NODES="1 3" bench/ha-throughput.sh
#   SWITCHBOARD=path/to/switchboard bench/ha-throughput.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
C=${C:-16}
NODES=${NODES:-"1 2 3"}
if [ -z "${SWITCHBOARD:-}" ]; then
    cargo build --release -q -p switchboard
    SWITCHBOARD="${CARGO_TARGET_DIR:-target}/release/switchboard"
fi
WORK=$(mktemp -d)
PIDS=()
stop_nodes() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
cleanup() { stop_nodes; pg_stop; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
. bench/lib/pg.sh
TOKEN="sb_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$WORK/catalog/actions" "$WORK/catalog/policies"
printf 'name = "bench.noop"\ndescription = "Do nothing"\ncommand = ["true"]\n' >"$WORK/catalog/actions/noop.toml"
printf 'permit (principal, action, resource);\n' >"$WORK/catalog/policies/all.cedar"

for n in $NODES; do
    pg_database "bench_$n"
    urls=()
    for i in $(seq "$n"); do
        out="$WORK/node-$n-$i.out"
        SWITCHBOARD_ADMIN_TOKEN=$TOKEN "$SWITCHBOARD" serve --listen 127.0.0.1:0 --node "node-$i" \
            --catalog "$WORK/catalog" --storage "postgres://postgres@127.0.0.1:$PORT/bench_$n" \
            >"$out" 2>"$WORK/node-$n-$i.err" </dev/null &
        PIDS+=($!)
        for _ in $(seq 300); do
            line=$(head -n1 "$out" 2>/dev/null || true)
            case "$line" in "switchboard listening on "*) break ;; esac
            sleep 0.1
        done
        urls+=("${line#switchboard listening on }")
    done
    rate=$(URLS="${urls[*]}" TOKEN=$TOKEN N=$N C=$C python3 - <<'PY'
import json, os, threading, time, urllib.request

urls, token = os.environ["URLS"].split(), os.environ["TOKEN"]
n, c = int(os.environ["N"]), int(os.environ["C"])

def call(base, method, path, body=None):
    req = urllib.request.Request(base + "/api/v1" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

ids, lock = [], threading.Lock()
def client(k):
    base = urls[k % len(urls)]
    for _ in range(n // c):
        e = call(base, "POST", "/executions", {"action": "bench.noop", "params": {}})
        with lock:
            ids.append(e["id"])

start = time.perf_counter()
threads = [threading.Thread(target=client, args=(k,)) for k in range(c)]
for t in threads: t.start()
for t in threads: t.join()
while True:
    busy = sum(len(call(urls[0], "GET", f"/executions?status={s}&limit=1")["executions"])
               for s in ("queued", "running"))
    if busy == 0:
        break
    time.sleep(0.02)
took = time.perf_counter() - start
print(f"{len(ids) / took:.0f}")
PY
)
    printf '%s node(s): %s executions/s\n' "$n" "$rate"
    stop_nodes
done
