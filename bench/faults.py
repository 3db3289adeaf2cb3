"""
Fault runs: COUNT chat messages sent across 3 Redis restarts and 2 Daphne kills (issue 8), then
FAILOVER_COUNT messages across a Redis Sentinel failover (issue 26).

Real parts: a Redis of its own (stopped and started empty), two Daphne processes sharing it
(SIGKILLed and started again on the same port), SQLite. Writers spread over both processes
send numbered messages with client_msg_ids; a writer whose connection drops or whose send gets
no answer within 3 s reconnects (to either process) and resends the same key, as the browser
client does. Readers follow the conversation live and resume with ``chat.join {after_seq}`` from
their last gap-free seq after every reconnect, on a seq gap and on ``resync``; half of them also
catch up at the end, the others report what a client that kept its socket open ends with.

The failover phase runs on a Redis master, one replica and three sentinels (tests/sentinel.py;
``down-after-milliseconds`` 1000) and two Daphne processes configured with ``REDIS_SENTINELS``
only: the master is SIGKILLed at 30 % of the phase and never comes back; the sentinels promote
the replica and the processes follow it without a restart.

Prints, per phase, one JSON line and a sentence: acked messages lost (acked but not stored) and
duplicated (stored twice), what each reader ends with (missing), for each Redis restart the time
from Redis being back to the first event delivered live; for the failover the time from the kill
to the promotion and to the first live delivery after it, and how many of the 8 clients' sockets
stayed open through it.

Usage: ``make bench-faults`` or ``BENCH_ARGS="--count 10000 --rate 200 --failover-count 4000"
make bench-faults`` (a count of 0 skips its phase). Loopback only, bounded (at most 20,000
messages a phase, 500 messages/s).
"""

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import production_env  # noqa: E402
from bench.progress import prepare  # noqa: E402
from tests.sentinel import SentinelCluster  # noqa: E402
from tests.servers import Daphne, RedisServer  # noqa: E402

WRITERS = 4
READERS = 4


class Writer:
    """Sends its share of keys in order; reconnects and resends on any failure."""

    def __init__(self, name: str, token: str, servers: list[Daphne], conversation_id: int):
        self.name, self.token, self.servers, self.conversation_id = name, token, servers, conversation_id
        self.acked: set[str] = set()
        self.resends = 0
        self.attempt = 0
        self.reconnects = 0  # sockets lost or given up on (no answer within 3 s)

    async def run(self, keys: asyncio.Queue) -> None:
        ws = None
        key = None
        while True:
            if key is None:
                key = await keys.get()
                if key is None:
                    break
            try:
                if ws is None:
                    server = self.servers[self.attempt % len(self.servers)]
                    self.attempt += 1
                    ws = await websockets.connect(f"{server.url}?token={self.token}", open_timeout=3)
                    async with asyncio.timeout(3):
                        while json.loads(await ws.recv())["type"] != "welcome":
                            pass
                ref = f"{key}-{time.monotonic()}"
                await ws.send(
                    json.dumps(
                        {
                            "type": "chat.send",
                            "ref": ref,
                            "data": {"conversation_id": self.conversation_id, "content": key, "client_msg_id": key},
                        }
                    )
                )
                async with asyncio.timeout(3):
                    while True:
                        frame = json.loads(await ws.recv())
                        if frame.get("ref") == ref:
                            break
                if frame["type"] == "ack":
                    self.acked.add(key)
                    key = None
                    continue
                self.resends += 1
                await asyncio.sleep(0.2)
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.resends += 1
                if ws is not None:
                    self.reconnects += 1
                    ws.transport.abort()
                ws = None
                await asyncio.sleep(0.2)
        if ws is not None:
            await ws.close()


