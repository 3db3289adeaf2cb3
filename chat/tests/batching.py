"""
Test helpers for chat's batch handlers (``chat.send``, ``chat.join``) over /ws/: conversations,
replies by ref, and a first batch held in the database until the next calls have queued.
"""

import asyncio
import threading

from chat.models import Conversation, Membership
from realtime.delivery.group_commit import GroupCommit


def group(title: str, *users) -> Conversation:
    """A group conversation of ``users``."""
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=title)
    for user in users:
        Membership.objects.create(conversation=conversation, user=user)
    return conversation


async def answer(client, ref: str, timeout: float = 30) -> dict:
    """The ack or error answering ``ref`` (other frames skipped); generous for a busy machine."""
    while True:
        frame = await client.receive(timeout)
        if frame["type"] in ("ack", "error") and frame.get("ref") == ref:
            return frame


class HeldFirstBatch:
    """
    Hold the first call of ``owner.name`` (a batch's database work, e.g. ``services.send_many``)
    in its worker thread until ``release()``, and count the calls the group commit queues
    (``GroupCommit.submit``), so the calls sent meanwhile arrive together however fast or busy
    the machine is: send the first, ``await held()``, send the rest, ``await queued()``,
    ``release()`` (in a ``finally``). ``batches`` lists each call's argument, in order.
    """

    def __init__(self, monkeypatch, owner, name: str, *, calls: int):
        self.batches: list[list] = []
        self._running, self._release = threading.Event(), threading.Event()
        self._all_queued = asyncio.Event()
        original, submit = getattr(owner, name), GroupCommit.submit
        submitted = 0

        def held(requests):
            self.batches.append(list(requests))
            if len(self.batches) == 1:
                self._running.set()
                self._release.wait(60)
            return original(requests)

        def counted_submit(commit, fn, ctx, data):
            nonlocal submitted
            call = submit(commit, fn, ctx, data)
            submitted += 1
            if submitted == calls:
                self._all_queued.set()
            return call

        monkeypatch.setattr(owner, name, held)
        monkeypatch.setattr(GroupCommit, "submit", counted_submit)

    async def held(self) -> None:
        """Wait until the first batch is in the database (60 s at most)."""
        assert await asyncio.to_thread(self._running.wait, 60)

    async def queued(self) -> None:
        """Wait until ``calls`` calls, the first included, have been submitted (60 s at most)."""
        await asyncio.wait_for(self._all_queued.wait(), 60)

    def release(self) -> None:
        """Let the first batch go on."""
        self._release.set()
