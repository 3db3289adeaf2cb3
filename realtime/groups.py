"""Group names owned by the core. Apps build their own in ``<app>/events.py``."""

__all__ = ["EVERYONE_GROUP", "HUBS_GROUP", "core_session_groups", "user_group"]

# Every server process's hub, whatever its connections follow (realtime.publish.publish_to_groups).
HUBS_GROUP = "realtime.hubs"

# Every authenticated connection, on every process (realtime.publish.publish_to_everyone): in the
# layer it holds each process that has one, so an event to everyone costs one layer message per
# process, and each hub writes it to its local members.
EVERYONE_GROUP = "realtime.everyone"


def user_group(user_id: int) -> str:
    """Every open connection of one user, on every process: ``realtime.user.<id>``."""
    return f"realtime.user.{user_id}"


def core_session_groups(user_id: int) -> list[str]:
    """The core's groups each authenticated connection of ``user_id`` follows: its user group, ``EVERYONE_GROUP``."""
    return [user_group(user_id), EVERYONE_GROUP]
