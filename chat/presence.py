"""Who hears about a user's presence: everyone who shares a conversation with them (issue 3)."""

from realtime.groups import user_group
from realtime.publish import publish

from . import selectors


def publish_presence(sender, *, user_id: int, online: bool, last_seen: int | None, **kwargs) -> None:
    """
    ``presence_changed`` receiver: send ``presence.changed {user_id, online, last_seen}`` to each
    co-member's user group (one layer message per co-member, so each hears it once).
    """
    data = {"user_id": user_id, "online": online, "last_seen": last_seen}
    for member_id in selectors.co_member_ids(user_id):
        publish(user_group(member_id), "presence.changed", data)
