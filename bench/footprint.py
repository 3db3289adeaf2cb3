"""
What Redis and the database carry per connection and per chat message (docs/capacity.md).

Starts ``--processes`` Daphne processes (production settings) on one Redis and one database
(a throwaway SQLite file, or a PostgreSQL database of its own created on ``--postgres`` and
dropped at the end), then, in three phases, measures the deltas of:

- Redis: keys (``DBSIZE``), ``used_memory`` (``INFO memory``), the summed ``MEMORY USAGE`` of the
  keys under the servers' prefixes, and the commands run (``INFO commandstats``, less the
  bench's own ``INFO``/``SCAN``/``MEMORY``/``DBSIZE``);
- the database: SQLite's file size (with its WAL) and the ``chat_message`` rows; on PostgreSQL,
  ``pg_stat_database``'s transactions and tuples inserted/updated/fetched for its database and
  ``pg_total_relation_size`` of ``chat_message``.

Phases: ``--clients`` authenticated connections opened (users in group conversations of
``--room-size``, so each follows its conversation's group and its user's, and announces its
presence); idle for ``--idle-s`` (the registry's refresh every ``REGISTRY_REFRESH_S`` = 20 s and the
hubs' group refresh every ``HUB_REFRESH_S`` = 60 s run meanwhile); ``--messages`` ``chat.send``
at ``--rate`` per second over the conversations, each acked and delivered to its members.

Prints one JSON object: per connection (phase 1 / clients), per connection-minute while idle, per
message (phase 3 / messages).

Usage: ``make bench-footprint`` or ``BENCH_ARGS="--postgres postgres://postgres@127.0.0.1:5432/postgres"
make bench-footprint``. Loopback only, bounded (at most 5,000 clients, 5,000 messages, 200/s).
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.chat_rate import prepare_conversations  # noqa: E402
from bench.fanout import server_env  # noqa: E402
from bench.progress import prepare  # noqa: E402
from tests.servers import Daphne  # noqa: E402

# The bench's own reads of Redis, left out of the command counts.
OWN_COMMANDS = {"info", "scan", "memory|usage", "memory", "dbsize", "ping", "client|setinfo", "client"}


class Redis:
    """Snapshots of one Redis: keys, memory and commands run, less the bench's own."""

    def __init__(self, url: str, prefixes: list[str]):
        self.client = redis.Redis.from_url(url)
        self.prefixes = prefixes

    def snapshot(self) -> dict:
        commands = {
            name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in self.client.info("commandstats").items()
            if name.removeprefix("cmdstat_") not in OWN_COMMANDS
        }
        return {
            "keys": self.client.dbsize(),
            "used_memory": self.client.info("memory")["used_memory"],
            "commands": commands,
        }

    def key_bytes(self) -> int:
        """The summed ``MEMORY USAGE`` of every key under the servers' prefixes (bytes)."""
        total = 0
        for prefix in self.prefixes:
            for key in self.client.scan_iter(match=f"{prefix}*", count=1000):
                total += self.client.memory_usage(key, samples=0) or 0
        return total


def delta(before: dict, after: dict) -> dict:
    commands = {name: after["commands"].get(name, 0) - before["commands"].get(name, 0) for name in after["commands"]}
    return {
        "keys": after["keys"] - before["keys"],
        "used_memory": after["used_memory"] - before["used_memory"],
        "commands": {name: count for name, count in sorted(commands.items(), key=lambda kv: -kv[1]) if count},
    }


class Database:
    """Snapshots of the servers' database: SQLite's files or PostgreSQL's statistics."""

    def __init__(self, url: str, sqlite_path: Path | None):
        self.url, self.sqlite_path = url, sqlite_path

    def snapshot(self) -> dict:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM chat_message")
            rows = cursor.fetchone()[0]
            if self.sqlite_path is not None:
                files = [self.sqlite_path, self.sqlite_path.with_name(self.sqlite_path.name + "-wal")]
                return {"message_rows": rows, "bytes": sum(p.stat().st_size for p in files if p.exists())}
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched, tup_returned "
                "FROM pg_stat_database WHERE datname = current_database()"
            )
            names = ["xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched"]
            stats = dict(zip([*names, "tup_returned"], cursor.fetchone(), strict=True))
            cursor.execute("SELECT pg_total_relation_size('chat_message'), pg_database_size(current_database())")
            table, database = cursor.fetchone()
        connection.close()
        return {"message_rows": rows, "chat_message_bytes": table, "database_bytes": database, **stats}


def per(change: dict, count: float) -> dict:
    """Every figure of ``change`` divided by ``count``, rounded."""
    out = {}
    for name, value in change.items():
        out[name] = per(value, count) if isinstance(value, dict) else round(value / count, 2)
    return out


async def connect_all(urls: list[str], tokens: list[str]) -> list:
    gate = asyncio.Semaphore(50)

    async def one(i: int, token: str):
        async with gate:
            ws = await websockets.connect(f"{urls[i % len(urls)]}?token={token}", max_queue=None, open_timeout=30)
            async with asyncio.timeout(30):
                while json.loads(await ws.recv())["type"] != "welcome":
                    pass
            return ws

    return await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))


