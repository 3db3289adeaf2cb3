"""
``ServerProcess``: what one server process (one event loop) shares between its connections.

It owns the hub (fan-out), the table of local connections, the process's counters, and the
maintenance tasks that keep the cross-process view true:

- every ``REALTIME["REGISTRY_REFRESH_S"]``: refresh this process's records in the connection
  registry (so they outlive their TTL only while the process lives);
- every ``PRESENCE_SWEEP_S``: sweep users whose connections all expired (a crashed process)
  and announce them offline;
- every ``STATS_PUBLISH_S``: publish this process's counters for ``/api/websocket/stats``;
- every ``SESSION_RECHECK_S``: close connections of deactivated users and ended sessions (4401);
- every ``HUB_RETRY_S``: announce events this process failed to publish, and check that the layer
  still knows the hub (realtime.delivery.resync);
- every second, with ``GC_FREEZE``: keep full garbage collections short (realtime.delivery.gc_pauses);
- the domain apps' own periodic jobs (realtime.periodic), in the database thread.

Under Daphne, SIGTERM drains the process (realtime.delivery.drain) instead of dropping every socket, where
the server owns the signal (its event loop runs in the main thread; not under ``manage.py
runserver``'s autoreloader, whose parent process restarts the server).
"""

import asyncio
import logging
import os
import socket
import time
import uuid
import weakref
from functools import partial

from channels.layers import get_channel_layer

from realtime import periodic
from realtime.conf import realtime_settings
from realtime.db import database_call
from realtime.groups import EVERYONE_GROUP

from .connection_registry import ConnectionRecord, get_registry
from .drain import install_drain_on_sigterm
from .gc_pauses import GcFreezer
from .group_commit import GroupCommit
from .hub import Connection, Hub
from .outbox import announce_lost
from .presence import announce, connection_closed, connections_drained
from .revalidation import close_revoked_sessions
from .stats import ProcessStats

logger = logging.getLogger(__name__)


