"""
The per-process hub: local group membership and fan-out to local connections.

Plain Channels gives every consumer its own layer channel, so an event to a group of N costs N
layer messages, N consumer wake-ups and N JSON encodes (24 s p99 at N=1000, PLATFORM-FACTS.md).
Here a process owns one layer channel; a group in the layer holds process channels, added when
the first local connection subscribes and discarded when the last leaves. One layer message per
process carries the pre-encoded frame, and the hub writes it to each local member's socket.

Bookkeeping rules:
- group membership in the layer is re-added every ``REALTIME["HUB_REFRESH_S"]``, under the layer's
  ``group_expiry``, so a crashed process's channel ages out of every group by itself;
- after the layer fails (Redis away), the hub keeps retrying, and when a read succeeds again it
  re-adds every group it has members for (Redis may have lost them).
"""

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from .conf import realtime_settings
from .publish import LAYER_CLOSE_TYPE, LAYER_EVENT_TYPE, LAYER_MEMBERSHIP_TYPE
from .stats import ProcessStats

logger = logging.getLogger(__name__)

_LOCK_STRIPES = 64


class Connection(Protocol):
    """What the hub needs of a local connection: its ASGI ``base_send`` and its own bookkeeping."""

    connection_id: str
    # Events for a connection that has not been sent its ``welcome`` yet wait here (None after).
    held: list[dict] | None

    async def base_send(self, message: dict) -> None: ...

    async def subscribe(self, group: str) -> None: ...

    async def unsubscribe(self, group: str) -> None: ...

    async def close_with(self, text: str, code: int) -> None: ...


class Hub:
    """Local group -> connections map for one event loop, fed by one channel-layer channel."""

    def __init__(self, layer, stats: ProcessStats):
        self.layer = layer
        self.stats = stats
        self.channel: str | None = None
        self.groups: dict[str, set[Connection]] = {}
        # Group add/discard in the layer must not reorder for one group; striping bounds the locks.
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Create this process's layer channel and start reading it (once, by its ServerProcess)."""
        self.channel = await self.layer.new_channel()
        self._tasks = [
            asyncio.create_task(self._read(), name="realtime-hub-read"),
            asyncio.create_task(self._refresh(), name="realtime-hub-refresh"),
        ]

    async def close(self) -> None:
        """Stop reading and leave every group in the layer (graceful shutdown, tests)."""
        await self._stop_tasks()
        for group in list(self.groups):
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                logger.warning("could not leave group %s on close", group, exc_info=True)
        self.groups.clear()

    async def _stop_tasks(self) -> None:
        # A cancellation that lands while redis-py is opening a connection can be swallowed
        # (the read then carries on into a 5 s blocking pop), so cancel until the tasks end.
        for _ in range(100):
            pending = [task for task in self._tasks if not task.done()]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.1)
        logger.warning("hub tasks did not stop within 10 s")

    def _lock(self, group: str) -> asyncio.Lock:
        return self._locks[hash(group) % _LOCK_STRIPES]

    async def subscribe(self, group: str, conn: Connection) -> None:
        """
        Add ``conn`` to ``group``; join the layer group if it is this process's first member.

        Raise the layer's error (and leave nothing half-registered) if the layer is unreachable.
        """
        async with self._lock(group):
            members = self.groups.get(group)
            if members:
                members.add(conn)
                return
            self.groups[group] = {conn}
            try:
                await self.layer.group_add(group, self.channel)
            except BaseException:
                del self.groups[group]
                raise

    async def unsubscribe(self, group: str, conn: Connection) -> None:
        """Remove ``conn`` from ``group``; leave the layer group when no local member is left."""
        async with self._lock(group):
            members = self.groups.get(group)
            if not members or conn not in members:
                return
            members.discard(conn)
            if members:
                return
            del self.groups[group]
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                # The layer forgets us by group_expiry anyway; deliveries meanwhile find no member.
                logger.warning("could not leave group %s; it expires by itself", group, exc_info=True)

    async def unsubscribe_all(self, conn: Connection, groups: Iterable[str]) -> None:
        """Remove ``conn`` from each of ``groups`` (a closing connection's subscriptions)."""
        for group in groups:
            await self.unsubscribe(group, conn)

    def local_members(self, group: str) -> int:
        """Return how many local connections are subscribed to ``group``."""
        return len(self.groups.get(group, ()))

    async def deliver(
        self, group: str, text: str, event: str = "event", published_at: float | None = None, exclude: str | None = None
    ) -> None:
        """
        Write the encoded frame ``text`` (of type ``event``) to every local member of ``group`` but
        the connection whose id is ``exclude``; count deliveries, failures and the latency from
        ``published_at`` (epoch s) to the last write.
        """
        members = self.groups.get(group)
        if not members:
            return
        # One message dict for everyone: the server only reads it.
        message = {"type": "websocket.send", "text": text}
        delivered = failed = 0
        for conn in tuple(members):
            if conn.connection_id == exclude:
                continue
            if conn.held is not None:
                conn.held.append(message)
                delivered += 1  # written right after the connection's welcome
                continue
            try:
                await conn.base_send(message)
                delivered += 1
            except Exception:
                failed += 1
                logger.debug("delivery to a closing connection failed", exc_info=True)
        latency = time.time() - published_at if published_at is not None else 0.0
        self.stats.broadcast(event, delivered, failed, max(latency, 0.0))

    async def apply_membership(self, message: dict) -> None:
        """
        Subscribe (``action`` "add") or unsubscribe ("discard") every local member of
        ``message["group"]`` to ``message["target"]``, then write ``message["text"]`` when given.
        """
        group, target, action = message["group"], message["target"], message["action"]
        for conn in tuple(self.groups.get(group, ())):
            try:
                if action == "add":
                    await conn.subscribe(target)
                else:
                    await conn.unsubscribe(target)
            except Exception:
                logger.warning("membership %s %s failed for a connection", action, target, exc_info=True)
        if "text" in message:
            await self.deliver(group, message["text"], message["event"], message["ts"])

    async def close_members(self, group: str, text: str, code: int, exclude: str | None = None) -> None:
        """Write the error frame ``text`` to every local member of ``group`` but ``exclude`` and close it with ``code``."""
        for conn in tuple(self.groups.get(group, ())):
            if conn.connection_id != exclude:
                await conn.close_with(text, code)

    async def _read(self) -> None:
        lost = False
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not lost:
                    logger.error("channel layer unreachable; hub retrying", exc_info=True)
                lost = True
                await asyncio.sleep(realtime_settings.HUB_RETRY_S)
                await self._rejoin_all()
                continue
            if lost:
                logger.warning("channel layer reachable again; hub resumed")
                lost = False
            message_type = message.get("type")
            if message_type == LAYER_EVENT_TYPE:
                await self.deliver(message["group"], message["text"], message["event"], message["ts"], message.get("exclude"))
            elif message_type == LAYER_MEMBERSHIP_TYPE:
                await self.apply_membership(message)
            elif message_type == LAYER_CLOSE_TYPE:
                await self.close_members(message["group"], message["text"], message["code"], message.get("exclude"))

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(realtime_settings.HUB_REFRESH_S)
            await self._rejoin_all()

    async def _rejoin_all(self) -> None:
        for group in list(self.groups):
            try:
                await self.layer.group_add(group, self.channel)
            except Exception:
                logger.debug("rejoining %s failed; retried later", group, exc_info=True)
                return
