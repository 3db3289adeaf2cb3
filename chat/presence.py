"""
Who hears about a user's presence: the members of the user's conversations of at most
``CHAT_PRESENCE_MAX_MEMBERS`` members.

One event per such conversation, to its group: one layer message each, however many members.
Every user-group alternative costs one message per co-member, and presence in a big room is
quadratic anyway (N members coming online x N listeners): 1,000 members connecting at once made
a million deliveries and stalled the server (bench/fanout.py), so big rooms get no presence
events (large chat products do the same). A member of several shared conversations hears the
same state once per conversation; it is idempotent.
"""

from django.conf import settings

from realtime.publish import publish

from . import selectors
from .events import conversation_group


def publish_presence(sender, *, user_id: int, online: bool, last_seen: int | None, **kwargs) -> None:
    """``presence_changed`` receiver: ``presence.changed {user_id, online, last_seen}`` to small conversations."""
    data = {"user_id": user_id, "online": online, "last_seen": last_seen}
    for conversation_id in selectors.small_conversation_ids(user_id, settings.CHAT_PRESENCE_MAX_MEMBERS):
        publish(conversation_group(conversation_id), "presence.changed", data)
