#!/bin/sh
echo "$$" > "$2"
echo "sleeping $1 s"
exec sleep "$1"