class Reader:
    """
    Follows the conversation as docs/protocol.md's "Resume" says: it catches up with ``chat.join
    {after_seq}`` from its last gap-free seq after every reconnect, on a live seq that skips
    ahead, and on ``resync``. With ``final_catch_up`` it also catches up once more at the end (a
    reader that reconnects anyway); without it, what it has at the end is what the live path and
    ``resync`` gave a client that kept its socket open.
    """

    def __init__(self, token: str, servers: list[Daphne], conversation_id: int, index: int, final_catch_up: bool):
        self.token, self.servers, self.conversation_id, self.attempt = token, servers, conversation_id, index
        self.final_catch_up = final_catch_up
        self.seqs: list[int] = []  # every seq received, live or resumed, duplicates kept
        self.have: set[int] = set()
        self.synced = 0  # highest seq with none missing below it
        self.live: list[float] = []  # arrival times of live events
        self.reconnects = 0
        self.resyncs = 0

    def take(self, seq: int) -> bool:
        """Record ``seq``; return True when it reveals a hole below it."""
        self.seqs.append(seq)
        self.have.add(seq)
        while self.synced + 1 in self.have:
            self.synced += 1
        return seq > self.synced + 1

    async def catch_up(self, ws) -> None:
        while True:
            # A resync that arrives meanwhile may announce events lost after this join was answered.
            resynced = False
            ref = f"j{time.monotonic()}"
            await ws.send(
                json.dumps(
                    {
                        "type": "chat.join",
                        "ref": ref,
                        "data": {"conversation_id": self.conversation_id, "after_seq": self.synced},
                    }
                )
            )
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("ref") == ref:
                    break
                if frame["type"] == "chat.message":
                    self.take(frame["data"]["seq"])
                elif frame["type"] == "resync":
                    self.resyncs += 1
                    resynced = True
            if frame["type"] != "ack":
                raise OSError(frame["error"]["code"])
            for message in frame["data"]["messages"]:
                self.take(message["seq"])
            if not (frame["data"]["has_more"] or resynced):
                return

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            server = self.servers[self.attempt % len(self.servers)]
            self.attempt += 1
            try:
                async with websockets.connect(f"{server.url}?token={self.token}", open_timeout=3) as ws:
                    async with asyncio.timeout(3):
                        while json.loads(await ws.recv())["type"] != "welcome":
                            pass
                    await self.catch_up(ws)
                    while not stop.is_set():
                        try:
                            async with asyncio.timeout(0.5):
                                frame = json.loads(await ws.recv())
                        except TimeoutError:
                            continue
                        if frame["type"] == "chat.message":
                            self.live.append(time.monotonic())
                            if self.take(frame["data"]["seq"]):
                                await self.catch_up(ws)
                        elif frame["type"] == "resync":
                            self.resyncs += 1
                            await self.catch_up(ws)
                    if self.final_catch_up:
                        await self.catch_up(ws)
                    return
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.reconnects += 1
                await asyncio.sleep(0.3)


async def run(
    phase: str, count: int, rate: int, servers: list[Daphne], tokens: list[str], conversation_id: int, faults
) -> dict:
    """
    Offer ``count`` messages at ``rate`` per second to the writers while ``faults(duration_s)``
    runs; return the writers, the readers, what ``faults`` returned and the wall time. Keys start
    with ``phase``: a ``client_msg_id`` is unique per sender, so a key sent again in a later phase
    would be answered with the earlier phase's message.
    """
    keys: asyncio.Queue = asyncio.Queue(maxsize=WRITERS)
    writers = [Writer(f"w{i}", tokens[i], servers, conversation_id) for i in range(WRITERS)]
    # Half the readers catch up once more at the end; the others end with what a client that kept
    # its socket open has (reconnecting only when its own Daphne is killed).
    readers = [
        Reader(tokens[WRITERS + i], servers, conversation_id, i, final_catch_up=i % 2 == 0) for i in range(READERS)
    ]
    stop = asyncio.Event()
    reader_tasks = [asyncio.create_task(r.run(stop)) for r in readers]
    writer_tasks = [asyncio.create_task(w.run(keys)) for w in writers]
    fault_task = asyncio.create_task(faults(count / rate))
    started = time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        await keys.put(f"{phase}{n}")
    for _ in writers:
        await keys.put(None)
    *_, marks = await asyncio.gather(*writer_tasks, fault_task)
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*reader_tasks)
    return {"writers": writers, "readers": readers, "marks": marks, "wall_s": round(time.monotonic() - started, 1)}


def first_live_after(readers: list[Reader], at: float) -> float | None:
    """Seconds from ``at`` (monotonic) to the first live event any reader got after it, or None."""
    live_after = [t for r in readers for t in r.live if t > at]
    return min(live_after) - at if live_after else None


