#!/bin/sh
# Pretend to log in to SERVICE with TOKEN; prints the token so that
# Switchboard's masking can be seen at work.
# Usage: login.sh SERVICE TOKEN
set -eu
service=${1:?usage: login.sh SERVICE TOKEN}
token=${2:?usage: login.sh SERVICE TOKEN}
echo "logging in to $service with token $token"
echo "token from the environment: ${SB_PARAM_TOKEN:-(not run by Switchboard)}"
if [ -n "${SB_RESULT:-}" ]; then
  printf '{"service": "%s", "token_used": "%s"}\n' "$service" "$token" > "$SB_RESULT"
fi
echo "logged in"
