"""Group names owned by the core. Apps build their own in ``<app>/events.py``."""


def user_group(user_id: int) -> str:
    """Every open connection of one user, on every process: ``realtime.user.<id>``."""
    return f"realtime.user.{user_id}"
