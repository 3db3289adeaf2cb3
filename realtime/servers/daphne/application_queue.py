"""
A lean queue for each application instance's incoming messages under Daphne (issue 25, memory).

Daphne gives every connection's application instance an ``asyncio.Queue`` (``Server.
create_application``, daphne/server.py, Daphne 4.2.3): three ``collections.deque``s (items, getters,
putters) and an ``asyncio.Event`` with a deque of its own. An empty deque holds a 64-slot block,
760 bytes, so an idle connection's queue was about 3.2 KB of the ~30 KB it costs
(``make bench-heap``), for a queue that is never bounded, never joined and read by one task.

``ApplicationQueue`` keeps what Daphne and its applications use of ``asyncio.Queue``
(``put_nowait``, ``get``, ``get_nowait``, ``qsize``, ``empty``), with the same order and the same
hand-over between several waiting ``get``s, cancelled ones included: an item is never taken by a
``get`` that was cancelled. Its items and waiters exist only while there are some.
``lean_application_queues`` has Daphne create one per application instance, and give every scope
the same ``scope["asgi"]`` dict (Daphne made one per scope, 248 bytes; nothing here reads or
writes it).
"""

import asyncio
import collections

# Every scope's "asgi" key (ASGI's version of the interface), one dict for all.
ASGI = {"version": "3.0"}


class ApplicationQueue:
    """An unbounded FIFO of ASGI messages: ``asyncio.Queue``'s ``put_nowait``/``get`` without its idle cost."""

    __slots__ = ("_getters", "_items")

    def __init__(self):
        self._items: collections.deque | None = None  # None while empty
        self._getters: list[asyncio.Future] | None = None  # waiting gets, oldest first; None when none

    def qsize(self) -> int:
        """Number of messages waiting."""
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        """Whether no message is waiting."""
        return not self._items

    def put_nowait(self, item) -> None:
        """Add ``item`` (never blocks: unbounded) and wake the oldest waiting ``get``."""
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        self._wake_next()

    def get_nowait(self):
        """Remove and return the oldest message; raise ``asyncio.QueueEmpty`` when there is none."""
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    async def get(self):
        """Remove and return the oldest message, waiting for one (``asyncio.Queue.get``'s rules)."""
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()  # in case it is not done yet
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                    if not self._getters:
                        self._getters = None
                if self._items and not getter.cancelled():
                    # Woken by put_nowait but cannot take the message: the next in line does.
                    self._wake_next()
                raise
        return self.get_nowait()

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None


def lean_application_queues() -> None:
    """
    Patch Daphne's ``Server.create_application`` (daphne/server.py, Daphne 4.2.3), which gives each
    application instance an ``asyncio.Queue``, to give it an ``ApplicationQueue``: the same method
    otherwise, line for line. Drop it when Daphne's queue costs an idle connection little.
    """
    from functools import partial

    from daphne.server import Server

    def create_application(self, protocol, scope):
        # Make sure the protocol has not had another application made for it
        assert "application_instance" not in self.connections[protocol]
        input_queue = ApplicationQueue()
        scope.setdefault("asgi", ASGI)
        application_instance = self.application(
            scope=scope,
            receive=input_queue.get,
            send=partial(self.handle_reply, protocol),
        )
        # Run it, and stash the future for later checking
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance,
            loop=asyncio.get_event_loop(),
        )
        return input_queue

    Server.create_application = create_application
