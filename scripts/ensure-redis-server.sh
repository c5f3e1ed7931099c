#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (the cluster tests run `redis-cli --cluster create`) are
# on PATH: installs Debian's packages (redis-server depends on redis-tools, which has redis-cli)
# when we are root with apt-get, otherwise says how to install them. Used by `npm start` and CI.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "cron-guard: redis-server or redis-cli is missing; installing them with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  if ! { apt-get update && apt-get install -y redis-server redis-tools; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "cron-guard: installing redis-server and redis-tools with apt-get failed (output above)" >&2
    exit 1
  fi
  rm -f "$log"
  # Debian starts a system redis on 6379; cron-guard spawns its own on a free port and needs neither.
  exit 0
fi
cat >&2 <<'MSG'
cron-guard: redis-server or redis-cli is not installed and cannot be installed automatically here.
Install it, then run the command again:
  Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools
  macOS:         brew install redis
Or point cron-guard at an existing Redis: npx cron-guard bridge --redis-url redis://host:6379
MSG
exit 1
