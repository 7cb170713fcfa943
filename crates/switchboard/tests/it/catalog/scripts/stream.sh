#!/bin/sh
i=1
while [ "$i" -le "$1" ]; do echo "tick $i"; sleep "$2"; i=$((i + 1)); done
