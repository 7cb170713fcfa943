#!/bin/sh
# Show the last LINES lines of FILE, only those containing TEXT when given.
# Usage: tail-log.sh LINES FILE [TEXT]
set -eu
lines=${1:?usage: tail-log.sh LINES FILE [TEXT]}
file=${2:?usage: tail-log.sh LINES FILE [TEXT]}
text=${3:-}
if [ ! -r "$file" ]; then
  echo "cannot read $file" >&2
  exit 2
fi
if [ -n "$text" ]; then
  grep -F -- "$text" "$file" | tail -n "$lines"
else
  tail -n "$lines" -- "$file"
fi
