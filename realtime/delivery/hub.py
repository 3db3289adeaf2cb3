"""
The per-process hub: local group membership and fan-out to local connections.

Plain Channels gives every consumer its own layer channel, so an event to a group of N costs N
layer messages, N consumer wake-ups and N JSON encodes (24 s p99 at N=1000, docs/platform-facts.md).
Here a process owns one layer channel; a group in the layer holds process channels, added when
the first local connection subscribes and discarded when the last leaves. One layer message per
process carries the pre-encoded frame, and the hub writes it to each local member's socket.

Bookkeeping rules:
- group membership in the layer is re-added every ``REALTIME["HUB_REFRESH_S"]``, under the layer's
  ``group_expiry``, so a crashed process's channel ages out of every group by itself;
- after the layer fails (Redis away), the hub keeps retrying, and when a read succeeds again it
  re-adds every group it has members for (Redis may have lost them) and sends ``resync`` to every
  local connection (realtime.delivery.resync); ``check_membership`` does the same when Redis forgot the
  hub without its read failing (a quick restart).
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol

from realtime.codec import NATIVE, Codec
from realtime.conf import realtime_settings
from realtime.groups import HUBS_GROUP
from realtime.servers import FrameWriter, PreparedFrame

from .coalesce import Coalescer
from .layers import RedisChannelLayer
from .ordering import StreamOrder
from .outbox import LAYER_CLOSE_TYPE, LAYER_EVENT_TYPE, LAYER_MEMBERSHIP_TYPE, LAYER_MULTICAST_TYPE
from .resync import RESYNC_EVENT, resync_frame
from .stats import ProcessStats

logger = logging.getLogger(__name__)

_LOCK_STRIPES = 64
# Layer messages taken per read: a burst is handled without a round trip per message.
_RECEIVE_BATCH = 100
# Connections re-reading their groups at once after a resync (each a database read in a thread).
_REFRESH_CONCURRENCY = 4


class _Outgoing:
    """One event's frame in one protocol: its ASGI message and its ``PreparedFrame`` for direct writers."""

    __slots__ = ("frame", "message")

    def __init__(self, text: str):
        self.message = {"type": "websocket.send", "text": text}
        # Built at once, even if no member has a direct writer (the in-memory tests): once per
        # event, while a lazy property cost an extra call per delivery in the fan-out loop.
        self.frame = PreparedFrame(text)


class Connection(Protocol):
    """What the hub needs of a local connection: its ASGI ``base_send`` and its own bookkeeping."""

    connection_id: str
    # Events for a connection that has not been sent its ``welcome`` yet wait here (None after).
    held: list[dict] | None
    # Under Daphne or uvicorn, writes a frame built once per event straight to the socket
    # (realtime.servers.daphne.writes, realtime.servers.uvicorn); None elsewhere.
    frame_writer: FrameWriter | None
    # The endpoint's wire protocol (realtime.codec): NATIVE, or a compatibility endpoint's.
    codec: Codec

    async def base_send(self, message: dict) -> None: ...

    async def subscribe(self, *groups: str) -> None: ...

    async def unsubscribe(self, *groups: str) -> None: ...

    async def close_with(self, text: str, code: int) -> None: ...

    async def refresh_server_groups(self) -> None: ...


