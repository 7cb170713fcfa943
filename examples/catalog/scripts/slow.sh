#!/bin/sh
# Work for STEPS steps of INTERVAL seconds each, printing progress.
# Usage: slow.sh [STEPS] [INTERVAL_SECONDS]
set -eu
steps=${1:-10}
interval=${2:-1}
i=1
while [ "$i" -le "$steps" ]; do
  echo "step $i of $steps: $((i * 100 / steps))%"
  sleep "$interval"
  i=$((i + 1))
done
echo "done"
if [ -n "${SB_RESULT:-}" ]; then
  printf '{"steps": %s}\n' "$steps" > "$SB_RESULT"
fi
