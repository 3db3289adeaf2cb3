#!/usr/bin/env bash
# Make sure Debian's nginx is installed (tests/e2e/test_nginx.py runs deploy/nginx.conf in front of
# two Daphne processes); install it with apt-get when it is missing. The test runs its own nginx as
# the calling user, in the foreground, on free ports of 127.0.0.1: the system service is not used.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
echo "ensure-nginx: installing Debian's nginx" >&2
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nginx >/dev/null
