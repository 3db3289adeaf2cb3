"""
Sequenced events back in order, per server process.

An app numbers the events of a stream (a conversation's ``chat.message``, by ``seq``) and
publishes each after its transaction commits. Two server processes that commit seq 5 and seq 6 a
millisecond apart can publish them in the opposite order, and every hub then receives 6 before 5.
Native clients put them back by ``seq`` (docs/protocol.md, "Resume"); a seed's client cannot, it
shows what comes (docs/migration.md, "Ordering"). So each hub writes a stream's events in ``seq``
order: an event past a gap waits until the gap is filled, at most ``REALTIME["SEQUENCE_GAP_WAIT_S"]``;
then the waiting events go out in order and the stream carries on from the highest.

A stream's position is known from the first event this process sees of it, and forgotten when the
group loses its last local member or the layer loses events (``reset``): events lost on the way are
the resync's business (realtime.delivery.resync), not this wait's. An event older than the position
(it came after its gap was given up) is written at once, late rather than never.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from realtime.conf import realtime_settings

logger = logging.getLogger(__name__)

__all__ = ["StreamOrder"]

# (group, stream): one conversation's events as one group's members get them.
_Key = tuple[str, str]


class StreamOrder:
    """
    Per (group, stream), hold a layer event message carrying ``"order": [stream, seq]`` until the
    events before it in its stream are written, then hand it to ``deliver`` (the hub's writer).
    """

    def __init__(self, deliver: Callable[[dict], Awaitable[None]]):
        self._deliver = deliver
        self._next: dict[_Key, int] = {}
        self._held: dict[_Key, dict[int, dict]] = {}
        self._timers: dict[_Key, asyncio.TimerHandle] = {}
        # The streams of each group with a position: ``forget`` looks up one group's, not every
        # key (a drain forgets every group, which made it quadratic in the groups).
        self._streams: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task] = set()
        # Writes of one stream never interleave: an expired wait and a new event run one at a time.
        self._lock = asyncio.Lock()

    async def offer(self, message: dict) -> None:
        """Write ``message`` now if it is next in its stream (or the first seen, or late); else hold it."""
        stream, seq = message["order"]
        key = (message["group"], stream)
        async with self._lock:
            expected = self._next.get(key)
            if expected is not None and seq > expected:
                self._held.setdefault(key, {})[seq] = message
                if key not in self._timers:
                    wait_s = realtime_settings.SEQUENCE_GAP_WAIT_S
                    self._timers[key] = asyncio.get_running_loop().call_later(wait_s, self._expire, key)
                return
            await self._deliver(message)
            if expected is None or seq >= expected:
                if expected is None:
                    self._streams.setdefault(key[0], set()).add(stream)
                self._next[key] = seq + 1
                await self._release(key, give_up=False)

    async def _release(self, key: _Key, *, give_up: bool) -> None:
        # Write the held events that are next in line; on give_up, all of them, skipping the gaps.
        held = self._held.get(key)
        while held:
            seq = self._next[key] if self._next[key] in held else (min(held) if give_up else None)
            if seq is None:
                return
            self._next[key] = seq + 1
            await self._deliver(held.pop(seq))
        self._held.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, key: _Key) -> None:
        self._timers.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._give_up(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _give_up(self, key: _Key) -> None:
        async with self._lock:
            if key in self._held:
                logger.info(
                    "stream %s of %s: gap before seq %s not filled; writing on", key[1], key[0], min(self._held[key])
                )
                await self._release(key, give_up=True)

    def forget(self, group: str) -> None:
        """Drop ``group``'s positions and held events (its last local member left): a later member starts afresh."""
        # Every held key has a position (only an event past a known position is held).
        for key in [(group, stream) for stream in self._streams.pop(group, ())]:
            self._next.pop(key, None)
            self._held.pop(key, None)
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Stop the waits (the hub is closing): nothing held is written."""
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        self._timers.clear()
        self._held.clear()
        self._next.clear()
        self._streams.clear()

    async def reset(self) -> None:
        """Write everything held, in order, and forget every position (the layer lost events)."""
        async with self._lock:
            for key in list(self._held):
                await self._release(key, give_up=True)
            self._next.clear()
            self._streams.clear()
