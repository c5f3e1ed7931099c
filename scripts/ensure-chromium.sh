#!/usr/bin/env bash
# Makes sure Debian's chromium is installed (the dashboard's browser test drives it with
# playwright-core): installs the package when we are root with apt-get, otherwise says how. Used by CI.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "cron-guard: chromium is missing; installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  if ! { apt-get update && apt-get install -y chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "cron-guard: installing chromium with apt-get failed (output above)" >&2
    exit 1
  fi
  rm -f "$log"
  exit 0
fi
cat >&2 <<'MSG'
cron-guard: chromium is not installed and cannot be installed automatically here.
The dashboard's browser test needs it at /usr/bin/chromium:
  Debian/Ubuntu: sudo apt-get install -y chromium
MSG
exit 1
