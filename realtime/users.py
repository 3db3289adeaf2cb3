"""
How events name a user: one display-name rule for every app, and the fields it reads (so a query
that loads many users for events can load only those, in the same query).
"""

from collections.abc import Sequence

__all__ = ["USER_DISPLAY_FIELDS", "display_name", "member_entry", "member_entry_from_values", "user_fields", "user_ref"]

# The user fields ``display_name``, ``user_ref`` and ``member_entry`` read (django.contrib.auth's
# user model). A query that builds events for many users selects them with
# ``only(*user_fields("sender__"))``.
USER_DISPLAY_FIELDS = ("username", "first_name", "last_name", "is_staff")


def user_fields(prefix: str = "") -> list[str]:
    """``USER_DISPLAY_FIELDS`` behind ``prefix`` (``"sender__"``), for ``only()`` across a relation."""
    return [f"{prefix}{name}" for name in USER_DISPLAY_FIELDS]


def display_name(user) -> str:
    """What clients show for ``user``: their full name, else their username (issue 20)."""
    return user.get_full_name().strip() or user.get_username()


def user_ref(user) -> dict:
    """A user as events name them: ``{"id", "name" (display_name), "is_staff"}``."""
    return {"id": user.pk, "name": display_name(user), "is_staff": bool(user.is_staff)}


def member_entry(user, role: str) -> dict:
    """
    A member as every domain lists them (a conversation's, a workspace's ``members``):
    ``{"user_id", "username", "name" (display_name), "is_staff", "role"}``, ``role`` the domain's.
    Load the user with ``user_fields``.
    """
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "name": display_name(user),
        "is_staff": bool(user.is_staff),
        "role": role,
    }


def member_entry_from_values(user_id: int, role: str, display_values: Sequence) -> dict:
    """
    ``member_entry`` of a user read as values, ``display_values`` being its ``USER_DISPLAY_FIELDS``
    in that order (``values_list(..., *user_fields("user__"))``): no user instance per member, which
    builds a long members list about 4x faster (chat.join, the read a reconnect storm repeats most).
    Its ``name`` is ``display_name``'s for django.contrib.auth's user model, whose full name is its
    first and last names.
    """
    username, first_name, last_name, is_staff = display_values
    return {
        "user_id": user_id,
        "username": username,
        "name": f"{first_name} {last_name}".strip() or username,
        "is_staff": bool(is_staff),
        "role": role,
    }
