"""realtime.delivery.layers over Redis: batched sends and reads keep channels_redis's order, expiry and capacity."""

import uuid

import pytest

from conftest import redis_layer_config
from realtime.delivery.layers import RedisChannelLayer


@pytest.fixture(params=["one script", "two scripts"])
async def layer(request):
    """The layer on one Redis: its one-script send, and the two scripts a sharded layer takes."""
    config = redis_layer_config(f"test-{uuid.uuid4().hex[:8]}")["default"]["CONFIG"]
    layer = RedisChannelLayer(**{**config, "capacity": 50})
    assert layer._one_script
    layer._one_script = request.param == "one script"
    yield layer
    await layer.flush()
    await layer.close_pools()


async def test_group_send_many_delivers_in_order_to_every_member_channel(layer):
    a, b = "realtime.hub.a", "realtime.hub.b"
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    await layer.group_add("other", b)
    sends = [("room" if n % 3 else "other", {"type": "realtime.event", "n": n}) for n in range(40)]

    assert await layer.group_send_many(sends) == 0
    received_a = await layer.receive_many(a, 100)
    received_b = await layer.receive_many(b, 1)  # one entry: the call's messages to b, bundled

    assert [m["n"] for m in received_a] == [n for n in range(40) if n % 3]
    assert [m["n"] for m in received_b] == list(range(40))
    assert all("__asgi_channel__" not in m for m in received_b)


async def test_batched_and_stock_sends_interleave_in_order(layer):
    await layer.group_add("room", "realtime.hub.c")
    await layer.group_send_many([("room", {"type": "realtime.event", "n": 1})])
    await layer.group_send("room", {"type": "realtime.event", "n": 2})
    await layer.group_send_many([("room", {"type": "realtime.event", "n": 3})])
    assert [m["n"] for m in await layer.receive_many("realtime.hub.c", 10)] == [1, 2, 3]


async def test_a_call_sends_a_process_channel_its_messages_as_one_entry(layer):
    await layer.group_add("room", "realtime.hub.d")
    await layer.group_add("other", "realtime.hub.d")
    await layer.group_send_many([("room" if n % 2 else "other", {"type": "realtime.event", "n": n}) for n in range(30)])
    assert await layer.connection(0).zcard(layer.prefix + "realtime.hub.d") == 1
    assert [m["n"] for m in await layer.receive_many("realtime.hub.d", 1)] == list(range(30))


async def test_group_send_many_counts_deliveries_refused_over_capacity(layer):
    # Capacity counts entries (50 here): one call's messages to a process channel are one.
    await layer.group_add("room", "realtime.hub.full")
    for n in range(49):
        assert await layer.group_send_many([("room", {"type": "realtime.event", "n": n})]) == 0
    assert await layer.group_send_many([("room", {"type": "realtime.event", "n": n}) for n in (49, 50)]) == 0
    refused = await layer.group_send_many([("room", {"type": "realtime.event", "n": n}) for n in (51, 52, 53)])
    assert refused == 3
    assert [m["n"] for m in await layer.receive_many("realtime.hub.full", 100)] == list(range(51))


async def test_stock_channels_get_one_entry_per_message(layer):
    stock = await layer.new_channel()  # a consumer's own channel, "specific.<client>!<id>"
    await layer.group_add("room", stock)
    await layer.group_add("room", "realtime.hub.e")
    await layer.group_send_many([("room", {"type": "realtime.event", "n": n}) for n in range(3)])
    assert [(await layer.receive(stock))["n"] for _ in range(3)] == [0, 1, 2]
    assert [m["n"] for m in await layer.receive_many("realtime.hub.e", 10)] == [0, 1, 2]


async def test_group_send_many_skips_members_past_the_group_expiry(layer):
    await layer.group_add("room", "realtime.hub.old")
    # A member last re-added longer ago than group_expiry has left (a crashed process's channel).
    await layer.connection(0).zadd(layer._group_key("room"), {"realtime.hub.old": 1})
    await layer.group_add("room", "realtime.hub.new")
    await layer.group_send_many([("room", {"type": "realtime.event"})])
    assert len(await layer.receive_many("realtime.hub.new", 10)) == 1
    assert await layer.connection(0).zcard(layer.prefix + "realtime.hub.old") == 0


async def test_receive_many_falls_back_to_two_pops_on_a_redis_without_bzmpop(layer, monkeypatch):
    from redis.exceptions import ResponseError

    async def unknown(*args, **kwargs):
        raise ResponseError("unknown command 'BZMPOP', with args beginning with: ")

    await layer.group_add("room", "realtime.hub.old")
    monkeypatch.setattr(layer.connection(0), "bzmpop", unknown)
    await layer.group_send_many([("room", {"type": "realtime.event", "n": 1})])
    assert [m["n"] for m in await layer.receive_many("realtime.hub.old", 10)] == [1]
    await layer.group_send_many([("room", {"type": "realtime.event", "n": 2})])
    assert [m["n"] for m in await layer.receive_many("realtime.hub.old", 10)] == [2]
    assert layer._blocking_pop_many is False


async def test_more_than_a_bundle_of_identical_messages_arrives_whole_and_in_order(layer):
    # 250 messages to one process channel: three bundles (BUNDLE_MAX 100), two with the same bytes;
    # a sorted set keeps one copy of equal members, so each entry must still differ.
    await layer.group_add("room", "realtime.hub.many")
    sends = [("room", {"type": "realtime.event", "text": "same"}) for _ in range(200)]
    sends += [("room", {"type": "realtime.event", "n": n}) for n in range(50)]
    assert await layer.group_send_many(sends) == 0
    assert await layer.connection(0).zcard(layer.prefix + "realtime.hub.many") == 3
    received = await layer.receive_many("realtime.hub.many", 10)
    assert received == [message for _, message in sends]


def test_per_channel_capacities_take_the_two_scripts():
    config = redis_layer_config("test-capacities")["default"]["CONFIG"]
    assert not RedisChannelLayer(**config, channel_capacity={"realtime.hub.*": 10})._one_script
