#!/bin/sh
# Restart a systemd service. Only says what it would do unless --dry-run=false.
# Usage: service-restart.sh [--dry-run=true|false] SERVICE
set -eu
dry_run=true
case "${1:-}" in
  --dry-run=*) dry_run=${1#--dry-run=}; shift ;;
  --dry-run) shift ;;
esac
service=${1:?usage: service-restart.sh [--dry-run=true|false] SERVICE}
state=unknown
if command -v systemctl >/dev/null 2>&1; then
  state=$(systemctl is-active -- "$service" 2>/dev/null || true)
fi
echo "service $service is ${state:-unknown}"
if [ "$dry_run" != "false" ]; then
  echo "dry run: would run: systemctl restart -- $service"
  exit 0
fi
echo "restarting $service"
systemctl restart -- "$service"
echo "service $service is $(systemctl is-active -- "$service" || true)"
