#!/usr/bin/env bash
# Make sure Debian's Chromium is installed (the real-browser tests drive it through Playwright's
# Python API); install it with apt-get when it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-browser: installing Debian's chromium" >&2
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
