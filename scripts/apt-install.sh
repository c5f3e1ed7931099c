#!/usr/bin/env bash
# apt-install.sh PACKAGE...: installs Debian packages when we are root with apt-get, quietly
# (the last 20 lines of apt's output on failure). Exits 2 when apt-get or root is missing, so the
# caller can say how to install by hand; 1 when the installation failed. Used by the ensure-*.sh.
set -euo pipefail
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != "0" ]; then
  exit 2
fi
echo "cron-guard: installing $* with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { apt-get update && apt-get install -y "$@"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "cron-guard: installing $* with apt-get failed (output above)" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
