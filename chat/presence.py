"""
Who hears about a user's presence: the members of the user's conversations of at most
``CHAT_PRESENCE_MAX_MEMBERS`` members.

One event to all those conversations' groups together (``publish_to_groups``): one layer message
per server process, however many conversations, and each co-member's connection hears it once.
Presence in a big room is quadratic (N members coming online x N listeners): 1,000 members
connecting at once made a million deliveries and stalled the server (bench/fanout.py), so big
rooms get no presence events (large chat products do the same).
"""

from django.conf import settings

from realtime.publish import publish_to_groups

from . import selectors
from .events import conversation_group


def publish_presence(sender, *, user_id: int, online: bool, last_seen: int | None, **kwargs) -> None:
    """``presence_changed`` receiver: ``presence.changed {user_id, online, last_seen}`` to small conversations."""
    conversation_ids = selectors.small_conversation_ids(user_id, settings.CHAT_PRESENCE_MAX_MEMBERS)
    publish_to_groups(
        [conversation_group(cid) for cid in conversation_ids],
        "presence.changed",
        {"user_id": user_id, "online": online, "last_seen": last_seen},
    )
