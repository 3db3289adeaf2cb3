#!/usr/bin/env bash
# Run a command with REDIS_URL set. When the caller gave none, start a throwaway redis-server on a
# free port of 127.0.0.1 (no persistence), installing Debian's redis-server first if it is missing,
# and stop it when the command ends. Usage: scripts/with-redis.sh <command> [args...]
set -euo pipefail

if [ -n "${REDIS_URL:-}" ]; then
  exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "with-redis: redis-server not found; installing Debian's redis-server" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$workdir" \
  --logfile "$workdir/redis.log" --daemonize no &
redis_pid=$!
cleanup() {
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

for _ in $(seq 100); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { echo "with-redis: redis-server did not start" >&2; cat "$workdir/redis.log" >&2; exit 1; }

echo "with-redis: throwaway redis-server on 127.0.0.1:$port (stopped when the command ends)" >&2
export REDIS_URL="redis://127.0.0.1:$port/0"
"$@"