def restarts_faults(args, redis: RedisServer, servers: list[Daphne]):
    """The restart phase's faults at fixed fractions of the run: Redis, kill A, Redis, kill B, Redis."""

    async def faults(duration: float) -> dict:
        plan = [(0.15, "redis"), (0.3, "kill", 0), (0.45, "redis"), (0.6, "kill", 1), (0.75, "redis")]
        redis_back: list[float] = []
        started = time.monotonic()
        for at, kind, *rest in plan:
            await asyncio.sleep(max(0.0, started + at * duration - time.monotonic()))
            if kind == "redis":
                await asyncio.to_thread(redis.stop)
                await asyncio.sleep(args.outage)
                await asyncio.to_thread(redis.start)
                redis_back.append(time.monotonic())
            else:
                server = servers[rest[0]]
                server.proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(server.proc.wait)
                await asyncio.sleep(1)
                await asyncio.to_thread(server.start_again)
        return {"redis_back": redis_back}

    return faults


def failover_faults(cluster: SentinelCluster):
    """The failover phase's fault: the master SIGKILLed at 30 % of the run; wait for the promotion."""

    async def faults(duration: float) -> dict:
        await asyncio.sleep(0.3 * duration)
        killed_at = time.monotonic()
        await asyncio.to_thread(cluster.kill_master)
        await asyncio.to_thread(cluster.wait_for_promotion, 60)
        return {"killed_at": killed_at, "promoted_at": time.monotonic()}

    return faults


def summarize(count: int, result: dict, stored: list[tuple[str, int]]) -> dict:
    """What every phase reports: acked, lost, duplicated, resends, what readers miss at the end."""
    keys = [key for key, _ in stored]
    acked = set().union(*(w.acked for w in result["writers"]))
    all_seqs = set(range(1, len(stored) + 1))
    return {
        "messages": count,
        "acked": len(acked),
        "acked_lost": len(acked - set(keys)),
        "stored_duplicated": len(keys) - len(set(keys)),
        "stored_not_acked": len(set(keys) - acked),
        "resends": sum(w.resends for w in result["writers"]),
        "readers_missing": [len(all_seqs - set(r.seqs)) for r in result["readers"] if r.final_catch_up],
        "open_readers_missing": [len(all_seqs - set(r.seqs)) for r in result["readers"] if not r.final_catch_up],
        "reader_reconnects": [r.reconnects for r in result["readers"]],
        "reader_resyncs": [r.resyncs for r in result["readers"]],
        "wall_s": result["wall_s"],
    }


def restarts_phase(args, env: dict, redis: RedisServer, tokens: list[str], conversation_id: int) -> None:
    """3 Redis restarts and 2 Daphne kills; print the figures."""
    from chat.models import Message

    servers = [Daphne(env), Daphne(env)]
    try:
        result = asyncio.run(
            run("r", args.count, args.rate, servers, tokens, conversation_id, restarts_faults(args, redis, servers))
        )
    finally:
        for server in servers:
            server.stop()
    stored = list(Message.objects.filter(conversation_id=conversation_id).values_list("client_msg_id", "seq"))
    summary = {
        "phase": "redis restarts and daphne kills",
        **summarize(args.count, result, stored),
        "first_delivery_after_redis_ms": [
            None if (after := first_live_after(result["readers"], back)) is None else round(after * 1000)
            for back in result["marks"]["redis_back"]
        ],
    }
    print(json.dumps(summary), flush=True)
    print(
        f"{summary['acked']} of {args.count} acked across 3 Redis restarts and 2 Daphne kills: "
        f"{summary['acked_lost']} lost, {summary['stored_duplicated']} duplicated; readers missing "
        f"{summary['readers_missing']}, readers that kept their sockets open missing "
        f"{summary['open_readers_missing']}; first live delivery after Redis returned: "
        f"{summary['first_delivery_after_redis_ms']} ms",
        file=sys.stderr,
        flush=True,
    )


