"""
Redis behind Sentinel (issue 26): two Daphne processes configured with ``REDIS_SENTINELS`` and
``REDIS_SENTINEL_MASTER`` carry chat traffic while the master is SIGKILLed; the sentinels promote
the replica and Switchboard follows it without a restart. Every acked send is stored exactly once,
readers that keep their sockets open end with every message once, in seq order (live, ``resync``,
``chat.join {after_seq}``), live fan-out resumes on the new master, /health is 200 again, a new
connection is welcomed, and both processes are still running with every socket open.
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
from tests.e2e.test_redis_restart import Reader, Writer
from tests.sentinel import SentinelCluster
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
# Generous bounds for a busy 2-core machine: the failover itself takes 1-3 s here.
PROMOTION_TIMEOUT_S = 20
FIRST_LIVE_DELIVERY_AFTER_KILL_S = 15


@pytest.fixture
def failover_cluster(django_db_setup, tmp_path):
    """A master, a replica and three sentinels, and two Daphne processes that know only the sentinels."""
    from django.db import connection

    cluster = SentinelCluster(tmp_path)
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        # `make test`'s own Redis stays out of it: REDIS_URL and REDIS_SENTINELS are exclusive.
        "REDIS_URL": "",
        **cluster.env,
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
    servers = []
    try:
        servers = [Daphne(env), Daphne(env)]
        # The sentinels find the replica and each other while Daphne starts.
        cluster.wait_until_ready()
        yield cluster, servers
    finally:
        for server in servers:
            server.stop()
        cluster.stop()


async def test_master_killed_the_replica_takes_over_and_no_acked_message_is_lost(
    failover_cluster, alice, bob, carol, make_user
):
    cluster, (server_a, server_b) = failover_cluster
    dave = await sync_to_async(make_user)("dave")
    group = await sync_to_async(services.create_group)(
        owner=alice, title="failover", member_ids=[bob.pk, carol.pk, dave.pk]
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
        counter = 0

        async def traffic(seconds: float) -> None:
            nonlocal counter
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                counter += 1
                await asyncio.gather(*(w.send(counter) for w in writers))
                await asyncio.sleep(0.05)  # two writers at 20 messages/s each

        try:
            await traffic(2)
            killed_at = time.monotonic()
            await asyncio.to_thread(cluster.kill_master)
            promotion = asyncio.create_task(asyncio.to_thread(cluster.wait_for_promotion, PROMOTION_TIMEOUT_S))
            while not promotion.done():
                await traffic(0.2)
            await promotion
            promoted_at = time.monotonic()
            await traffic(3)
            total = 2 * counter
            async with asyncio.timeout(20):
                while any(len(r.shown) < total for r in readers):
                    await asyncio.sleep(0.1)
            # The registry's clients (health, stats, a new connection's record) follow the new master too.
            health_after = (await asyncio.to_thread(get_json, f"{server_a.http}/health"))[0]
            async with websockets.connect(f"{server_b.url}?token={tokens['carol']}") as late_ws:
                welcome = await next_of_type(late_ws, "welcome")
            open_sockets = [ws.close_code is None for ws in (alice_ws, bob_ws, carol_ws, dave_ws)]
        finally:
            for task in reading:
                task.cancel()

    assert [server.proc.poll() for server in (server_a, server_b)] == [None, None], "a Daphne process exited"
    assert open_sockets == [True] * 4, "a socket closed during the failover"
    assert health_after == 200
    assert welcome["type"] == "welcome"
    assert all(w.unanswered == 0 for w in writers), "a send got no answer"
    acked = set().union(*(w.acked for w in writers))
    assert len(acked) == total  # every send was acked in the end
    stored = await sync_to_async(list)(
        Message.objects.filter(conversation=group).order_by("seq").values_list("seq", "client_msg_id")
    )
    assert sorted(key for _, key in stored) == sorted(acked)  # each acked write stored exactly once
    assert [seq for seq, _ in stored] == list(range(1, total + 1))

    for reader in readers:
        assert reader.shown == list(range(1, total + 1))
        # Fan-out follows the promoted replica by itself: live events after the promotion.
        after_promotion = [at for at, _ in reader.live if at > promoted_at]
        assert after_promotion, "no live event after the promotion"
        assert after_promotion[0] - killed_at < FIRST_LIVE_DELIVERY_AFTER_KILL_S
        live = [seq for _, seq in reader.live]
        assert len(live) == len(set(live)), "a live event was delivered twice"
