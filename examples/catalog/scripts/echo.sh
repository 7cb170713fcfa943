#!/bin/sh
# Print each argument on its own line, exactly as given.
# Usage: echo.sh MESSAGE...
for arg in "$@"; do
  printf '%s\n' "$arg"
done
