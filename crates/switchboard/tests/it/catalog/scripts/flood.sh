#!/bin/sh
i=0
while [ "$i" -lt "$1" ]; do echo "line $i of a long flood of output"; i=$((i + 1)); done
