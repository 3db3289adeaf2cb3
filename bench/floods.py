"""
Floods (issue 8): other users' latency while one client floods, against real parts: Daphne on
CPU 0 with Redis and SQLite, the load on CPU 1.

100 users chat in 10 group conversations of 10 (one sender per conversation, ``--rate``
messages per second each, Poisson arrivals); every delivery's latency is timed (send to receipt).
Phase 1 runs alone (the baseline); phase 2 runs the same traffic while, at once:
- a rate flood: one connection sends pings as fast as it can, reconnecting after each 4429;
- a connect loop: connections opened and closed as fast as possible from the same address;
- a subscription flood: a member of 2,000 conversations joins them all on one connection.
Each flood is its own process at nice 19 on the load core, so it takes what the measuring
client leaves and cannot delay the receipts being timed (it still loads the server fully).
Prints p50/p99 of the deliveries in both phases and what the limits refused.

Usage: ``make bench-floods``. Loopback only, bounded (phases of at most 30 s).
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis
import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import ms, percentile, production_env  # noqa: E402
from bench.progress import prepare  # noqa: E402
from tests.servers import Daphne  # noqa: E402

ROOMS, ROOM_SIZE, FLOOD_GROUPS = 10, 10, 2000


async def welcome(ws) -> None:
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] != "welcome":
            pass


class Members:
    """The 100 members' connections, open for both phases; every delivery's latency goes to ``current``."""

    def __init__(self):
        self.sockets = []
        self.current: list[float] = []
        self.listeners = []

    async def connect(self, url: str, tokens: list[str]) -> None:
        for i, token in enumerate(tokens):
            # Each member from an address of its own (127.0.1.x): the floods come from 127.0.0.1
            # and the server keeps its default per-address limits.
            ws = await websockets.connect(f"{url}?token={token}", max_queue=None, local_addr=(f"127.0.1.{i + 1}", 0))
            await welcome(ws)
            self.sockets.append(ws)
        self.listeners = [asyncio.create_task(self.listen(ws)) for ws in self.sockets]

    async def listen(self, ws) -> None:
        async for text in ws:
            frame = json.loads(text)
            if frame["type"] == "chat.message":
                self.current.append(time.time() - float(frame["data"]["content"]))

    async def phase(self, rooms: list[int], rate: float, seconds: float) -> tuple[int, list[float]]:
        """
        Member 0 of each room sends ``rate`` messages/s for ``seconds``; return how many were sent and the deliveries'
        latencies (s).
        """
        self.current = latencies = []
        sent = 0

        async def send(ws, room):
            nonlocal sent
            # Poisson arrivals: people do not send in step (ten rooms sending on the same tick
            # would time a queue the bench made, not the server).
            deadline = time.monotonic() + seconds
            while (pause := random.expovariate(rate)) < deadline - time.monotonic():
                await asyncio.sleep(pause)
                await ws.send(
                    json.dumps(
                        {
                            "type": "chat.send",
                            "ref": str(sent),
                            "data": {"conversation_id": room, "content": repr(time.time())},
                        }
                    )
                )
                sent += 1
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

        await asyncio.gather(*(send(self.sockets[i * ROOM_SIZE], room) for i, room in enumerate(rooms)))
        await asyncio.sleep(1)
        return sent, sorted(latencies)

    async def close(self) -> None:
        for task in self.listeners:
            task.cancel()
        for ws in self.sockets:
            await ws.close()


async def rate_flood(url: str, token: str, stop: asyncio.Event, counts: Counter) -> None:
    while not stop.is_set():
        try:
            async with websockets.connect(f"{url}?token={token}") as ws:
                await welcome(ws)

                async def drain():
                    with contextlib.suppress(websockets.ConnectionClosed):  # the sender counts the close
                        async for text in ws:
                            if json.loads(text)["type"] == "error":
                                counts["rate_limited"] += 1

                reader = asyncio.create_task(drain())
                while not stop.is_set():
                    await ws.send('{"type": "ping"}')
                    counts["flood_frames"] += 1
                    await asyncio.sleep(0)
                reader.cancel()
        except websockets.ConnectionClosed as exc:
            counts[f"flood_closed_{exc.rcvd.code if exc.rcvd else 1006}"] += 1
        except (OSError, websockets.WebSocketException, TimeoutError):
            counts["flood_connect_failed"] += 1
        await asyncio.sleep(0.1)


async def connect_loop(url: str, token: str, stop: asyncio.Event, counts: Counter) -> None:
    while not stop.is_set():
        try:
            async with websockets.connect(f"{url}?token={token}") as ws:
                frame = json.loads(await ws.recv())
                counts["loop_" + ("accepted" if frame["type"] == "welcome" else frame["error"]["code"])] += 1
        except (OSError, websockets.WebSocketException):
            counts["loop_failed"] += 1


async def subscription_flood(url: str, token: str, stop: asyncio.Event, counts: Counter) -> None:
    conversations = json.loads(Path(os.environ["FLOOD_CONVERSATIONS_FILE"]).read_text())
    async with websockets.connect(f"{url}?token={token}") as ws:
        await welcome(ws)
        for cid in conversations:
            if stop.is_set():
                break
            await ws.send(json.dumps({"type": "chat.join", "ref": str(cid), "data": {"conversation_id": cid}}))
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("ref") == str(cid):
                    break
            counts["joins_" + ("acked" if frame["type"] == "ack" else frame["error"]["code"])] += 1


FLOODS = {"rate": rate_flood, "connect": connect_loop, "subscribe": subscription_flood}


async def flood(kind: str, url: str, token: str, seconds: float) -> Counter:
    """Run one flood for ``seconds``; return what it counted."""
    counts: Counter = Counter()
    stop = asyncio.Event()
    task = asyncio.create_task(FLOODS[kind](url, token, stop, counts))
    await asyncio.sleep(seconds)
    stop.set()
    try:
        async with asyncio.timeout(5):
            await task
    except (TimeoutError, OSError, websockets.WebSocketException):
        task.cancel()
    return counts


def start_flood(kind: str, url: str, token: str, seconds: float) -> subprocess.Popen:
    """This script again (``--flood``), as one flood's process at the lowest priority on the load core."""
    return subprocess.Popen(
        [
            "nice",
            "-n",
            "19",
            sys.executable,
            __file__,
            "--flood",
            kind,
            "--url",
            url,
            "--token",
            token,
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def reset_connect_budget() -> None:
    """Forget this minute's new-connection counts (realtime/delivery/connection_registry.py's connect keys)."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter("switchboard:connect:*"):
        client.delete(key)
    client.close()


FLOOD_USERS = {"rate": "flooder", "connect": "looper", "subscribe": "joiner"}
PHASES = ("none", "rate", "connect", "subscribe", "all")


async def run(args, server: Daphne, tokens: dict, rooms: list[int]) -> dict:
    """Time the members' chat alone, then under each flood, then under all three at once."""
    members = Members()
    await members.connect(server.url, tokens["members"])
    results = {}
    for phase in PHASES:
        kinds = [] if phase == "none" else list(FLOODS) if phase == "all" else [phase]
        floods = [start_flood(kind, server.url, tokens[FLOOD_USERS[kind]], args.seconds + 1) for kind in kinds]
        await asyncio.sleep(0.5 if floods else 0)  # the floods are under way before the timed traffic starts
        sent, latencies = await members.phase(rooms, args.rate, args.seconds)
        counts: Counter = Counter()
        for process in floods:
            counts.update(json.loads(process.communicate(timeout=30)[0]))
        results[phase] = {
            "sent": sent,
            "deliveries": len(latencies),
            "lost": sent * ROOM_SIZE - len(latencies),
            "p50_ms": ms(percentile(latencies, 0.5)),
            "p99_ms": ms(percentile(latencies, 0.99)),
            "flood": dict(counts),
        }
        # The per-address connection budget is per minute: each flood phase starts with a fresh one.
        reset_connect_budget()
    await members.close()
    return {"messages_per_s": ROOMS * args.rate, "phases": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2, help="messages per second per room (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase (default %(default)s)")
    parser.add_argument("--flood", choices=FLOODS, help=argparse.SUPPRESS)  # one flood's own process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        print(json.dumps(asyncio.run(flood(args.flood, args.url, args.token, args.seconds))))
        return
    if not (0 < args.rate <= 50 and 0 < args.seconds <= 30):
        parser.error("bounds: 0 < rate <= 50, 0 < seconds <= 30")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench-floods starts a throwaway Redis)")
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-floods-") as workdir:
        env = production_env(redis_url, f"sqlite:///{workdir}/floods.sqlite3")
        prepare(env)
        from django.contrib.auth import get_user_model
        from rest_framework_simplejwt.tokens import AccessToken

        from chat import services
        from chat.models import Conversation, Membership

        User = get_user_model()
        members = [User.objects.create_user(f"m{i}", password="!") for i in range(ROOMS * ROOM_SIZE)]
        rooms = [
            services.create_group(
                owner=members[r * ROOM_SIZE],
                title=f"room {r}",
                member_ids=[u.pk for u in members[r * ROOM_SIZE : (r + 1) * ROOM_SIZE]],
            ).pk
            for r in range(ROOMS)
        ]
        flooder, looper, joiner = (
            User.objects.create_user(name, password="!") for name in ("flooder", "looper", "joiner")
        )
        big = Conversation.objects.bulk_create([Conversation(kind="group", title=f"g{i}") for i in range(FLOOD_GROUPS)])
        Membership.objects.bulk_create([Membership(conversation=c, user=joiner) for c in big])
        os.environ["FLOOD_CONVERSATIONS_FILE"] = f"{workdir}/flood-conversations.json"
        Path(os.environ["FLOOD_CONVERSATIONS_FILE"]).write_text(json.dumps([c.pk for c in big]))
        tokens = {
            "members": [str(AccessToken.for_user(u)) for u in members],
            **{
                name: str(AccessToken.for_user(u))
                for name, u in (("flooder", flooder), ("looper", looper), ("joiner", joiner))
            },
        }
        server = Daphne(env, cpus={0})  # the default limits
        try:
            result = asyncio.run(run(args, server, tokens, rooms))
        finally:
            server.stop()
    print(json.dumps(result))
    for phase, figures in result["phases"].items():
        print(
            f"flood {phase:9} others' deliveries p50 {figures['p50_ms']:8} ms  p99 {figures['p99_ms']:8} ms"
            f"  lost {figures['lost']}  {figures['flood']}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
