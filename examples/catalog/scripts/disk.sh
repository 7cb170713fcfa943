#!/bin/sh
# Show disk usage of the file system holding PATH; exit 1 when it is fuller
# than WARN_ABOVE percent.
# Usage: disk.sh [PATH] [WARN_ABOVE]
set -eu
path=${1:-/}
warn=${2:-90}
df -hP -- "$path"
used=$(df -P -- "$path" | awk 'NR == 2 { sub("%", "", $5); print $5 }')
if [ -n "${SB_RESULT:-}" ]; then
  printf '{"path": "%s", "used_percent": %s, "warn_above": %s}\n' "$path" "$used" "$warn" > "$SB_RESULT"
fi
if [ "$used" -gt "$warn" ]; then
  echo "usage ${used}% is above ${warn}%" >&2
  exit 1
fi
echo "usage ${used}% is within ${warn}%"
