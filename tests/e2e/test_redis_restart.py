"""
Redis stopped for 10 s and started again (empty) during chat traffic on two Daphne processes
(issue 8): sockets stay open, every send gets an answer and every acked send is stored exactly
once, /health says 503 while Redis is away and 200 after, fan-out resumes without restarting
Daphne, and readers that keep their sockets open (the terminal client among them) end with every
message exactly once, in seq order: ``resync`` and gap-aware resume (issue 21).
"""

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from tests.e2e.helpers import ChatClient, get_json, login, next_of_type
from tests.servers import Daphne, RedisServer, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
OUTAGE_S = 10


@pytest.fixture
def cluster(django_db_setup, tmp_path):
    """Two Daphne processes sharing a Redis of their own, which the test stops and starts."""
    from django.db import connection

    redis = RedisServer(tmp_path)
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": redis.url,
        # Two writers at 20 messages/s each: over the default frame rate, which is not under test here.
        "REALTIME_OVERRIDES": json.dumps(
            {
                "CONNECTIONS_PER_IP_PER_MIN": 10_000,
                "CONNECTIONS_PER_IP_PER_S": 10_000,
                "HUB_RETRY_S": 0.5,
                "RATE_PER_MIN": 100_000,
                "RATE_BURST": 1_000,
            }
        ),
    }
    servers = [Daphne(env), Daphne(env)]
    yield redis, servers
    for server in servers:
        server.stop()
    redis.stop()


class Writer:
    """Sends numbered messages with client_msg_ids; resends one that got no answer; records every reply."""

    def __init__(self, ws, conversation_id: int, name: str):
        self.ws, self.conversation_id, self.name = ws, conversation_id, name
        self.acked: set[str] = set()
        self.errors: list[str] = []
        self.unanswered = 0

    async def send(self, i: int) -> None:
        key = f"{self.name}-{i}"
        for attempt in range(5):
            ref = f"{key}-{attempt}"
            await self.ws.send(
                json.dumps(
                    {
                        "type": "chat.send",
                        "ref": ref,
                        "data": {"conversation_id": self.conversation_id, "content": key, "client_msg_id": key},
                    }
                )
            )
            try:
                async with asyncio.timeout(3):
                    while True:
                        frame = json.loads(await self.ws.recv())
                        if frame.get("ref") == ref:
                            break
            except TimeoutError:
                self.unanswered += 1
                continue
            if frame["type"] == "ack":
                self.acked.add(key)
                return
            self.errors.append(frame["error"]["code"])
            await asyncio.sleep(0.2)


