"""What a handler knows about the connection that sent the frame."""

from collections.abc import Set
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser

__all__ = ["HandlerContext"]


@dataclass
class HandlerContext:
    """
    The authenticated ``user`` and ``connection_id`` of the calling connection, and the groups it
    follows (``subscriptions``: the consumer's own set, not a copy, so read it, never change it;
    ``room_group(room) in ctx.subscriptions`` says whether this connection joined a room).

    ``subscribe()`` / ``unsubscribe()`` queue group changes; the consumer applies them after the
    handler returns and before it sends the ``ack``, so an acked join is already subscribed.
    """

    user: AbstractBaseUser
    connection_id: str
    subscriptions: Set[str] = frozenset()
    subscribes: list[str] = field(default_factory=list)
    unsubscribes: list[str] = field(default_factory=list)

    def subscribe(self, group: str) -> None:
        """Queue subscribing this connection to ``group``."""
        self.subscribes.append(group)

    def unsubscribe(self, group: str) -> None:
        """Queue unsubscribing this connection from ``group``."""
        self.unsubscribes.append(group)
