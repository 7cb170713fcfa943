#!/bin/sh
# Promote a PostgreSQL standby. Only says what it would do unless --dry-run=false.
# Usage: db-failover.sh [--dry-run=true|false] HOST
set -eu
dry_run=true
case "${1:-}" in
  --dry-run=*) dry_run=${1#--dry-run=}; shift ;;
esac
host=${1:?usage: db-failover.sh [--dry-run=true|false] HOST}
echo "checking replication on $host"
if [ "$dry_run" != "false" ]; then
  echo "dry run: would run: ssh $host pg_ctl promote"
  exit 0
fi
ssh -- "$host" pg_ctl promote