async def chat(sockets: list, conversation_ids: list[int], room_size: int, messages: int, rate: int) -> dict:
    """Send ``messages`` chat.send at ``rate``/s over the conversations; await every ack and delivery."""
    expected = messages * room_size
    delivered, acked = 0, 0
    done = asyncio.get_running_loop().create_future()

    async def read(ws):
        nonlocal delivered, acked
        async for text in ws:
            frame = json.loads(text)
            if frame["type"] == "chat.message":
                delivered += 1
            elif frame["type"] == "ack" and frame.get("ref", "").startswith("fp-"):
                acked += 1
            if delivered >= expected and acked >= messages and not done.done():
                done.set_result(None)

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    started = time.monotonic()
    for n in range(messages):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        room = n % len(conversation_ids)
        key = f"fp-{n}-{uuid.uuid4().hex[:6]}"
        data = {"conversation_id": conversation_ids[room], "content": f"message {n} " + "x" * 40, "client_msg_id": key}
        await sockets[room * room_size].send(json.dumps({"type": "chat.send", "ref": key, "data": data}))
    async with asyncio.timeout(60):
        await done
    for task in readers:
        task.cancel()
    return {"acked": acked, "delivered": delivered, "seconds": round(time.monotonic() - started, 1)}


async def measure(args, servers: list[Daphne], tokens: list[str], conversation_ids: list[int], rds, db) -> dict:
    def snapshot() -> tuple[dict, dict, int]:
        # Commands first: the key scan that follows is the bench's own.
        return rds.snapshot(), db.snapshot(), rds.key_bytes()

    await asyncio.sleep(2)  # the servers' start-up writes (stats, hub) settle
    r0, d0, bytes0 = await asyncio.to_thread(snapshot)
    sockets = await connect_all([server.url for server in servers], tokens)
    await asyncio.sleep(2)
    r1, d1, bytes1 = await asyncio.to_thread(snapshot)
    await asyncio.sleep(args.idle_s)
    r2, d2, _ = await asyncio.to_thread(snapshot)
    traffic = await chat(sockets, conversation_ids, args.room_size, args.messages, args.rate)
    await asyncio.sleep(1)
    r3, d3, bytes3 = await asyncio.to_thread(snapshot)
    for ws in sockets:
        await ws.close()
    n, minutes = len(sockets), args.idle_s / 60
    connect_redis = {**delta(r0, r1), "key_bytes": bytes1 - bytes0}
    message_redis = {**delta(r2, r3), "key_bytes": bytes3 - bytes1}
    return {
        "clients": n,
        "processes": len(servers),
        "room_size": args.room_size,
        "traffic": traffic,
        "per_connection": {
            "redis": per(connect_redis, n),
            "database": per({k: d1[k] - d0[k] for k in d0}, n),
        },
        "per_connection_minute_idle": {
            "redis": per(delta(r1, r2), n * minutes) if minutes else None,
            "database": per({k: d2[k] - d1[k] for k in d1}, n * minutes) if minutes else None,
        },
        "per_message": {
            "redis": per(message_redis, args.messages),
            "database": per({k: d3[k] - d2[k] for k in d2}, args.messages),
        },
    }


def create_postgres_database(server_url: str) -> str:
    """A new database on the PostgreSQL at ``server_url``; its URL."""
    import psycopg

    name = f"switchboard_footprint_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(server_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="connections, one per user (default %(default)s)")
    parser.add_argument("--room-size", type=int, default=10, help="members per conversation (default %(default)s)")
    parser.add_argument("--messages", type=int, default=1000, help="chat.send in phase 3 (default %(default)s)")
    parser.add_argument("--rate", type=int, default=100, help="messages per second (default %(default)s)")
    parser.add_argument("--idle-s", type=float, default=60, help="idle phase, seconds (default %(default)s)")
    parser.add_argument("--processes", type=int, choices=(1, 2), default=2, help="Daphne processes (default 2)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (any database on it) instead of SQLite")
    args = parser.parse_args()
    if not (
        args.room_size <= args.clients <= 5000
        and args.clients % args.room_size == 0
        and 1 <= args.messages <= 5000
        and 1 <= args.rate <= 200
        and 0 <= args.idle_s <= 300
    ):
        parser.error(
            "bounds: room-size <= clients <= 5000 (a multiple), 1 <= messages <= 5000, rate <= 200, idle-s <= 300"
        )
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench-footprint starts a throwaway Redis)")

    with tempfile.TemporaryDirectory(prefix="switchboard-footprint-") as workdir:
        sqlite_path = None if args.postgres else Path(workdir) / "bench.sqlite3"
        database_url = create_postgres_database(args.postgres) if args.postgres else f"sqlite:///{sqlite_path}"
        servers = []
        try:
            prefix = f"fp{uuid.uuid4().hex[:6]}"
            env = server_env(redis_url, database_url)
            overrides = {**json.loads(env["REALTIME_OVERRIDES"]), "KEY_PREFIX": prefix}
            env["REALTIME_OVERRIDES"] = json.dumps(overrides)
            prepare(env)
            conversation_ids, tokens = prepare_conversations(args.clients, args.room_size)
            servers = [Daphne(env) for _ in range(args.processes)]
            # The registry's keys (KEY_PREFIX) and the channel layer's (channels_redis' "asgi").
            rds = Redis(redis_url, [prefix, "asgi"])
            result = asyncio.run(
                measure(args, servers, tokens, conversation_ids, rds, Database(database_url, sqlite_path))
            )
        finally:
            for server in servers:
                server.stop()
            if args.postgres:
                from django.db import connections

                connections.close_all()
                drop_postgres_database(args.postgres, database_url)
    result["database"] = "postgresql" if args.postgres else "sqlite"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