class ServerProcess:
    """Per-event-loop state: ``hub``, ``group_commit``, ``registry``, ``stats`` and the open ``connections`` by id."""

    def __init__(self):
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stats = ProcessStats()
        self.hub = Hub(get_channel_layer(), self.stats)
        self.group_commit = GroupCommit()
        self.registry = get_registry()
        self.connections: dict[str, Connection] = {}  # the consumers, by connection id
        self.draining = False
        # The records of the connections a drain closed, unregistered together (unregister_drained).
        self.drained: list[ConnectionRecord] = []
        self._tasks: list[asyncio.Task] = []
        self._start_lock = asyncio.Lock()
        self._started = False
        self._failed_at: float | None = None  # time.monotonic() of the last failed start
        self._gc_freezer: GcFreezer | None = None

    async def start(self) -> None:
        """
        Start the hub and the maintenance tasks, once; calls during the start wait for it, later
        calls return at once.

        Never half-done: the only step that can fail is the hub joining the channel layer, and it
        comes first, so a failure (``ConnectionError``, ``TimeoutError`` after the layer's
        ``socket_connect_timeout`` while Redis is away) leaves nothing running and is raised to
        the caller. For ``REALTIME["HUB_RETRY_S"]`` after a failure, calls raise
        ``ConnectionError`` at once instead of queueing behind another attempt; the first call
        after that tries again.
        """
        self._raise_if_failed_lately()
        async with self._start_lock:
            if self._started:
                return
            self._raise_if_failed_lately()  # the attempt this call waited for failed
            try:
                await self.hub.start()
            except BaseException:
                self._failed_at = time.monotonic()
                raise
            self._failed_at = None
            s = realtime_settings
            self._tasks = [
                self._every(s.REGISTRY_REFRESH_S, self._refresh_registry),
                self._every(s.PRESENCE_SWEEP_S, self._sweep_presence),
                self._every(s.STATS_PUBLISH_S, self.publish_stats),
                self._every(s.SESSION_RECHECK_S, self._close_revoked_sessions),
                self._every(s.HUB_RETRY_S, self._check_layer),
            ]
            for job in periodic.registered():
                self._tasks.append(self._every(job.interval_s(), partial(database_call, job.fn), name=job.name))
            if s.GC_FREEZE:
                self._gc_freezer = GcFreezer(s.GC_FULL_COLLECT_S)
                self._tasks.append(self._every(1.0, self._check_gc))
            install_drain_on_sigterm(self)
            self._started = True
            try:
                await self.publish_stats()
            except Exception:
                logger.warning("first stats publish failed; retried in %s s", s.STATS_PUBLISH_S, exc_info=True)

    def _raise_if_failed_lately(self) -> None:
        if self._failed_at is not None and time.monotonic() - self._failed_at < realtime_settings.HUB_RETRY_S:
            raise ConnectionError("the channel layer was unreachable at the last start attempt; retried shortly")

    def _every(self, interval_s: float, job, name: str | None = None) -> asyncio.Task:
        name = name or job.__name__

        async def loop():
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await job()
                except Exception:
                    logger.warning("periodic %s failed; retried in %s s", name, interval_s, exc_info=True)

        return asyncio.create_task(loop(), name=f"realtime-{name}")

    async def _refresh_registry(self) -> None:
        records = [conn.record for conn in self.connections.values() if conn.record is not None]
        if records:
            await self.registry.refresh(records)

    async def _sweep_presence(self) -> None:
        for user_id, last_seen in await self.registry.sweep():
            await announce(user_id, online=False, last_seen=last_seen)

    async def _check_layer(self) -> None:
        # Lost events are announced as soon as the layer allows (realtime.delivery.resync).
        await self.hub.check_membership()
        await announce_lost()

    async def _check_gc(self) -> None:
        self._gc_freezer.check()

    async def _close_revoked_sessions(self) -> None:
        await close_revoked_sessions(self)

    async def publish_stats(self) -> None:
        """Publish this process's snapshot to the registry (kept for 3 publish intervals)."""
        # Everyone's group is every session, not a room: seed 001's "rooms" figures leave it out,
        # and the groups a drain has emptied (kept until it leaves the layer: Hub.unsubscribe).
        groups = {name: len(members) for name, members in self.hub.groups.items() if members and name != EVERYONE_GROUP}
        ttl = 3 * realtime_settings.STATS_PUBLISH_S
        await self.registry.publish_process(self.id, self.stats.snapshot(self.id, groups), ttl)

    def start_draining(self) -> None:
        """
        SIGTERM's drain (realtime.delivery.drain) begins: the connections it closes leave the
        layer's groups and the registry together, at ``close()`` and ``unregister_drained()``
        (one at a time, their Redis commands were a third of a drain's CPU: make bench-storm
        --profile).
        """
        self.draining = True
        self.hub.leaving = True

    async def connection_closed(self, record: ConnectionRecord) -> None:
        """
        Unregister the closed connection ``record`` (presence.connection_closed; its errors
        raised), or keep it for ``unregister_drained()`` while draining.
        """
        if self.draining:
            self.drained.append(record)
        else:
            await connection_closed(self.registry, record)

    async def unregister_drained(self) -> None:
        """Unregister the connections the drain closed (presence.connections_drained); log a failure."""
        records, self.drained = self.drained, []
        try:
            await connections_drained(self.registry, records)
        except Exception:
            logger.warning("could not unregister %d drained connections; they expire", len(records), exc_info=True)

    async def close(self) -> None:
        """Stop the maintenance tasks, leave the layer, remove this process from the registry."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._gc_freezer is not None:
            self._gc_freezer.close()
        await self.hub.close()
        try:
            await self.registry.remove_process(self.id)
        except Exception:
            logger.warning("could not remove process %s from the registry; it expires", self.id, exc_info=True)
        await self.registry.aclose()


_processes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ServerProcess]" = weakref.WeakKeyDictionary()


async def get_process() -> ServerProcess:
    """Return the started ``ServerProcess`` of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    process = _processes.get(loop)
    if process is None:
        process = _processes[loop] = ServerProcess()
    await process.start()
    return process


async def close_process() -> None:
    """Close the running event loop's ``ServerProcess`` and its layer connections, if any (tests)."""
    process = _processes.pop(asyncio.get_running_loop(), None)
    if process is not None:
        await process.close()
        close_pools = getattr(process.hub.layer, "close_pools", None)
        if close_pools is not None:
            await close_pools()
