#!/usr/bin/env bash
# Makes sure wrk, the HTTP load generator `npm run bench` prefers (it costs far less CPU per request
# than the servers it measures, and reports latency in microseconds), is on PATH: installs Debian's
# package when we are root with apt-get. Without it the bench falls back to autocannon.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "cron-guard: wrk is missing; installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  if ! { apt-get update && apt-get install -y wrk; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "cron-guard: installing wrk with apt-get failed (output above)" >&2
    exit 1
  fi
  rm -f "$log"
  exit 0
fi
echo "cron-guard: wrk is not installed (Debian/Ubuntu: sudo apt-get install -y wrk; macOS: brew install wrk)" >&2
exit 1
