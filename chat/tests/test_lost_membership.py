"""A membership change lost with Redis is repaired by the ``resync`` that announces it (realtime/delivery/resync.py)."""

import contextlib
import time

import pytest
from asgiref.sync import sync_to_async

from chat import services
from realtime.delivery import outbox, resync


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.REALTIME = {**settings.REALTIME, "HUB_RETRY_S": 0.1}
    yield
    resync.take_lost_message()


async def test_a_conversation_whose_subscription_was_lost_is_followed_after_resync(connect, alice, bob, monkeypatch):
    alice_client = await connect(user=alice)
    send = outbox.send_to_layer

    async def redis_away(group, message):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(outbox, "send_to_layer", redis_away)
    group = await sync_to_async(services.create_group)(
        owner=bob, title="made while Redis was away", member_ids=[alice.pk]
    )
    monkeypatch.setattr(outbox, "send_to_layer", send)

    assert (await alice_client.receive_type("resync", timeout=5))["data"] == {"reason": "publish_failed"}
    # Followed again without reconnecting: bob's next message reaches alice live.
    for attempt in range(50):
        await sync_to_async(services.send_message)(sender=bob, conversation=group, content=f"hello {attempt}")
        try:
            message = await alice_client.receive_type("chat.message", timeout=0.2)
            break
        except TimeoutError:
            continue
    else:
        raise AssertionError("alice never followed the conversation")
    assert message["data"]["conversation_id"] == group.pk


async def test_a_removal_applied_during_the_resync_refresh_is_not_undone_by_it(connect, alice, bob, monkeypatch):
    """The refresh after ``resync`` reads the user's groups from the database; a removal applied
    while it reads must win, or the removed user would go on receiving the conversation."""
    from realtime.consumer import subscriptions as consumers
    from realtime.delivery.process import get_process

    group = await sync_to_async(services.create_group)(owner=bob, title="leaving soon", member_ids=[alice.pk])
    alice_client = await connect(user=alice)
    hub = (await get_process()).hub
    followed = f"chat.conversation.{group.pk}"
    assert hub.local_members(followed) == 1
    read_groups = consumers.registry.groups_for_session
    removed = []

    def read_then_remove(user):
        # The groups are read (the conversation among them), then alice is removed before the
        # refresh acts on what it read.
        groups = read_groups(user)
        if user.pk == alice.pk and not removed:
            removed.append(True)
            services.remove_member(actor=bob, conversation=group, user_id=alice.pk)
            deadline = time.monotonic() + 10
            while hub.local_members(followed) and time.monotonic() < deadline:
                time.sleep(0.01)  # the hub applies the removal on the event loop
        return groups

    monkeypatch.setattr(consumers.registry, "groups_for_session", read_then_remove)
    send = outbox.send_to_layer

    async def redis_away(group_name, message):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(outbox, "send_to_layer", redis_away)
    await sync_to_async(services.send_message)(sender=bob, conversation=group, content="lost with Redis")
    monkeypatch.setattr(outbox, "send_to_layer", send)

    assert (await alice_client.receive_type("resync", timeout=5))["data"] == {"reason": "publish_failed"}
    assert removed
    assert hub.local_members(followed) == 0
    await sync_to_async(services.send_message)(sender=bob, conversation=group, content="not for alice")
    frames = []
    with contextlib.suppress(TimeoutError):
        while True:
            frames.append(await alice_client.receive(timeout=0.5))
    assert not [frame for frame in frames if frame["type"] == "chat.message"], frames
