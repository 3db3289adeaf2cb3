"""
Instructions per delivery in the hub's fan-out loop, counted by callgrind: repeatable to the
instruction whatever else the machine is doing, where timings of the same loop vary by tens of
per cent on a shared machine.

``Hub.deliver`` writes EVENTS events to N members whose frame writers do nothing, so what is
counted is the loop itself (codec choice, frame building, counters), not the socket. Run it
for 1 and for K events and take the difference, divided by (K - 1) x N::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/hub_instructions.py 3000 1
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/hub_instructions.py 3000 21

(each prints ``Collected : <instructions>``). Run from a checkout's root; it works on checkouts
from before realtime/ was split into layers too, to compare with a baseline (22a8279: 3,419 per
delivery; f95d0d5: 4,193; f4efb6d: 3,486).
"""

import asyncio
import os
import sys

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

try:
    from realtime.codec import NATIVE
    from realtime.delivery.hub import Hub
    from realtime.delivery.stats import ProcessStats
except ImportError:  # a checkout from before the layers (22a8279 and earlier): one protocol, no codec
    from realtime.hub import Hub
    from realtime.stats import ProcessStats

    NATIVE = None


class NullWriter:
    """A frame writer that writes nothing: the socket's cost is left out of the count."""

    __slots__ = ()

    def write(self, frame) -> bool:
        return True


class Member:
    """What the hub needs of a connection, on the native protocol."""

    __slots__ = ("codec", "connection_id", "frame_writer", "held")

    def __init__(self, i: int):
        self.connection_id = f"c{i}"
        self.held = None
        self.frame_writer = NullWriter()
        self.codec = NATIVE


async def deliver(members: int, events: int) -> None:
    hub = Hub(layer=None, stats=ProcessStats())
    hub.groups["g"] = {Member(i) for i in range(members)}
    text = '{"type":"chat.message","data":{"content":"' + "x" * 100 + '"}}'
    for _ in range(events):
        await hub.deliver("g", text, "chat.message", published_at=0.0)


if __name__ == "__main__":
    asyncio.run(deliver(int(sys.argv[1]), int(sys.argv[2])))
