#!/usr/bin/env bash
# Executions per second, end to end, beside the bare cost of starting the same
# processes, in one run on one machine. The baseline is `xargs -P` starting
# `true` N times with the same parallelism: no queue, no database, no output
# capture — the ceiling any runner of processes has here.
#
#   bench/throughput.sh            # N=5000, 16 at a time
#   N=20000 CONCURRENCY=32 bench/throughput.sh
#   PREFILL=1000000 bench/throughput.sh   # the same with a million stored executions
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
CONCURRENCY=${CONCURRENCY:-16}
PREFILL=${PREFILL:-0}

cargo bench -q -p switchboard-engine --bench throughput --no-run 2>/dev/null

start=$(date +%s.%N)
seq "$N" | xargs -P "$CONCURRENCY" -n 50 sh -c 'for _ in "$@"; do /bin/true; done' sh
end=$(date +%s.%N)
baseline=$(awk -v n="$N" -v s="$start" -v e="$end" 'BEGIN { print n / (e - s) }')

out=$(SB_BENCH_N=$N SB_BENCH_CONCURRENCY=$CONCURRENCY SB_BENCH_PREFILL=$PREFILL \
      cargo bench -q -p switchboard-engine --bench throughput 2>/dev/null)
echo "$out"
ours=$(echo "$out" | awk '/^throughput:/ { print $2 }')
printf 'baseline (xargs -P %s, /bin/true): %.0f processes/s\n' "$CONCURRENCY" "$baseline"
printf 'switchboard / baseline:            %.2f\n' "$(awk -v a="$ours" -v b="$baseline" 'BEGIN { print a / b }')"
