#!/bin/sh
# Show how long this host has been up and its load averages.
# Usage: uptime.sh   (writes a JSON result to $SB_RESULT when Switchboard runs it)
set -eu
read -r up _ < /proc/uptime
read -r l1 l5 l15 _ < /proc/loadavg
secs=${up%.*}
printf 'host:    %s\n' "$(uname -n)"
printf 'up:      %dd %dh %dm\n' $((secs / 86400)) $((secs % 86400 / 3600)) $((secs % 3600 / 60))
printf 'load:    %s %s %s\n' "$l1" "$l5" "$l15"
if [ -n "${SB_RESULT:-}" ]; then
  printf '{"uptime_seconds": %s, "load": [%s, %s, %s]}\n' "$secs" "$l1" "$l5" "$l15" > "$SB_RESULT"
fi