class Hub:
    """Local group -> connections map for one event loop, fed by one channel-layer channel."""

    def __init__(self, layer, stats: ProcessStats):
        self.layer = layer
        self.stats = stats
        # Epoch seconds, comparable with a publish's "ts" from any process on the host; replaceable in tests.
        self.clock = time.time
        self.channel: str | None = None
        self.groups: dict[str, set[Connection]] = {}
        # Group add/discard in the layer must not reorder for one group; striping bounds the locks.
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        # Groups whose layer add is in flight: a subscriber to one waits for it (under its lock).
        self._adding: set[str] = set()
        # The layer adds (discards) of subscribes (unsubscribes) in flight together go out as one
        # (realtime.delivery.coalesce): a storm's connects, a drain's disconnects.
        self._layer_adds: Coalescer[list[str], None] = Coalescer(
            self._batch(RedisChannelLayer.group_add_many), name="hub-add", max_batch=100
        )
        self._layer_discards: Coalescer[list[str], None] = Coalescer(
            self._batch(RedisChannelLayer.group_discard_many), name="hub-discard", max_batch=100
        )
        # Set when the process drains (ServerProcess.start_draining): unsubscribes leave the layer's
        # groups to close(), which leaves them all in one batch.
        self.leaving = False
        self._tasks: list[asyncio.Task] = []
        self._resyncing: set[asyncio.Task] = set()
        self._refresh_slots = asyncio.Semaphore(_REFRESH_CONCURRENCY)
        # Events published with an ``order`` (a stream and its seq) are written in seq order.
        self.order = StreamOrder(self._deliver_event)

    async def start(self) -> None:
        """Create this process's layer channel and start reading it (once, by its ServerProcess)."""
        # A plain channel name (no "!"): this hub is its only reader, so it can pop many
        # messages at once (RedisChannelLayer.receive_many).
        self.channel = f"realtime.hub.{uuid.uuid4().hex}"
        await self.layer.group_add(HUBS_GROUP, self.channel)
        self._tasks = [
            asyncio.create_task(self._read(), name="realtime-hub-read"),
            asyncio.create_task(self._refresh(), name="realtime-hub-refresh"),
        ]

    async def close(self) -> None:
        """Stop reading and leave every group in the layer (graceful shutdown, tests)."""
        await self._stop_tasks()
        self.order.close()
        for task in tuple(self._resyncing):
            task.cancel()
        try:
            await self._layer_discard([*self.groups, HUBS_GROUP])
        except Exception:
            logger.warning("could not leave the groups on close; they expire by themselves", exc_info=True)
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

    @asynccontextmanager
    async def _locked(self, groups: Iterable[str]):
        # Stripes are taken in index order, so two batches never wait on each other in a cycle.
        async with AsyncExitStack() as stack:
            for stripe in sorted({hash(group) % _LOCK_STRIPES for group in groups}):
                await stack.enter_async_context(self._locks[stripe])
            yield

    async def _layer_add(self, groups: list[str]) -> None:
        if not groups:
            return
        if isinstance(self.layer, RedisChannelLayer):
            await self._layer_adds.submit(groups)
            return
        for group in groups:  # other layers (in-memory in tests) have no batch operation
            await self.layer.group_add(group, self.channel)

    def _batch(self, many):
        """A coalesced batch: ``many`` (the layer's ``group_add_many`` or ``_discard_many``) for every call's groups."""

        async def run(calls: list[list[str]]) -> list[None]:
            await many(self.layer, list(dict.fromkeys(group for groups in calls for group in groups)), self.channel)
            return [None] * len(calls)

        return run

    async def _layer_discard(self, groups: list[str]) -> None:
        if not groups:
            return
        if isinstance(self.layer, RedisChannelLayer):
            await self._layer_discards.submit(groups)
            return
        for group in groups:
            await self.layer.group_discard(group, self.channel)

    async def subscribe(self, groups: Iterable[str], conn: Connection) -> None:
        """
        Add ``conn`` to each of ``groups``; join in the layer (in one batch) the groups it is this
        process's first member of.

        Raise the layer's error (and leave nothing half-registered) if the layer is unreachable.
        """
        groups = list(dict.fromkeys(groups))
        # A group this process already follows (members, no add in flight) is joined in one step
        # of the loop, without its lock: an unsubscribe that empties it removes it in one step
        # too. So only groups that may need a layer add take locks, and connects that share a
        # group (everyone's) do not queue behind each other's round trips to Redis.
        followed = [group for group in groups if self.groups.get(group) and group not in self._adding]
        for group in followed:
            self.groups[group].add(conn)
        rest = [group for group in groups if group not in followed]
        if not rest:
            return
        try:
            async with self._locked(rest):
                first = [group for group in rest if not self.groups.get(group)]
                for group in rest:
                    self.groups.setdefault(group, set()).add(conn)
                self._adding.update(first)
                try:
                    await self._layer_add(first)
                finally:
                    self._adding.difference_update(first)
        except BaseException:
            for group in groups:
                members = self.groups.get(group)
                if members is None:
                    continue
                members.discard(conn)
                if not members:
                    del self.groups[group]
                    self.order.forget(group)
            raise

    async def unsubscribe(self, groups: Iterable[str], conn: Connection) -> None:
        """
        Remove ``conn`` from each of ``groups``; leave in the layer (in one batch) those with no
        local member left, or, while ``leaving``, keep them (empty) for ``close()``.
        """
        if self.leaving:
            for group in groups:
                if (members := self.groups.get(group)) is not None:
                    members.discard(conn)
            return
        groups = list(dict.fromkeys(groups))
        async with self._locked(groups):
            last = []
            for group in groups:
                members = self.groups.get(group)
                if not members or conn not in members:
                    continue
                members.discard(conn)
                if not members:
                    del self.groups[group]
                    self.order.forget(group)
                    last.append(group)
            try:
                await self._layer_discard(last)
            except Exception:
                # The layer forgets us by group_expiry anyway; deliveries meanwhile find no member.
                logger.warning("could not leave %d groups; they expire by themselves", len(last), exc_info=True)

    def local_members(self, group: str) -> int:
        """Return how many local connections are subscribed to ``group``."""
        return len(self.groups.get(group, ()))

    async def deliver(
        self,
        group: str,
        text: str,
        event: str = "event",
        published_at: float | None = None,
        exclude: str | None = None,
        only: str | None = None,
    ) -> None:
        """
        Write the encoded frame ``text`` (of type ``event``) to every local member of ``group`` but
        the connection whose id is ``exclude`` (or to the one whose id is ``only``, if a member);
        count deliveries, failures, the latency from ``published_at`` (epoch s) to each write and to
        the last one.
        """
        members = self.groups.get(group)
        if members and only is not None:
            members = [conn for conn in members if conn.connection_id == only]
        if members:
            await self._write(tuple(members), text, event, published_at, exclude)

    async def deliver_to_groups(
        self, groups: list[str], text: str, event: str, published_at: float, exclude: str | None = None
    ) -> None:
        """
        Write ``text`` once to each local connection that is a member of any of ``groups`` but the
        one whose id is ``exclude`` (``deliver``'s counting).
        """
        members = set()
        for group in groups:
            members.update(self.groups.get(group, ()))
        if members:
            await self._write(tuple(members), text, event, published_at, exclude)

    async def _write(
        self,
        members: tuple[Connection, ...],
        text: str,
        event: str,
        published_at: float | None,
        exclude: str | None = None,
    ) -> None:
        # One outgoing frame per protocol for everyone (the server only reads it): the native one,
        # and each compatibility endpoint's translation, made once (realtime.codec).
        native = _Outgoing(text)
        outgoing: dict[Codec, _Outgoing | None] = {}
        delivered = failed = timed = 0
        # Each write's latency from publish, summed (/health's average_latency_ms, realtime.delivery.stats).
        # Held deliveries are not timed: they are written later, after the connection's welcome.
        latency_s_sum = 0.0
        clock = self.clock
        native_codec = NATIVE
        for conn in members:
            if conn.connection_id == exclude:
                continue
            if conn.codec is native_codec:
                out = native
            else:
                if conn.codec not in outgoing:
                    outgoing[conn.codec] = self._translated(conn.codec, text)
                out = outgoing[conn.codec]
                if out is None:
                    continue  # that protocol has no such frame
            if conn.held is not None:
                conn.held.append(out.message)
                delivered += 1  # written right after the connection's welcome
                continue
            try:
                if conn.frame_writer is not None:
                    if not conn.frame_writer.write(out.frame):
                        failed += 1
                        continue
                else:
                    await conn.base_send(out.message)
                delivered += 1
                if published_at is not None:
                    timed += 1
                    latency_s_sum += max(clock() - published_at, 0.0)
            except Exception:
                failed += 1
                logger.debug("delivery to a closing connection failed", exc_info=True)
        fanout_latency_s = max(clock() - published_at, 0.0) if published_at is not None else 0.0
        self.stats.broadcast(event, delivered, failed, fanout_latency_s, latency_s_sum, timed)

    @staticmethod
    def _translated(codec: Codec, text: str) -> "_Outgoing | None":
        """``text`` in ``codec``'s protocol, or None: it has no such frame, or the translation failed (logged)."""
        try:
            translated = codec.translate(text)
        except Exception:
            logger.exception("codec %s could not translate an event; its members do not get it", codec.name)
            return None
        return None if translated is None else _Outgoing(translated)

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

    async def close_members(
        self, group: str, text: str, code: int, exclude: str | None = None, codec: str | None = None
    ) -> None:
        """
        Write the error frame ``text`` to every local member of ``group`` but ``exclude`` (and, with
        ``codec``, but those of other wire protocols) and close it with ``code``.
        """
        for conn in tuple(self.groups.get(group, ())):
            if conn.connection_id != exclude and (codec is None or conn.codec.name == codec):
                await conn.close_with(text, code)

    async def _receive(self) -> list[dict]:
        if isinstance(self.layer, RedisChannelLayer):
            return await self.layer.receive_many(self.channel, _RECEIVE_BATCH)
        return [await self.layer.receive(self.channel)]  # other layers (in-memory in tests) read one at a time

    async def _read(self) -> None:
        lost = False
        while True:
            try:
                messages = await self._receive()
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
                logger.warning("channel layer reachable again; hub resumed, local connections told to resync")
                lost = False
                # Events sent to this hub while it could not read may be gone (Redis restarted).
                await self._recover()
            for message in messages:
                await self._handle(message)

    async def _handle(self, message: dict) -> None:
        message_type = message.get("type")
        if message_type == LAYER_EVENT_TYPE:
            if "order" in message:
                await self.order.offer(message)
            else:
                await self._deliver_event(message)
        elif message_type == LAYER_MEMBERSHIP_TYPE:
            await self.apply_membership(message)
        elif message_type == LAYER_MULTICAST_TYPE:
            if message["event"] == RESYNC_EVENT:
                self._resync(message["groups"], message["text"], message["ts"])
            else:
                await self.deliver_to_groups(
                    message["groups"], message["text"], message["event"], message["ts"], message.get("exclude")
                )
        elif message_type == LAYER_CLOSE_TYPE:
            await self.close_members(
                message["group"], message["text"], message["code"], message.get("exclude"), message.get("codec")
            )

    async def _deliver_event(self, message: dict) -> None:
        """``deliver`` a layer event message (``LAYER_EVENT_TYPE``)."""
        await self.deliver(
            message["group"],
            message["text"],
            message["event"],
            message["ts"],
            message.get("exclude"),
            message.get("only"),
        )

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(realtime_settings.HUB_REFRESH_S)
            await self._rejoin_all()

    async def check_membership(self) -> None:
        """
        Detect that the layer forgot this hub (Redis restarted empty without the hub's read
        failing, or its groups expired): then rejoin every group and tell every local connection
        to resync, since events to those groups went nowhere meanwhile. Quiet while Redis is away
        (the read loop logs that).
        """
        if not isinstance(self.layer, RedisChannelLayer) or self.channel is None:
            return  # the in-memory layer cannot lose a membership
        try:
            if await self.layer.is_member(HUBS_GROUP, self.channel):
                return
        except Exception:
            logger.debug("membership check failed; retried", exc_info=True)
            return
        logger.warning("the channel layer lost this hub's groups; rejoining, local connections told to resync")
        await self._recover()

    async def _recover(self) -> None:
        # Rejoin first: events published after this point reach the hub, and what the clients
        # fetch when told to resync covers everything before it.
        await self._rejoin_all()
        await self.order.reset()  # a gap now may never fill: the resync covers it
        self._resync(list(self.groups), resync_frame("hub_reconnected"), time.time())

    def _resync(self, groups: list[str], text: str, published_at: float) -> None:
        # A lost event may have been a membership change (a new conversation to follow, one to
        # leave): each member of ``groups`` first re-reads the groups its user should follow (one
        # database read, a few connections at a time), then is sent the resync frame ``text``,
        # so whatever it fetches on resync is already followed live.
        members = set()
        for group in groups:
            members.update(self.groups.get(group, ()))
        for conn in members:
            task = asyncio.create_task(self._resync_one(conn, text, published_at))
            self._resyncing.add(task)
            task.add_done_callback(self._resyncing.discard)

    async def _resync_one(self, conn: Connection, text: str, published_at: float) -> None:
        async with self._refresh_slots:
            try:
                await conn.refresh_server_groups()
            except Exception:
                logger.warning("refreshing a connection's groups before its resync failed", exc_info=True)
        await self._write((conn,), text, RESYNC_EVENT, published_at)

    async def _rejoin_all(self) -> None:
        try:
            await self._layer_add([*self.groups, HUBS_GROUP])
        except Exception:
            logger.debug("rejoining the groups failed; retried later", exc_info=True)
