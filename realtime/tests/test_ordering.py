"""A stream's sequenced events reach each process's members in seq order, whatever order they were published in."""

import asyncio
import time

import orjson
import pytest

from realtime.codec import NATIVE
from realtime.delivery.hub import Hub
from realtime.delivery.outbox import event_message
from realtime.delivery.stats import ProcessStats

pytestmark = pytest.mark.any_database


class Member:
    held = None
    frame_writer = None
    codec = NATIVE

    def __init__(self, name):
        self.connection_id, self.sent = name, []

    async def base_send(self, message):
        self.sent.append(orjson.loads(message["text"])["data"]["seq"])


@pytest.fixture
def gap_wait(settings):
    settings.REALTIME = {**settings.REALTIME, "SEQUENCE_GAP_WAIT_S": 0.2}
    return 0.2


def hub_with(member, group="g"):
    hub = Hub(layer=None, stats=ProcessStats())
    hub.groups[group] = {member}
    return hub


def message(seq, group="g", stream="s"):
    return event_message(group, "chat.message", {"seq": seq}, order=(stream, seq))


async def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_events_published_out_of_order_are_written_in_seq_order(gap_wait):
    member = Member("a")
    hub = hub_with(member)
    for seq in (1, 3, 4, 2, 5):
        await hub._handle(message(seq))
    assert member.sent == [1, 2, 3, 4, 5]


async def test_a_gap_that_never_fills_holds_the_events_after_it_only_for_the_wait(gap_wait):
    member = Member("a")
    hub = hub_with(member)
    await hub._handle(message(1))
    started = time.monotonic()
    await hub._handle(message(3))
    await hub._handle(message(4))
    assert member.sent == [1]
    await wait_until(lambda: member.sent == [1, 3, 4])
    assert time.monotonic() - started >= gap_wait * 0.9
    await hub._handle(message(2))  # late: written at once rather than never
    await hub._handle(message(5))  # the stream carries on from the highest
    assert member.sent == [1, 3, 4, 2, 5]


async def test_streams_and_groups_are_ordered_apart(gap_wait):
    member = Member("a")
    hub = hub_with(member)
    hub.groups["h"] = {member}
    await hub._handle(message(1, stream="x"))
    await hub._handle(message(7, stream="y"))  # another stream's first event: no wait
    await hub._handle(message(3, stream="x"))  # waits for x's 2
    await hub._handle(message(1, group="h", stream="x"))
    assert member.sent == [1, 7, 1]
    await hub._handle(message(2, stream="x"))
    assert member.sent == [1, 7, 1, 2, 3]


async def test_unsequenced_events_are_never_held(gap_wait):
    member = Member("a")
    hub = hub_with(member)
    await hub._handle(message(1))
    await hub._handle(message(3))
    await hub._handle(event_message("g", "chat.typing", {"seq": 0}))
    assert member.sent == [1, 0]


async def test_a_group_that_lost_its_last_local_member_starts_afresh(gap_wait):
    first, later = Member("a"), Member("b")
    hub = hub_with(first)
    await hub._handle(message(1))
    await hub.unsubscribe(["g"], first)
    hub.groups["g"] = {later}  # a member of this process again, five messages later
    await hub._handle(message(7))
    assert later.sent == [7]
