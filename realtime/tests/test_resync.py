"""Lost events are announced with ``resync`` (realtime/delivery/resync.py, docs/protocol.md "resync")."""

import pytest
from asgiref.sync import sync_to_async

from realtime.delivery import outbox, resync
from realtime.delivery.process import get_process
from realtime.groups import HUBS_GROUP, user_group
from realtime.publish import publish


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.REALTIME = {**settings.REALTIME, "HUB_RETRY_S": 0.1}
    yield
    resync.take_lost_message()  # nothing remembered leaks into the next test


async def test_a_failed_publish_is_announced_to_the_groups_members_once_the_layer_takes_messages(
    connect, alice, bob, monkeypatch
):
    alice_client = await connect(user=alice)
    bob_client = await connect(user=bob)
    send = outbox.send_to_layer
    failures = []

    async def failing_once(group, message):
        if group == user_group(alice.pk) and not failures:
            failures.append(group)
            raise ConnectionError("Redis is away")
        await send(group, message)

    monkeypatch.setattr(outbox, "send_to_layer", failing_once)
    await sync_to_async(publish)(user_group(alice.pk), "test.event", {"n": 1})
    assert failures, "the publish did not fail"

    announced = await alice_client.receive_type("resync", timeout=5)
    assert announced["data"] == {"reason": "publish_failed"}
    await bob_client.assert_nothing()
    # Announced once: later publishes go through as usual.
    await sync_to_async(publish)(user_group(alice.pk), "test.event", {"n": 2})
    assert (await alice_client.receive())["type"] == "test.event"


@pytest.mark.parametrize("channel_layer", ["redis"], indirect=True)
async def test_a_hub_that_redis_forgot_rejoins_and_tells_its_connections(connect, alice, channel_layer):
    client = await connect(user=alice)
    hub = (await get_process()).hub
    # Redis restarted empty without the hub's read failing: its group memberships are gone.
    connection = hub.layer.connection(hub.layer.consistent_hash(HUBS_GROUP))
    for group in [*hub.groups, HUBS_GROUP]:
        await connection.delete(hub.layer._group_key(group))

    announced = await client.receive_type("resync", timeout=5)
    assert announced["data"] == {"reason": "hub_reconnected"}
    # The hub is back in its groups: events reach the connection again.
    await sync_to_async(publish)(user_group(alice.pk), "test.event", {"n": 1})
    assert (await client.receive_type("test.event", timeout=5))["data"] == {"n": 1}
