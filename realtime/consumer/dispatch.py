"""
The dispatch part of ``RealtimeConsumer``: a frame that passed the gate, to its handler and back.

``ping``, ``auth`` and ``auth.refresh`` are the consumer's own; every other type runs its
registered handler (realtime.registry) in the database thread, or with other connections' calls
in one transaction for batched types (realtime.delivery.GroupCommit). The reply, ``ack`` with the
handler's result or ``error``, is sent before the events the command published.
"""

from realtime import metrics, registry
from realtime.conf import realtime_settings
from realtime.context import HandlerContext
from realtime.db import database_call
from realtime.delivery import collecting_publishes, flush_collected
from realtime.envelope import Frame
from realtime.errors import LimitExceeded, MessageTooBig, Unauthorized, UnknownType


class DispatchMixin:
    """
    Runs a frame's handler and replies, for ``RealtimeConsumer``.

    Uses the consumer's ``codec``, ``user``, ``connection_id``, ``process``, ``subscriptions``,
    ``server_groups``, ``follow``, ``unsubscribe``, ``send_frame``, ``authenticate_frame`` and
    ``refresh_token``.
    """

    async def handle_frame(self, frame: Frame) -> None:
        """Answer ``ping``, ``auth`` and ``auth.refresh`` here; run every other type's registered handler."""
        if frame.type == "ping":
            if (pong := self.codec.pong(frame)) is not None:
                await self.send_frame(pong, "pong")
            return
        if frame.type == "auth":
            await self.authenticate_frame(frame)
            return
        if self.user is None:
            raise Unauthorized("Authenticate first: send an 'auth' frame with a token")
        if frame.type == "auth.refresh":
            await self.refresh_token(frame)
            return
        handler = registry.get_handler(frame.type)
        if handler is None:
            raise UnknownType(frame.type)
        ctx = HandlerContext(user=self.user, connection_id=self.connection_id, subscriptions=self.subscriptions)
        if registry.is_batched(frame.type):
            # Committed with the calls of other connections (realtime.delivery.group_commit); the batch's
            # events go out once every caller has replied.
            call = self.process.group_commit.submit(handler, ctx, frame.data)
            try:
                await self._reply(frame, ctx, await call.outcome())
            finally:
                call.replied()
            return
        with collecting_publishes() as collected:
            try:
                await self._reply(frame, ctx, await database_call(handler, ctx, frame.data))
            finally:
                # Events of committed writes go out even if the reply failed.
                await flush_collected(collected)

    async def _reply(self, frame: Frame, ctx: HandlerContext, result) -> None:
        """Apply the handler's group changes and send its ``ack`` carrying ``result``."""
        # Most frames change no group: skip the hub's locks for them (chat.send's hot path).
        if ctx.unsubscribes:
            await self.unsubscribe(*ctx.unsubscribes)
        requested = (self.subscriptions | set(ctx.subscribes)) - self.server_groups
        if len(requested) > realtime_settings.MAX_SUBSCRIPTIONS:
            metrics.LIMIT_REFUSALS.labels("MAX_SUBSCRIPTIONS").inc()
            raise LimitExceeded(
                f"A connection may follow at most {realtime_settings.MAX_SUBSCRIPTIONS} groups; leave some first",
                details={"limit": "MAX_SUBSCRIPTIONS"},
            )
        reply = self.codec.ack(frame, result)
        if reply is None:  # the endpoint's protocol has no reply to this frame (realtime.codec)
            if ctx.subscribes:
                await self.follow(*ctx.subscribes)
            return
        limit = realtime_settings.MAX_FRAME_BYTES
        # The limit is on UTF-8 bytes (so is Daphne's 1 MiB): a str's length undercounts them.
        if len(reply) > limit or (len(reply) * 4 > limit and len(reply.encode()) > limit):
            # Daphne refuses to send it (docs/platform-facts.md): answer instead of going silent. List
            # replies are cut to fit (realtime/paging.py); only one item too big alone gets here.
            raise MessageTooBig(f"The reply would be over {limit} bytes; ask for fewer items (limit)")
        if ctx.subscribes:
            await self.follow(*ctx.subscribes)
        await self.send_frame(reply, "ack")
