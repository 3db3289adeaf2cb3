"""
The subscription part of ``RealtimeConsumer``: which groups the connection follows in its
process's hub (realtime.delivery.hub).

Two kinds: the groups the server chooses (the user's own group, everyone's, session groups,
membership changes) and those the client asked for (``chat.join``, ``task.subscribe``,
``room.join``), which alone count against ``MAX_SUBSCRIPTIONS``.
"""

from realtime import registry
from realtime.db import database_call
from realtime.groups import core_session_groups

# Database reads a refresh of the server's groups makes before giving up on a quiet moment.
_REFRESH_ATTEMPTS = 3


class SubscriptionsMixin:
    """
    Group subscriptions of ``RealtimeConsumer``: ``subscribe`` / ``unsubscribe`` (the server's
    choice), ``follow`` (any group, through the hub) and ``refresh_server_groups`` (after resync).

    Uses the consumer's ``hub``, ``user``, ``closing``, ``subscriptions``, ``server_groups`` and
    ``membership_changes``.
    """

    async def subscribe(self, *groups: str) -> None:
        """Subscribe this connection to ``groups`` of the server's choosing (its user's groups, a new membership)."""
        self.membership_changes += 1
        await self.follow(*groups)
        self.server_groups.update(groups)

    async def refresh_server_groups(self) -> None:
        """
        Follow exactly the groups the server chooses for this user now (after ``resync``: a
        membership change sent while Redis was away may have been lost), leaving those it no
        longer may follow. The groups the client asked to follow are left as they are.

        A membership change applied while the groups are read makes the read stale (it could
        re-add a conversation the user was just removed from): the read is then done again.
        """
        for _ in range(_REFRESH_ATTEMPTS):
            if self.user is None or self.closing:
                return
            changes = self.membership_changes
            groups = {*core_session_groups(self.user.pk), *await database_call(registry.groups_for_session, self.user)}
            if changes == self.membership_changes:
                break
        else:
            return  # memberships keep changing: each change was applied as it came
        if self.closing:
            return
        stale = self.server_groups - groups
        if stale:
            await self.unsubscribe(*stale)
        if groups - self.server_groups:
            await self.subscribe(*(groups - self.server_groups))

    async def follow(self, *groups: str) -> None:
        """Subscribe this connection to ``groups`` in the process hub (one layer batch)."""
        # Listed before the await, so a disconnect meanwhile leaves these groups too.
        self.subscriptions.update(groups)
        try:
            await self.hub.subscribe(groups, self)
        except BaseException:
            self.subscriptions.difference_update(groups)
            raise
        if self.closing:
            # The disconnect's clean-up may have run before the hub added us: leave again.
            await self.hub.unsubscribe(groups, self)

    async def unsubscribe(self, *groups: str) -> None:
        """Unsubscribe this connection from ``groups``."""
        self.membership_changes += 1
        self.subscriptions.difference_update(groups)
        self.server_groups.difference_update(groups)
        await self.hub.unsubscribe(groups, self)