class Reader:
    """
    A reader that keeps its socket open, as docs/protocol.md asks ("Resume"): it shows messages in
    seq order, holding one that skips ahead until ``chat.join {after_seq}`` from the last seq with
    no gap below it has filled the hole, and it catches up the same way on ``resync``.
    """

    def __init__(self, ws, conversation_id: int):
        self.ws = ws
        self.conversation_id = conversation_id
        self.shown: list[int] = []  # seqs in the order this client showed them
        self.live: list[tuple[float, int]] = []  # (arrival time, seq) of live chat.message events
        self.held: set[int] = set()
        self.resyncs = 0
        self.joins = 0

    async def run(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame["type"] == "chat.message":
                self.live.append((time.monotonic(), frame["data"]["seq"]))
                if self.take([frame["data"]["seq"]]):
                    await self.catch_up()
            elif frame["type"] == "resync":
                self.resyncs += 1
                await self.catch_up()
            elif frame["type"] == "ack" and "messages" in frame["data"]:
                self.take([m["seq"] for m in frame["data"]["messages"]])
                if frame["data"]["has_more"]:
                    await self.catch_up()

    def take(self, seqs: list[int]) -> bool:
        """Show what is now gap-free; return True when a hole remains below a held message."""
        last = self.shown[-1] if self.shown else 0
        self.held.update(seq for seq in seqs if seq > last)
        while last + 1 in self.held:
            last += 1
            self.held.discard(last)
            self.shown.append(last)
        return bool(self.held)

    async def catch_up(self) -> None:
        self.joins += 1
        after = self.shown[-1] if self.shown else 0
        await self.ws.send(
            json.dumps(
                {
                    "type": "chat.join",
                    "ref": f"catch-up-{self.joins}",
                    "data": {"conversation_id": self.conversation_id, "after_seq": after},
                }
            )
        )


async def test_redis_outage_loses_nothing_and_fan_out_resumes_by_itself(cluster, alice, bob, carol, make_user):
    redis, (server_a, server_b) = cluster
    dave = await sync_to_async(make_user)("dave")
    group = await sync_to_async(services.create_group)(
        owner=alice, title="outage", member_ids=[bob.pk, carol.pk, dave.pk]
    )
    tokens = {
        u: await asyncio.to_thread(login, server, u, f"{u}-pass")
        for u, server in (("alice", server_a), ("bob", server_b), ("carol", server_a), ("dave", server_b))
    }
    async with (
        websockets.connect(f"{server_a.url}?token={tokens['alice']}") as alice_ws,
        websockets.connect(f"{server_b.url}?token={tokens['bob']}") as bob_ws,
        websockets.connect(f"{server_a.url}?token={tokens['carol']}") as carol_ws,
        websockets.connect(f"{server_b.url}?token={tokens['dave']}") as dave_ws,
    ):
        for ws in (alice_ws, bob_ws, carol_ws, dave_ws):
            await next_of_type(ws, "welcome")
        writers = [Writer(alice_ws, group.pk, "alice"), Writer(bob_ws, group.pk, "bob")]
        readers = [Reader(carol_ws, group.pk), Reader(dave_ws, group.pk)]
        reading = [asyncio.create_task(r.run()) for r in readers]
        # The terminal client, connected through the whole outage too.
        terminal = ChatClient(server_b.http, "carol", "carol-pass", group.pk)
        await asyncio.to_thread(terminal.wait_for, "-- joined conversation")
        counter = 0

        async def traffic(seconds: float) -> None:
            nonlocal counter
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                counter += 1
                await asyncio.gather(*(w.send(counter) for w in writers))
                await asyncio.sleep(0.05)  # two writers at 20 messages/s each

        async def health(server) -> int:
            return (await asyncio.to_thread(get_json, f"{server.http}/health"))[0]

        try:
            await traffic(2)
            redis.stop()
            async with asyncio.timeout(15):  # /health follows within a stats publish interval
                while await health(server_a) != 503:
                    await traffic(0.5)
            await traffic(OUTAGE_S - 1)
            redis.start()
            returned_at = time.monotonic()
            await traffic(5)
            health_after = await health(server_b)
            total = 2 * counter
            # Every reader ends with every message, shown once each in seq order, on the same socket.
            async with asyncio.timeout(30):
                while any(len(r.shown) < total for r in readers) or not terminal_has(terminal, total):
                    await asyncio.sleep(0.1)
            open_sockets = [ws.close_code is None for ws in (alice_ws, bob_ws, carol_ws, dave_ws)]
        finally:
            for task in reading:
                task.cancel()
            terminal_exit = await asyncio.to_thread(terminal.quit)
            terminal.kill()

    assert open_sockets == [True] * 4, "a socket closed during the Redis outage"
    assert health_after == 200
    assert all(w.unanswered == 0 for w in writers), "a send got no answer"
    acked = set().union(*(w.acked for w in writers))
    assert len(acked) == total  # every send was acked in the end (no retryable error left over)
    stored = await sync_to_async(list)(
        Message.objects.filter(conversation=group).order_by("seq").values_list("seq", "client_msg_id")
    )
    assert sorted(key for _, key in stored) == sorted(acked)  # each acked write stored exactly once
    assert [seq for seq, _ in stored] == list(range(1, total + 1))

    for reader in readers:
        assert reader.shown == list(range(1, total + 1))
        # Fan-out came back by itself: live events after Redis's return, within a few seconds.
        after_return = [at for at, _ in reader.live if at > returned_at]
        assert after_return, "no live event after Redis came back"
        assert after_return[0] - returned_at < 5
        # Live events are never doubled.
        live = [seq for _, seq in reader.live]
        assert len(live) == len(set(live))
    assert any(reader.resyncs for reader in readers), "no resync after the outage"
    printed = [int(line[1 : line.index("]")]) for line in terminal.lines if line.startswith("[")]
    assert printed == list(range(1, total + 1)), terminal.lines[-20:]
    assert not [line for line in terminal.lines if "connection closed" in line]
    assert terminal_exit == 0


def terminal_has(terminal: ChatClient, total: int) -> bool:
    """Whether the terminal client has printed seq ``total`` (it prints in seq order)."""
    return any(line.startswith(f"[{total}] ") for line in terminal.lines)
