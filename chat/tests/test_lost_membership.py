"""A membership change lost with Redis is repaired by the ``resync`` that announces it (realtime/resync.py)."""

import pytest
from asgiref.sync import sync_to_async

from chat import services
from realtime import publish as publish_module
from realtime import resync


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.REALTIME = {**settings.REALTIME, "HUB_RETRY_S": 0.1}
    yield
    resync.take_lost_message()


async def test_a_conversation_whose_subscription_was_lost_is_followed_after_resync(connect, alice, bob, monkeypatch):
    alice_client = await connect(user=alice)
    send = publish_module.send_to_layer

    async def redis_away(group, message):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(publish_module, "send_to_layer", redis_away)
    group = await sync_to_async(services.create_group)(owner=bob, title="made while Redis was away",
                                                       member_ids=[alice.pk])
    monkeypatch.setattr(publish_module, "send_to_layer", send)

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
