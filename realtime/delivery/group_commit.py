"""
Group commit for batch handlers (``registry.batch_handler``): the calls of one frame type that
arrive while its previous batch is in the database run together, as one handler call in one
worker thread (one transaction, one fsync, a few statements for the lot).

Nothing waits on a timer: a call that finds no batch running starts one at once, so a quiet
server answers as fast as before, and a busy one answers many calls per commit. A
``chat.send`` cost about 9 ms of server CPU when each message had its own transaction
(``make bench-chat``); the figures with batches are in the README's "Performance" section.

Order and the ack-before-events rule hold as for other handlers:
- calls run in arrival order, and a batch starts only when the previous one has committed;
- the events a batch publishes are sent once every caller has written its reply, and after the
  previous batch's events.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from realtime.context import HandlerContext
from realtime.db import database_call

from .outbox import collecting_publishes, flush_collected

# Calls per batch: bounds a transaction's length and a reply's wait behind its batch.
MAX_BATCH = 100


class Call:
    """One submitted call: ``await call.outcome()``, then ``call.replied()`` once answered."""

    def __init__(self, ctx: HandlerContext, data: dict):
        self.ctx = ctx
        self.data = data
        self.result: asyncio.Future = asyncio.get_running_loop().create_future()
        # A caller that went away (its connection closed) never reads its outcome: mark it read.
        self.result.add_done_callback(lambda future: future.cancelled() or future.exception())
        self.answered: asyncio.Future = asyncio.get_running_loop().create_future()

    async def outcome(self) -> Any:
        """The handler's ack data for this call; raise the exception it answered this call with."""
        # Not shielded: a caller cancelled while waiting cancels its own future, which the
        # batch then skips (one future per call instead of shield's two and their callbacks).
        return await self.result

    def replied(self) -> None:
        """Say that this call's reply (ack or error) is written, or will never be: its batch's events may go."""
        if not self.answered.done():
            self.answered.set_result(None)


class _Queue:
    """The waiting calls of one batch handler and the task running its batches."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.waiting: list[Call] = []
        self.runner: asyncio.Task | None = None
        self.last_flush: asyncio.Task | None = None

    def submit(self, call: Call) -> None:
        self.waiting.append(call)
        if self.runner is None:
            self.runner = asyncio.create_task(self._run(), name=f"group-commit-{self.fn.__qualname__}")

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
                with collecting_publishes() as collected:
                    try:
                        outcomes = await database_call(self.fn, [(call.ctx, call.data) for call in batch])
                        if len(outcomes) != len(batch):
                            raise RuntimeError(
                                f"{self.fn.__qualname__} returned {len(outcomes)} outcomes for {len(batch)} calls"
                            )
                    except Exception as exc:
                        outcomes = [exc] * len(batch)
                for call, outcome in zip(batch, outcomes, strict=True):
                    if call.result.done():
                        continue  # its caller was cancelled (its connection closed)
                    if isinstance(outcome, BaseException):
                        call.result.set_exception(outcome)
                    else:
                        call.result.set_result(outcome)
                self.last_flush = asyncio.create_task(self._flush(batch, collected, self.last_flush))
        finally:
            self.runner = None

    @staticmethod
    async def _flush(batch: list[Call], collected: list, previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await asyncio.wait([call.answered for call in batch])
        await flush_collected(collected)


class GroupCommit:
    """One event loop's batch queues, one per batch handler (``ServerProcess.group_commit``)."""

    def __init__(self):
        self._queues: dict[Callable, _Queue] = {}

    def submit(self, fn: Callable, ctx: HandlerContext, data: dict) -> Call:
        """
        Queue a call of the batch handler ``fn`` and return it. The caller must call
        ``call.replied()`` once it has answered (in a ``finally``): the batch's events wait for it.
        """
        queue = self._queues.get(fn)
        if queue is None:
            queue = self._queues[fn] = _Queue(fn)
        call = Call(ctx, data)
        queue.submit(call)
        return call
