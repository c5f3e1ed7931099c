#!/usr/bin/env bash
# Makes sure redis-server is on PATH: installs Debian's package when we are root with apt-get,
# otherwise says how to install it. Used by `npm start` and CI.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "cron-guard: redis-server is missing; installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  if ! { apt-get update && apt-get install -y redis-server; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "cron-guard: installing redis-server with apt-get failed (output above)" >&2
    exit 1
  fi
  rm -f "$log"
  # Debian starts a system redis on 6379; cron-guard spawns its own on a free port and needs neither.
  exit 0
fi
cat >&2 <<'MSG'
cron-guard: redis-server is not installed and cannot be installed automatically here.
Install it, then run the command again:
  Debian/Ubuntu: sudo apt-get install -y redis-server
  macOS:         brew install redis
Or point cron-guard at an existing Redis: npx cron-guard bridge --redis-url redis://host:6379
MSG
exit 1
