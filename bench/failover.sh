#!/usr/bin/env bash
# Failover time: three `switchboard serve` nodes on one PostgreSQL; the
# leader is killed with `kill -9` and the clock runs until another node's
# `/readyz` says it leads (its singleton duties — schedules, alert
# dispatch, chat connections — start then). The killed node is started
# again as a follower before the next round. Per lease, ROUNDS rounds;
# prints min, median and max. Figures in docs/benchmarks.md ("Failover").
#
#   bench/failover.sh                          # LEASES="2s 15s", ROUNDS=5
#   LEASES=5s ROUNDS=10 bench/failover.sh
#   SWITCHBOARD=path/to/switchboard bench/failover.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/.."
LEASES=${LEASES:-"2s 15s"}
ROUNDS=${ROUNDS:-5}
if [ -z "${SWITCHBOARD:-}" ]; then
    cargo build --release -q -p switchboard
    SWITCHBOARD="${CARGO_TARGET_DIR:-target}/release/switchboard"
fi
WORK=$(mktemp -d)
cleanup() { pkill -9 -f "$WORK/catalog" 2>/dev/null || true; wait 2>/dev/null || true; pg_stop; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
. bench/lib/pg.sh
mkdir -p "$WORK/catalog/actions"
printf 'name = "bench.noop"\ndescription = "Do nothing"\ncommand = ["true"]\n' >"$WORK/catalog/actions/noop.toml"

for lease in $LEASES; do
    db="failover_${lease//[^0-9a-z]/_}"
    pg_database "$db"
    printf '[cluster]\nlease = "%s"\n' "$lease" >"$WORK/config-$lease.toml"
    LEASE=$lease DB=$db SWITCHBOARD=$SWITCHBOARD WORK=$WORK PORT=$PORT ROUNDS=$ROUNDS python3 - <<'PY'
import json, os, signal, statistics, subprocess, time, urllib.request

work, lease, rounds = os.environ["WORK"], os.environ["LEASE"], int(os.environ["ROUNDS"])
storage = f"postgres://postgres@127.0.0.1:{os.environ['PORT']}/{os.environ['DB']}"

def start(name):
    p = subprocess.Popen([os.environ["SWITCHBOARD"], "serve", "--listen", "127.0.0.1:0",
                          "--node", name, "--catalog", f"{work}/catalog",
                          "--config", f"{work}/config-{lease}.toml", "--storage", storage],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().strip()
    assert line.startswith("switchboard listening on "), line
    return p, line.removeprefix("switchboard listening on ")

def leads(url):
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
            return json.load(r).get("leader") is True
    except Exception:
        return False

nodes = {f"node-{i}": start(f"node-{i}") for i in (1, 2, 3)}
while not any(leads(u) for _, u in nodes.values()):
    time.sleep(0.05)
took = []
for _ in range(rounds):
    leader = next(n for n, (_, u) in nodes.items() if leads(u))
    proc, _ = nodes.pop(leader)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.perf_counter()
    while not any(leads(u) for _, u in nodes.values()):
        time.sleep(0.01)
    took.append(time.perf_counter() - killed)
    nodes[leader] = start(leader)
for proc, _ in nodes.values():
    proc.send_signal(signal.SIGKILL)
    proc.wait()
print(f"lease {lease}: failover in {min(took):.2f} / {statistics.median(took):.2f} / "
      f"{max(took):.2f} s (min / median / max of {rounds})")
PY
done
