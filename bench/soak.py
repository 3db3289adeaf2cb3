"""
Soak (issue 8): connection churn plus steady chat against one Daphne for ``--minutes`` (10 by
default), with real parts: Daphne on CPU 0 with its default limits, Redis, SQLite; the load on
CPU 1.

- Churn: ``--churn`` new connections per second (50 by default), each authenticated with a
  token from an address of its own rotation (127.0.2.x: the per-address budget is not the
  subject), sending one ping and closing after 0.2-2 s.
- Chat: 20 users in 2 group conversations of 10, one message per second per conversation; every
  member counts what it receives.

Prints the server's RSS after a 10 s warm-up and at the end, what is left behind once every
client has gone (layer groups with members, registry records, users online), and the errors:
failed or refused connections, unanswered pings, chat sends not acked, deliveries missing, and
error lines in the server's log.

Usage: ``make bench-soak`` or ``BENCH_ARGS="--minutes 1" make bench-soak``. Loopback only,
bounded (at most 30 minutes, 100 connections/s).
"""

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import redis
import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import production_env, rss_bytes  # noqa: E402
from bench.progress import prepare  # noqa: E402
from tests.servers import Daphne  # noqa: E402

ROOMS, ROOM_SIZE, CHURN_USERS, ADDRESSES = 2, 10, 50, 250


async def welcome(ws) -> None:
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] != "welcome":
            pass


async def churn_one(url: str, token: str, address: str, errors: Counter) -> None:
    try:
        async with websockets.connect(f"{url}?token={token}", local_addr=(address, 0), open_timeout=10) as ws:
            await welcome(ws)
            await ws.send('{"type": "ping", "ref": "p"}')
            async with asyncio.timeout(5):
                while json.loads(await ws.recv()).get("ref") != "p":
                    pass
            await asyncio.sleep(random.uniform(0.2, 2))
    except TimeoutError:
        errors["churn_timeouts"] += 1
    except (OSError, websockets.WebSocketException) as exc:
        errors[f"churn_{type(exc).__name__}"] += 1


async def churn(url: str, tokens: list[str], rate: float, until: float, errors: Counter, counts: Counter) -> None:
    tasks = set()
    n = 0
    while time.monotonic() < until:
        task = asyncio.create_task(churn_one(url, tokens[n % len(tokens)], f"127.0.2.{n % ADDRESSES + 1}", errors))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
        counts["connections"] += 1
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)


class Room:
    """One conversation's members: member 0 sends once a second; everyone counts what arrives."""

    def __init__(self, conversation_id: int, tokens: list[str]):
        self.conversation_id, self.tokens = conversation_id, tokens
        self.sockets = []
        self.received = Counter()
        self.acked = 0
        self.sent = 0

    async def connect(self, url: str, first_address: int) -> None:
        for i, token in enumerate(self.tokens):
            ws = await websockets.connect(f"{url}?token={token}", local_addr=(f"127.0.3.{first_address + i}", 0))
            await welcome(ws)
            self.sockets.append(ws)

    async def listen(self, index: int) -> None:
        async for text in self.sockets[index]:
            frame = json.loads(text)
            if frame["type"] == "chat.message" and frame["data"]["conversation_id"] == self.conversation_id:
                self.received[index] += 1
            elif frame["type"] == "ack" and index == 0:
                self.acked += 1

    async def chat(self, until: float) -> None:
        listeners = [asyncio.create_task(self.listen(i)) for i in range(len(self.sockets))]
        while time.monotonic() < until:
            await self.sockets[0].send(
                json.dumps(
                    {
                        "type": "chat.send",
                        "ref": str(self.sent),
                        "data": {
                            "conversation_id": self.conversation_id,
                            "content": f"soak {self.sent}",
                            "client_msg_id": f"soak-{self.sent}",
                        },
                    }
                )
            )
            self.sent += 1
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # the last deliveries
        for ws in self.sockets:
            await ws.close()
        for task in listeners:
            task.cancel()


