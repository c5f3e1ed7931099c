#!/usr/bin/env bash
# Makes sure Debian's chromium is installed (the dashboard's browser test drives it with
# playwright-core): installs the package when we are root with apt-get, otherwise says how. Used by CI.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
status=0
bash "$(dirname "$0")/apt-install.sh" chromium || status=$?
if [ "$status" != 2 ]; then
  exit "$status"
fi
cat >&2 <<'MSG'
cron-guard: chromium is not installed and cannot be installed automatically here.
The dashboard's browser test needs it at /usr/bin/chromium:
  Debian/Ubuntu: sudo apt-get install -y chromium
MSG
exit 1
