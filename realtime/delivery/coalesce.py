"""
Coalescing Redis round trips: the calls that arrive while one batch is in flight make the next
batch, sent as one round trip for the lot.

Each connect makes several small Redis calls (register its record, join the hub's groups,
announce its user online) and each disconnect their reverse. redis-py spends about 80-120 us of
event-loop CPU on one command's round trip and under 30 us per command in a pipeline of ten
(measured here with redis-py 8.1, asyncio, hiredis absent). In a reconnect storm a hundred
connects are in flight at once (``MAX_HANDSHAKES_IN_PROGRESS``), so their calls queue behind one
another anyway; sent together they cost the loop a fraction (``make bench-storm``,
``BENCH_ARGS="--levels 3000 --profile" make bench-idle``).

Nothing waits on a timer: a call that finds no batch in flight starts one at once, so a quiet
server's lone call costs what it did plus one task. Calls keep their order: batches run one at a
time, each in arrival order. This is group commit (realtime.delivery.group_commit) for Redis.
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Coalescer"]


class _LoopState:
    """One event loop's waiting calls and the task sending their batches."""

    __slots__ = ("runner", "waiting")

    def __init__(self):
        self.waiting: list[tuple[object, asyncio.Future]] = []
        self.runner: asyncio.Task | None = None


class Coalescer(Generic[T, R]):
    """
    ``await coalescer.submit(item)``: ``item`` goes out in the next batch, ``run(items)`` (async,
    one round trip), which returns one outcome per item, in order: a value, or an exception that
    ``submit`` raises for that item alone. An exception ``run`` raises (Redis unreachable) is
    raised to every call of the batch. At most ``max_batch`` items per batch.

    State is kept per event loop (redis-py's asyncio clients belong to one loop; tests run
    several loops in turn).
    """

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R | BaseException]]], *, name: str, max_batch: int):
        self.run = run
        self.name = name
        self.max_batch = max_batch
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    async def submit(self, item: T) -> R:
        """Send ``item`` with the next batch; return its outcome, raise its error."""
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        future = loop.create_future()
        state.waiting.append((item, future))
        if state.runner is None:
            state.runner = loop.create_task(self._send(state), name=f"coalesce-{self.name}")
        return await future

    async def _send(self, state: _LoopState) -> None:
        try:
            while state.waiting:
                batch, state.waiting = state.waiting[: self.max_batch], state.waiting[self.max_batch :]
                try:
                    outcomes = await self.run([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"{self.name}: {len(outcomes)} outcomes for {len(batch)} items")
                except BaseException as exc:
                    _settle(batch, [exc] * len(batch))
                    if not isinstance(exc, Exception):  # cancelled: the loop is closing
                        raise
                else:
                    _settle(batch, outcomes)
        finally:
            state.runner = None


def _settle(batch: list[tuple[object, asyncio.Future]], outcomes: list) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # its caller was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
