"""
Who may join a generic room and who may publish to it: one rule per room namespace.

``settings.ROOMS`` maps a namespace pattern (``fnmatch``, case-sensitive) to a rule, as
Centrifugo's channel namespaces do; the first pattern a room name matches, in the order written,
decides::

    ROOMS = {
        "game:*": {"join": "authenticated", "publish": "members"},
        "announcements": {"join": "authenticated", "publish": "staff"},
    }

``join`` is one of ``authenticated`` (any signed-in user), ``staff`` or ``nobody``; ``publish`` one of
``members`` (a connection that joined the room), ``authenticated``, ``staff`` or ``nobody``. Back-end
services (the HTTP publish API, ``rooms.services``) publish to any existing room whatever its rule:
the rule is for clients. A room name no pattern matches does not exist (``not_found``, the policy of
docs/protocol.md for what a user may not see).
"""

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from django.conf import settings

from realtime.errors import Forbidden, Invalid, NotFound

__all__ = [
    "JOIN_LEVELS",
    "PUBLISH_LEVELS",
    "ROOM_NAME",
    "RoomRule",
    "check_join",
    "check_publish",
    "room_group",
    "rule_for",
]

JOIN_LEVELS = ("authenticated", "staff", "nobody")
PUBLISH_LEVELS = ("members", "authenticated", "staff", "nobody")

# Letters, digits, `_`, `-` and `:` (the namespace separator), at most 80 characters. No `.`: the
# channel layer group is the name with `:` turned into `.` (Channels allows `[A-Za-z0-9_.-]`, under
# 100 characters), which stays one-to-one only while names hold no `.`.
ROOM_NAME = re.compile(r"[A-Za-z0-9_:-]{1,80}")


@dataclass(frozen=True)
class RoomRule:
    """The rule a room falls under: the ``pattern`` it matched in ``settings.ROOMS``, its ``join`` and ``publish``."""

    pattern: str
    join: str
    publish: str


def rule_for(room) -> RoomRule:
    """
    The rule for room name ``room``. Raise ``Invalid`` for a name that is not a string matching
    ``ROOM_NAME``, ``NotFound`` for one that no pattern of ``settings.ROOMS`` matches.
    """
    if not isinstance(room, str) or not ROOM_NAME.fullmatch(room):
        raise Invalid(details={"room": ["1-80 letters, digits, '_', '-' or ':'"]})
    for pattern, rule in getattr(settings, "ROOMS", {}).items():
        if fnmatchcase(room, pattern):
            return RoomRule(pattern, rule.get("join", "authenticated"), rule.get("publish", "members"))
    raise NotFound("No such room")


def _allowed(level: str, user, *, member: bool = False) -> bool:
    if level == "nobody" or not user.is_authenticated:
        return False
    if level == "staff":
        return bool(user.is_staff)
    if level == "members":
        return member
    return True  # authenticated


def check_join(user, room: str) -> RoomRule:
    """Return ``room``'s rule if ``user`` may join it; raise ``Forbidden`` (or ``rule_for``'s errors) if not."""
    rule = rule_for(room)
    if not _allowed(rule.join, user):
        raise Forbidden("You may not join this room")
    return rule


def check_publish(user, room: str, *, member: bool) -> RoomRule:
    """
    Return ``room``'s rule if ``user`` may publish to it from a client connection (``member``: that
    connection joined the room); raise ``Forbidden`` (or ``rule_for``'s errors) if not.
    """
    rule = rule_for(room)
    if not _allowed(rule.publish, user, member=member):
        raise Forbidden("You may not publish to this room")
    return rule


def room_group(room: str) -> str:
    """The group of a room's connections: ``rooms.<name with ':' as '.'>`` (``ROOM_NAME`` holds no ``.``)."""
    return "rooms." + room.replace(":", ".")
