"""
What an idle connection's Python objects are (issue 25, "say what the remaining bytes per
connection are"): a Daphne server under tracemalloc (bench/heap_probe), ``--clients`` (1,000)
authenticated connections opened as bench/idle.py opens them after as many more, and the heap
grown between two snapshots, per connection, by the package whose code allocated it (the
innermost frame outside the standard library) and by Switchboard's own lines.

tracemalloc counts Python allocations only (not the allocator's slack, not C libraries' own), so
the total is below bench/idle.py's RSS per connection; the split is what it is for.

Usage: ``scripts/with-redis.sh .venv/bin/python bench/heap.py [--clients 1000]``. Loopback only.
"""

import argparse
import asyncio
import collections
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import uvloop

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

import tests.servers  # noqa: E402
from bench.chat_rate import prepare_conversations  # noqa: E402
from bench.fanout import server_env  # noqa: E402
from bench.idle import open_many  # noqa: E402
from bench.progress import prepare  # noqa: E402

PROBE_DIR = Path(__file__).resolve().parent / "heap_probe"
# Handshakes in flight. The server is several times slower under tracemalloc: with bench/idle.py's
# 50, some waited past the 30 s allowed for a welcome on a loaded machine.
CONCURRENCY = 10


def owner(frames) -> str:
    """The package (or Switchboard module) of the innermost frame outside the standard library."""
    for frame in reversed(frames):
        name = frame.filename
        if "/site-packages/" in name:
            return name.split("/site-packages/")[1].split("/")[0]
        if name.startswith(str(BASE_DIR)):
            return "switchboard: " + name[len(str(BASE_DIR)) + 1 :]
    return "standard library"


async def snapshot(pid: int, path: str, number: int) -> tracemalloc.Snapshot:
    os.kill(pid, signal.SIGUSR2)
    target = Path(f"{path}.{number}")
    deadline = time.monotonic() + 60
    while not target.exists():  # renamed into place once written (heap_probe)
        assert time.monotonic() < deadline, "no heap snapshot within 60 s"
        await asyncio.sleep(0.2)
    return tracemalloc.Snapshot.load(str(target))


async def measure(server, tokens: list[str], clients: int, path: str) -> list:
    warm, _ = await open_many([server.url], tokens[:clients], CONCURRENCY)
    await asyncio.sleep(3)
    before = await snapshot(server.proc.pid, path, 1)
    opened, failed = await open_many([server.url], tokens[clients:], CONCURRENCY)
    assert not failed, f"{failed} connections failed"
    await asyncio.sleep(3)
    after = await snapshot(server.proc.pid, path, 2)
    for transport in warm + opened:
        transport.disconnect()
    keep_out = [tracemalloc.Filter(False, tracemalloc.__file__)]
    return after.filter_traces(keep_out).compare_to(before.filter_traces(keep_out), "traceback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="connections measured (default %(default)s)")
    args = parser.parse_args()
    if not 10 <= args.clients <= 5000 or args.clients % 10:
        parser.error("10 <= clients <= 5000, a multiple of 10")
    tests.servers.wait_for_port.__defaults__ = (120,)  # the server starts slowly under tracemalloc
    with tempfile.TemporaryDirectory(prefix="switchboard-heap-") as workdir:
        env = server_env(os.environ["REDIS_URL"], f"sqlite:///{workdir}/bench.sqlite3")
        prepare(env)
        _, tokens = prepare_conversations(2 * args.clients, 10)
        path = f"{workdir}/heap"
        server = tests.servers.Daphne({**env, "HEAP_PROBE_OUT": path, "PYTHONPATH": str(PROBE_DIR)}, cpus={0})
        try:
            stats = uvloop.run(measure(server, tokens, args.clients, path))
        finally:
            server.stop()
    by_owner: collections.Counter = collections.Counter()
    for stat in stats:
        by_owner[owner(stat.traceback)] += stat.size_diff
    total = sum(by_owner.values())
    print(f"Python heap per idle connection: {total / args.clients / 1024:.1f} KB")
    for name, size in by_owner.most_common(20):
        print(f"{size / args.clients:8.0f} B  {name}")


if __name__ == "__main__":
    main()
