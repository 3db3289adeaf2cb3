#!/usr/bin/env bash
# Make sure Debian's Chromium and its ChromeDriver are installed (the real-browser tests drive
# them through Selenium and Playwright); install both with apt-get when either is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-browser: installing Debian's chromium and chromium-driver" >&2
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
