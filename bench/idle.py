"""
Idle connections (issue 7, ``../shared/wsbench`` measure m3): open ``--levels`` (1,000 / 5,000 /
10,000) authenticated connections, one per user, the users in group conversations of 10 (so each
connection is in its conversation's group and its user's, and announces its presence), and
measure after each level has settled for 2 s:

- the server's RSS over its baseline per open connection (KB), summed over ``--processes``
  Daphne (or uvicorn) processes sharing one Redis, the connections dealt round-robin;
- the connect rate (handshake, authentication and ``welcome``, 50 in flight), the servers' CPU time
  per connect (ms; the figure that moves least with the machine's load) and connect errors;
- Redis's ``used_memory`` growth per connection (registry records, presence, layer groups).

The servers share CPU 0; the generator runs on CPU 1. Prints one JSON object.

With ``--profile``, py-spy samples the (first) server while the first level connects, and the
steps of the connect path are printed with their share (bench/connect_profile.py).

Usage: ``make bench-idle`` or ``BENCH_ARGS="--processes 2" make bench-idle``;
``BENCH_ARGS="--levels 3000 --profile" make bench-idle``. Loopback only,
bounded (at most 12,000 connections).
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import redis
import uvloop
from picows import ws_connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.chat_rate import Listener, prepare_conversations  # noqa: E402
from bench.connect_profile import Recording, table  # noqa: E402
from bench.fanout import SERVERS, cpu_seconds, rss_bytes, server_env  # noqa: E402
from bench.progress import prepare  # noqa: E402

now = time.perf_counter
ROOM_SIZE = 10
MAX_CONNECTIONS = 12_000


async def open_many(urls: list[str], tokens: list[str], concurrency: int = 50) -> tuple[list, int]:
    """Open one connection per token, dealt over ``urls``; return the transports and the failures."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i, token):
        async with gate:
            try:
                transport, listener = await ws_connect(
                    Listener,
                    f"{urls[i % len(urls)]}?token={token}",
                    enable_auto_pong=True,
                    websocket_handshake_timeout=30,
                )
                await asyncio.wait_for(listener.welcome, 30)
                return transport
            except Exception as exc:  # noqa: BLE001 (any failed handshake is a connect error to count)
                print(f"connect failed: {exc!r}", file=sys.stderr)
                return None

    opened = await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
    return [t for t in opened if t is not None], sum(1 for t in opened if t is None)


async def measure(args, servers: list, tokens: list[str], redis_url: str) -> dict:
    client = redis.Redis.from_url(redis_url)
    pids = [server.proc.pid for server in servers]
    await asyncio.sleep(1)
    base_rss, base_redis = sum(map(rss_bytes, pids)), client.info("memory")["used_memory"]
    out = {"processes": len(servers), "baseline_rss_mb": round(base_rss / 2**20, 1), "levels": []}
    transports: list = []
    for level in args.levels:
        recording = Recording(pids[0]) if args.profile and not transports else None
        started, cpu_before = now(), sum(map(cpu_seconds, pids))
        opened, failed = await open_many([s.url for s in servers], tokens[len(transports) : level])
        elapsed, cpu_used = now() - started, sum(map(cpu_seconds, pids)) - cpu_before
        if recording is not None:
            profile = table(*recording.stop(), ms_per_connect=cpu_used * 1000 / max(1, len(opened)) * len(pids))
            print(
                f"where the first {level} connects' server time went (samples: {recording.out}):\n{profile}",
                file=sys.stderr,
                flush=True,
            )
        transports += opened
        await asyncio.sleep(2)
        alive = len(transports) - Listener.disconnects
        rss = sum(map(rss_bytes, pids))
        used = client.info("memory")["used_memory"]
        row = {
            "target": level,
            "open": alive,
            "connect_errors": failed,
            "connect_rate_per_s": round(len(opened) / elapsed, 1),
            "server_cpu_ms_per_connect": round(cpu_used * 1000 / max(1, len(opened)), 2),
            "rss_mb": round(rss / 2**20, 1),
            "rss_per_conn_kb": round((rss - base_rss) / max(1, alive) / 1024, 2),
            "redis_mem_per_conn_kb": round((used - base_redis) / max(1, alive) / 1024, 2),
        }
        out["levels"].append(row)
        print(
            f"idle {level}: open {alive}, {row['connect_rate_per_s']}/s "
            f"({row['server_cpu_ms_per_connect']} ms CPU each), RSS {row['rss_mb']} MB, "
            f"{row['rss_per_conn_kb']} KB/connection, Redis {row['redis_mem_per_conn_kb']} KB/connection, "
            f"errors {failed}",
            file=sys.stderr,
            flush=True,
        )
        if alive < 0.9 * level:
            break
    for transport in transports:
        transport.disconnect()
    client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1000, 5000, 10_000], help="connections, cumulative")
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1, help="server processes sharing Redis")
    parser.add_argument("--server", choices=SERVERS, default="daphne", help="the ASGI server (default %(default)s)")
    parser.add_argument(
        "--profile", action="store_true", help="sample the first server while the first level connects (py-spy)"
    )
    args = parser.parse_args()
    if sorted(args.levels) != args.levels or not all(ROOM_SIZE <= n <= MAX_CONNECTIONS for n in args.levels):
        parser.error(f"levels ascending, each {ROOM_SIZE} <= n <= {MAX_CONNECTIONS}")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench-idle starts a throwaway Redis)")

    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-idle-") as workdir:
        env = server_env(redis_url, f"sqlite:///{workdir}/bench.sqlite3")
        prepare(env)
        users = -(-args.levels[-1] // ROOM_SIZE) * ROOM_SIZE
        _, tokens = prepare_conversations(users, ROOM_SIZE)
        servers = []
        try:
            servers += [SERVERS[args.server](env, cpus={0}) for _ in range(args.processes)]
            result = uvloop.run(measure(args, servers, tokens, redis_url))
        finally:
            for server in servers:
                server.stop()
    result["server"] = args.server
    print(json.dumps(result))


if __name__ == "__main__":
    main()
