"""Group names owned by the core. Apps build their own in ``<app>/events.py``."""

__all__ = ["HUBS_GROUP", "user_group"]

# Every server process's hub, whatever its connections follow (realtime.publish.publish_to_groups).
HUBS_GROUP = "realtime.hubs"


def user_group(user_id: int) -> str:
    """Every open connection of one user, on every process: ``realtime.user.<id>``."""
    return f"realtime.user.{user_id}"
