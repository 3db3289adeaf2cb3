"""
``average_latency_ms`` (``/health``, ``/api/websocket/stats``, ``/api/broadcaster/stats``) is
delivery latency: publish to the write into each socket, averaged per delivery over the last minute.
"""

from realtime.codec import NATIVE
from realtime.delivery.hub import Hub
from realtime.delivery.stats import WINDOW_S, ProcessStats
from realtime.ops.stats import aggregate


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class SlowSocket:
    """A hub connection whose every write takes ``write_s`` on ``clock``."""

    held = None
    frame_writer = None
    codec = NATIVE

    def __init__(self, name: str, clock: Clock, write_s: float):
        self.connection_id = name
        self.clock = clock
        self.write_s = write_s
        self.sent: list[dict] = []

    async def base_send(self, message: dict) -> None:
        self.clock.now += self.write_s
        self.sent.append(message)


def hub_with(members: int, write_s: float) -> tuple[Hub, Clock, list[SlowSocket]]:
    clock = Clock()
    hub = Hub(layer=None, stats=ProcessStats(clock=clock))
    hub.clock = clock
    sockets = [SlowSocket(f"c{i}", clock, write_s) for i in range(members)]
    hub.groups["g"] = set(sockets)
    return hub, clock, sockets


def broadcaster(*stats: ProcessStats) -> dict:
    return aggregate([s.snapshot(f"p{i}", {}) for i, s in enumerate(stats)])["broadcaster"]


async def test_average_latency_is_the_publish_delay_when_writes_are_instant():
    hub, clock, sockets = hub_with(members=3, write_s=0.0)
    await hub.deliver("g", '{"type":"x"}', "x", published_at=clock.now - 0.250)
    figures = broadcaster(hub.stats)
    assert figures["average_latency_ms"] == 250.0
    assert figures["latency_deliveries"] == 3
    assert figures["latency_window_s"] == WINDOW_S


async def test_average_latency_is_per_delivery_not_to_the_last_members_write():
    # Ten members, 20 ms per write: the deliveries land 20, 40 ... 200 ms after publish. The
    # figure used to be 200 (publish to the last write), which no client but the last one saw.
    hub, clock, sockets = hub_with(members=10, write_s=0.020)
    await hub.deliver("g", '{"type":"x"}', "x", published_at=clock.now)
    assert all(len(s.sent) == 1 for s in sockets)
    assert abs(broadcaster(hub.stats)["average_latency_ms"] - 110.0) < 0.01


async def test_average_latency_counts_deliveries_not_events():
    # One event to 1 member at 0 ms, one to 9 members at 100 ms: 9 of 10 deliveries took 100 ms.
    hub, clock, _ = hub_with(members=9, write_s=0.0)
    hub.groups["solo"] = {SlowSocket("solo", clock, 0.0)}
    await hub.deliver("solo", '{"type":"x"}', "x", published_at=clock.now)
    await hub.deliver("g", '{"type":"x"}', "x", published_at=clock.now - 0.100)
    assert abs(broadcaster(hub.stats)["average_latency_ms"] - 90.0) < 0.01


async def test_an_excluded_or_held_member_adds_no_latency_sample():
    hub, clock, sockets = hub_with(members=2, write_s=0.0)
    sockets[1].held = []
    await hub.deliver("g", '{"type":"x"}', "x", published_at=clock.now - 5, exclude="c0")
    figures = broadcaster(hub.stats)
    assert figures["latency_deliveries"] == 0 and figures["average_latency_ms"] == 0.0
    assert len(sockets[1].held) == 1


async def test_deliveries_older_than_the_window_leave_the_average():
    hub, clock, _ = hub_with(members=1, write_s=0.0)
    await hub.deliver("g", '{"type":"x"}', "x", published_at=clock.now - 5)  # an incident: 5 s late
    assert broadcaster(hub.stats)["average_latency_ms"] == 5000.0
    clock.now += WINDOW_S + 1
    for _ in range(10):
        await hub.deliver("g", '{"type":"x"}', "x", published_at=clock.now - 0.002)
    figures = broadcaster(hub.stats)
    assert figures["average_latency_ms"] == 2.0  # since start it would still be 456 ms
    assert figures["latency_deliveries"] == 10


async def test_processes_are_averaged_per_delivery():
    one, clock_one, _ = hub_with(members=1, write_s=0.0)
    many, clock_many, _ = hub_with(members=3, write_s=0.0)
    await one.deliver("g", '{"type":"x"}', "x", published_at=clock_one.now - 0.400)
    await many.deliver("g", '{"type":"x"}', "x", published_at=clock_many.now)
    assert broadcaster(one.stats, many.stats)["average_latency_ms"] == 100.0