async def run(args, server: Daphne, tokens: dict, rooms: list[int]) -> dict:
    errors: Counter = Counter()
    counts: Counter = Counter()
    chat_rooms = [Room(cid, tokens["rooms"][r]) for r, cid in enumerate(rooms)]
    for r, room in enumerate(chat_rooms):
        await room.connect(server.url, 1 + r * ROOM_SIZE)
    until = time.monotonic() + args.minutes * 60
    load = [
        asyncio.create_task(churn(server.url, tokens["churn"], args.churn, until, errors, counts)),
        *(asyncio.create_task(room.chat(until)) for room in chat_rooms),
    ]
    await asyncio.sleep(10)
    rss_start = rss_bytes(server.proc.pid)
    # One reading a minute: a leak grows in a line, allocator warm-up levels off.
    by_minute = []

    async def sample():
        while True:
            await asyncio.sleep(60)
            by_minute.append(round(rss_bytes(server.proc.pid) / 2**20, 1))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*load)
    sampler.cancel()
    rss_end = rss_bytes(server.proc.pid)
    await asyncio.sleep(3)  # the server's clean-up after the last disconnects
    for room in chat_rooms:
        errors["chat_sends_not_acked"] += room.sent - room.acked
        errors["chat_deliveries_missing"] += sum(room.sent - room.received[i] for i in range(ROOM_SIZE))
    return {
        "minutes": args.minutes,
        "connections_opened": counts["connections"] + ROOMS * ROOM_SIZE,
        "chat_messages": sum(room.sent for room in chat_rooms),
        "rss_mb_after_warmup": round(rss_start / 2**20, 1),
        "rss_mb_at_end": round(rss_end / 2**20, 1),
        "rss_mb_by_minute": by_minute,
        "errors": {key: value for key, value in errors.items() if value},
    }


def left_behind(redis_url: str) -> dict:
    """What the server still holds once every client has gone, read from Redis."""
    client = redis.Redis.from_url(redis_url)
    groups_with_members = [key.decode() for key in client.scan_iter("asgi:group:*") if client.zcard(key)]
    left = {
        "layer_groups": len([g for g in groups_with_members if not g.endswith(":realtime.hubs")]),
        "registry_records": sum(1 for _ in client.scan_iter("switchboard:conn:*")),
        "users_online": client.zcard("switchboard:online"),
    }
    client.close()
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the soak (default %(default)s)")
    parser.add_argument("--churn", type=float, default=50, help="new connections per second (default %(default)s)")
    args = parser.parse_args()
    if not (0 < args.minutes <= 30 and 0 < args.churn <= 100):
        parser.error("bounds: 0 < minutes <= 30, 0 < churn <= 100")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench-soak starts a throwaway Redis)")
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-soak-") as workdir:
        env = production_env(redis_url, f"sqlite:///{workdir}/soak.sqlite3")
        prepare(env)
        from django.contrib.auth import get_user_model
        from rest_framework_simplejwt.tokens import AccessToken

        from chat import services

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
        churners = [User.objects.create_user(f"c{i}", password="!") for i in range(CHURN_USERS)]

        def token_for(user) -> str:
            # Outliving the soak: a connection is closed (4401) when its token expires.
            token = AccessToken.for_user(user)
            token.set_exp(lifetime=timedelta(minutes=args.minutes + 5))
            return str(token)

        tokens = {
            "rooms": [[token_for(u) for u in members[r * ROOM_SIZE : (r + 1) * ROOM_SIZE]] for r in range(ROOMS)],
            "churn": [token_for(u) for u in churners],
        }
        server = Daphne(env, cpus={0})
        try:
            result = asyncio.run(run(args, server, tokens, rooms))
            result["left_behind"] = left_behind(redis_url)
            log = server.output()
            result["errors"]["server_log_error_lines"] = sum(
                1 for line in log.splitlines() if '"level": "ERROR"' in line or " ERROR " in line or "Traceback" in line
            )
        finally:
            server.stop()
    print(json.dumps(result))
    print(
        f"soak {args.minutes} min: RSS {result['rss_mb_after_warmup']} -> {result['rss_mb_at_end']} MB,"
        f" left behind {result['left_behind']}, errors {result['errors']}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
