#!/bin/sh
# A grandchild that ignores SIGTERM, and a parent that ignores it too.
sh -c 'trap "" TERM; sleep 300' &
echo "$$ $!" > "$1"
echo "started $$ and $!"
trap '' TERM
sleep 300