def failover_phase(args, workdir: str, env: dict, tokens: list[str], conversation_id: int) -> None:
    """The Sentinel failover; print the figures."""
    from chat.models import Message

    sentinel_dir = Path(workdir) / "sentinel"
    sentinel_dir.mkdir()
    cluster = SentinelCluster(sentinel_dir)
    servers: list[Daphne] = []
    try:
        # The processes know the sentinels only (REDIS_URL and REDIS_SENTINELS are exclusive).
        failover_env = {**env, "REDIS_URL": "", **cluster.env}
        servers = [Daphne(failover_env), Daphne(failover_env)]
        cluster.wait_until_ready()
        result = asyncio.run(
            run("f", args.failover_count, args.rate, servers, tokens, conversation_id, failover_faults(cluster))
        )
        running = sum(server.proc.poll() is None for server in servers)
    finally:
        for server in servers:
            server.stop()
        cluster.stop()
    stored = list(Message.objects.filter(conversation_id=conversation_id).values_list("client_msg_id", "seq"))
    marks = result["marks"]
    after = first_live_after(result["readers"], marks["promoted_at"])
    clients = result["writers"] + result["readers"]
    summary = {
        "phase": "sentinel failover",
        **summarize(args.failover_count, result, stored),
        "kill_to_promotion_ms": round((marks["promoted_at"] - marks["killed_at"]) * 1000),
        "kill_to_first_live_delivery_ms": None
        if after is None
        else round((marks["promoted_at"] + after - marks["killed_at"]) * 1000),
        "sockets_stayed_open": sum(client.reconnects == 0 for client in clients),
        "sockets": len(clients),
        "daphne_running": running,
    }
    print(json.dumps(summary), flush=True)
    print(
        f"{summary['acked']} of {args.failover_count} acked across a Sentinel failover (master SIGKILLed): "
        f"{summary['acked_lost']} lost, {summary['stored_duplicated']} duplicated; promotion "
        f"{summary['kill_to_promotion_ms']} ms after the kill, first live delivery after it "
        f"{summary['kill_to_first_live_delivery_ms']} ms after the kill; {summary['sockets_stayed_open']} of "
        f"{summary['sockets']} sockets stayed open; Daphne processes running {running} of 2; readers missing "
        f"{summary['readers_missing']}, readers that kept their sockets open missing {summary['open_readers_missing']}",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages, restart phase (default %(default)s)")
    parser.add_argument(
        "--failover-count", type=int, default=4_000, help="messages, failover phase (default %(default)s)"
    )
    parser.add_argument("--rate", type=int, default=200, help="messages per second offered (default %(default)s)")
    parser.add_argument(
        "--outage", type=float, default=3, help="seconds Redis stays down each time (default %(default)s)"
    )
    args = parser.parse_args()
    if not (
        0 <= args.count <= 20_000
        and 0 <= args.failover_count <= 20_000
        and 1 <= args.rate <= 500
        and 0 < args.outage <= 30
    ):
        parser.error("bounds: 0 <= count, failover-count <= 20000, 1 <= rate <= 500, 0 < outage <= 30")
    with tempfile.TemporaryDirectory(prefix="switchboard-faults-") as workdir:
        redis = RedisServer(Path(workdir))
        env = {
            **production_env(redis.url, f"sqlite:///{workdir}/faults.sqlite3"),
            "LOG_LEVEL": "ERROR",
            "REALTIME_OVERRIDES": json.dumps(
                {
                    "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
                    "CONNECTIONS_PER_IP_PER_S": 1_000_000,
                    "RATE_PER_MIN": 1_000_000,
                    "RATE_BURST": 10_000,
                    "HUB_RETRY_S": 0.5,
                }
            ),
        }
        try:
            prepare(env)
            from django.contrib.auth import get_user_model
            from rest_framework_simplejwt.tokens import AccessToken

            from chat import services

            User = get_user_model()
            users = [User.objects.create_user(f"u{i}", password="!") for i in range(WRITERS + READERS)]
            tokens = [str(AccessToken.for_user(u)) for u in users]
            # One conversation per phase, both made while this process's Redis is up.
            restarts, failover = (
                services.create_group(owner=users[0], title=title, member_ids=[u.pk for u in users[1:]])
                for title in ("faults", "failover")
            )
            if args.count:
                restarts_phase(args, env, redis, tokens, restarts.pk)
        finally:
            redis.stop()
        if args.failover_count:
            # Fresh tokens: the restart phase may have used a good part of their lifetime.
            tokens = [str(AccessToken.for_user(u)) for u in users]
            failover_phase(args, workdir, env, tokens, failover.pk)


if __name__ == "__main__":
    main()
