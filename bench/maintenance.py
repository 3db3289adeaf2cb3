"""
Event-loop time of a server process's periodic Redis maintenance, for N open connections.

Every ``REALTIME["REGISTRY_REFRESH_S"]`` a process refreshes the registry record of each of its
connections, and every ``HUB_REFRESH_S`` its hub re-adds every group it follows (each user's
own groups: at least one per connection). Both run on the event loop that fans events out, so
whatever CPU they spend there delays every delivery in flight (a 300 ms stall every 20 s at
1,000 connections was the p99 of ``bench/fanout.py --server uvicorn`` before the scripts).

Prints, per operation and N, the CPU time spent in this process (the event loop's share: the
client encodes the commands and parses the replies) and the wall time (Redis's own work
included), median of ``--repeat`` runs, as JSON lines.

Usage: ``scripts/with-redis.sh .venv/bin/python bench/maintenance.py [--n 1000 10000]``.
Loopback Redis only; keys under a throwaway prefix, deleted at the end.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


async def timed(operation, repeat: int) -> dict:
    """Median CPU and wall milliseconds of ``await operation()`` over ``repeat`` runs."""
    cpu, wall = [], []
    for _ in range(repeat):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        await operation()
        cpu.append(1000 * (time.process_time() - started_cpu))
        wall.append(1000 * (time.perf_counter() - started_wall))
    return {"cpu_ms": round(statistics.median(cpu), 1), "wall_ms": round(statistics.median(wall), 1)}


async def main(args) -> None:
    from realtime.delivery.connection_registry import ConnectionRecord, RedisConnectionRegistry
    from realtime.delivery.layers import RedisChannelLayer

    url = os.environ["REDIS_URL"]
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    registry = RedisConnectionRegistry(prefix)  # on REDIS_URL, through config.settings
    layer = RedisChannelLayer(hosts=[url], prefix=prefix)
    channel = f"realtime.hub.{uuid.uuid4().hex}"
    now_ms = int(time.time() * 1000)
    try:
        for n in args.n:
            records = [
                ConnectionRecord(
                    f"{uuid.uuid4().hex}",
                    i,
                    f"user{i}",
                    "127.0.0.1",
                    "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0",
                    now_ms,
                    f"bench:{os.getpid()}",
                )
                for i in range(n)
            ]
            groups = [f"user.{i}" for i in range(n)]
            for name, operation in (
                ("registry_refresh", lambda records=records: registry.refresh(records)),
                ("hub_group_add_many", lambda groups=groups: layer.group_add_many(groups, channel)),
            ):
                print(json.dumps({"operation": name, "n": n, **await timed(operation, args.repeat)}), flush=True)
    finally:
        client = registry._aclient()
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        await registry.aclose()
        await layer.close_pools()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="connections (default 1000 10000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default %(default)s)")
    args = parser.parse_args()
    if not all(1 <= n <= 20_000 for n in args.n) or not 1 <= args.repeat <= 50:
        parser.error("--n within 1..20000, --repeat within 1..50")
    import django

    django.setup()
    asyncio.run(main(args))
