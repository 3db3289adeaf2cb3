"""
Redis stopped for 10 s and started again (empty) during chat traffic on two Daphne processes
(issue 8): sockets stay open, every send gets an answer and every acked send is stored exactly
once, /health says 503 while Redis is away and 200 after, fan-out resumes without restarting
Daphne, and readers that resume from their last seq end with every message exactly once.
"""

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from tests.e2e.helpers import get_json, login, next_of_type
from tests.servers import Daphne, RedisServer, database_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
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
        "REALTIME_OVERRIDES": json.dumps({"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000, "HUB_RETRY_S": 0.5,
                                          "RATE_PER_MIN": 100_000, "RATE_BURST": 1_000}),
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
            await self.ws.send(json.dumps({"type": "chat.send", "ref": ref, "data": {
                "conversation_id": self.conversation_id, "content": key, "client_msg_id": key}}))
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
    """Records the seqs of the chat.message events it receives live, with their arrival times."""

    def __init__(self, ws):
        self.ws = ws
        self.seen: list[tuple[float, int]] = []

    async def run(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame["type"] == "chat.message":
                self.seen.append((time.monotonic(), frame["data"]["seq"]))

    def last_contiguous(self) -> int:
        seqs, last = {seq for _, seq in self.seen}, 0
        while last + 1 in seqs:
            last += 1
        return last


async def resume(server, token: str, conversation_id: int, after: int) -> list[int]:
    """A reconnecting client's catch-up: chat.join from ``after`` until has_more is false."""
    seqs = []
    async with websockets.connect(f"{server.url}?token={token}") as ws:
        await next_of_type(ws, "welcome")
        while True:
            await ws.send(json.dumps({"type": "chat.join", "ref": "j", "data": {
                "conversation_id": conversation_id, "after_seq": after}}))
            ack = await next_of_type(ws, "ack")
            seqs += [m["seq"] for m in ack["data"]["messages"]]
            if not ack["data"]["has_more"]:
                return seqs
            after = seqs[-1]


async def test_redis_outage_loses_nothing_and_fan_out_resumes_by_itself(cluster, alice, bob, carol, make_user):
    redis, (server_a, server_b) = cluster
    dave = await sync_to_async(make_user)("dave")
    group = await sync_to_async(services.create_group)(owner=alice, title="outage",
                                                       member_ids=[bob.pk, carol.pk, dave.pk])
    tokens = {u: await asyncio.to_thread(login, server, u, f"{u}-pass")
              for u, server in (("alice", server_a), ("bob", server_b), ("carol", server_a), ("dave", server_b))}
    async with (
        websockets.connect(f"{server_a.url}?token={tokens['alice']}") as alice_ws,
        websockets.connect(f"{server_b.url}?token={tokens['bob']}") as bob_ws,
        websockets.connect(f"{server_a.url}?token={tokens['carol']}") as carol_ws,
        websockets.connect(f"{server_b.url}?token={tokens['dave']}") as dave_ws,
    ):
        for ws in (alice_ws, bob_ws, carol_ws, dave_ws):
            await next_of_type(ws, "welcome")
        writers = [Writer(alice_ws, group.pk, "alice"), Writer(bob_ws, group.pk, "bob")]
        readers = [Reader(carol_ws), Reader(dave_ws)]
        reading = [asyncio.create_task(r.run()) for r in readers]
        counter = 0

        async def traffic(seconds: float) -> None:
            nonlocal counter
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                counter += 1
                await asyncio.gather(*(w.send(counter) for w in writers))
                await asyncio.sleep(0.05)

        await traffic(2)
        redis.stop()
        await asyncio.sleep(1)
        health_during = (await asyncio.to_thread(get_json, f"{server_a.http}/health"))[0]
        await traffic(OUTAGE_S - 1)
        redis.start()
        returned_at = time.monotonic()
        await traffic(5)
        health_after = (await asyncio.to_thread(get_json, f"{server_b.http}/health"))[0]
        await asyncio.sleep(1)
        for task in reading:
            task.cancel()
        open_sockets = [ws.close_code is None for ws in (alice_ws, bob_ws, carol_ws, dave_ws)]

    assert open_sockets == [True] * 4, "a socket closed during the Redis outage"
    assert health_during == 503 and health_after == 200
    assert all(w.unanswered == 0 for w in writers), "a send got no answer"
    acked = set().union(*(w.acked for w in writers))
    assert len(acked) == 2 * counter  # every send was acked in the end (no retryable error left over)
    stored = await sync_to_async(list)(
        Message.objects.filter(conversation=group).order_by("seq").values_list("seq", "client_msg_id"))
    assert sorted(key for _, key in stored) == sorted(acked)  # each acked write stored exactly once
    assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))

    # Fan-out came back by itself: live events after Redis's return, within a few seconds.
    for reader in readers:
        after_return = [at for at, _ in reader.seen if at > returned_at]
        assert after_return, "no live event after Redis came back"
        assert after_return[0] - returned_at < 5
        # Live events are never doubled.
        live = [seq for _, seq in reader.seen]
        assert len(live) == len(set(live))
        # Resuming from the last seq it has without a gap brings the rest, each once.
        rest = await resume(server_a, tokens["carol"], group.pk, reader.last_contiguous())
        have = {seq for seq in live if seq <= reader.last_contiguous()}
        assert sorted(have) + rest == list(range(1, len(stored) + 1))
