#!/usr/bin/env bash
# Makes sure wrk, the HTTP load generator `npm run bench` prefers (it costs far less CPU per request
# than the servers it measures, and reports latency in microseconds), is on PATH: installs Debian's
# package when we are root with apt-get. Without it the bench falls back to autocannon.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
status=0
bash "$(dirname "$0")/apt-install.sh" wrk || status=$?
if [ "$status" != 2 ]; then
  exit "$status"
fi
echo "cron-guard: wrk is not installed (Debian/Ubuntu: sudo apt-get install -y wrk; macOS: brew install wrk)" >&2
exit 1
