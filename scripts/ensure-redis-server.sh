#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (the cluster tests run `redis-cli --cluster create`) are
# on PATH: installs Debian's packages (redis-server depends on redis-tools, which has redis-cli)
# when we are root with apt-get, otherwise says how to install them. Used by `npm start` and CI.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
status=0
# Debian starts a system redis on 6379; cron-guard spawns its own on a free port and needs neither.
bash "$(dirname "$0")/apt-install.sh" redis-server redis-tools || status=$?
if [ "$status" != 2 ]; then
  exit "$status"
fi
cat >&2 <<'MSG'
cron-guard: redis-server or redis-cli is not installed and cannot be installed automatically here.
Install it, then run the command again:
  Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools
  macOS:         brew install redis
Or point cron-guard at an existing Redis: npx cron-guard bridge --redis-url redis://host:6379
MSG
exit 1
