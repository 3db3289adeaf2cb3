"""
Cursor paging of list replies, one policy for the socket and REST (docs/protocol.md, "Lists").

A page holds at most ``limit`` items (1 to ``MAX_LIMIT``, default ``DEFAULT_LIMIT``) that follow
``cursor`` in the list's documented order, and stops before the item that would take its encoded
items over ``page_budget_bytes()``, so that a reply always fits in one frame: Daphne cannot send
a frame over 1 MiB (docs/platform-facts.md) and the application refuses replies over
``MAX_FRAME_BYTES``. The reply carries ``next_cursor`` (null on the last page) and ``has_more``.

A cursor is opaque to clients: base64url, without padding, of the JSON array
``[<list name>, <sort key of the last item sent>...]``, every key an integer. A list refuses a
cursor it did not make (``invalid``, ``details.cursor``).
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from .conf import realtime_settings
from .errors import Invalid
from .validation import StrictCharField, StrictIntegerField

__all__ = [
    "DEFAULT_LIMIT",
    "ENVELOPE_RESERVE_BYTES",
    "MAX_CURSOR_CHARS",
    "MAX_LIMIT",
    "CursorIn",
    "Page",
    "PageIn",
    "decode_cursor",
    "encode_cursor",
    "epoch_us",
    "fitting",
    "from_epoch_us",
    "page_budget_bytes",
    "page_schema",
    "paged",
]

DEFAULT_LIMIT = 50  # items per page when the client names no limit (chat.history's default)
MAX_LIMIT = 100  # largest limit a client may ask for (chat.history's, task.subscribe's)
# A cursor holds a short name and at most three integers: anything longer was not made here.
MAX_CURSOR_CHARS = 200
# Room left in the frame for what surrounds a page's items: the envelope, a ref of up to
# MAX_REF_CHARS, the list's key, next_cursor and has_more.
ENVELOPE_RESERVE_BYTES = 1024
# Integers in cursors are database ids, seqs, positions and epoch microseconds: all signed 64-bit.
_MAX_KEY = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CursorIn(serializers.Serializer):
    """``cursor``: a reply's ``next_cursor``, unchanged (absent or null: the first page)."""

    cursor = StrictCharField(required=False, allow_null=True, max_length=MAX_CURSOR_CHARS)


class PageIn(CursorIn):
    """``limit`` and ``cursor`` of a paged list (socket ``data``; REST query parameters with ``text_input``)."""

    limit = StrictIntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)


@dataclass(frozen=True)
class Page:
    """One page of a list: its items, and the cursor of the next page (None after the last)."""

    items: list
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        """Whether another page follows (``next_cursor`` fetches it)."""
        return self.next_cursor is not None

    def reply(self, key: str) -> dict:
        """The ack data (and REST body): ``{key: items, "next_cursor", "has_more"}``."""
        return {key: self.items, "next_cursor": self.next_cursor, "has_more": self.has_more}


def encode_cursor(name: str, *key: int) -> str:
    """The opaque cursor of list ``name`` continuing after the item whose sort key is ``key``."""
    return base64.urlsafe_b64encode(orjson.dumps([name, *key])).decode().rstrip("=")


def decode_cursor(name: str, cursor: str | None, size: int) -> tuple[int, ...] | None:
    """
    The sort key (``size`` integers, each 0 .. 2**63-1) that ``cursor`` continues after, or None
    without a cursor (the first page). Raise ``Invalid`` with ``details.cursor`` when ``cursor``
    is not one that list ``name`` made.
    """
    if cursor is None:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        value = None
    if (
        isinstance(value, list)
        and len(value) == size + 1
        and value[0] == name
        and all(type(part) is int and 0 <= part <= _MAX_KEY for part in value[1:])
    ):
        return tuple(value[1:])
    raise Invalid("Invalid cursor", details={"cursor": ["Not a cursor of this list: pass next_cursor back unchanged."]})


def epoch_us(value: datetime) -> int:
    """``value`` in integer microseconds since the epoch (a timestamp in a cursor, exactly)."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_epoch_us(value: int) -> datetime:
    """The aware UTC datetime of ``epoch_us`` (raise ``Invalid`` when it is out of range)."""
    try:
        return _EPOCH + timedelta(microseconds=value)
    except OverflowError:
        raise Invalid("Invalid cursor", details={"cursor": ["Not a cursor of this list."]}) from None


def page_budget_bytes() -> int:
    """Encoded bytes a page's items may take: ``LIST_PAGE_MAX_BYTES``, and always room for the frame's envelope."""
    return min(realtime_settings.LIST_PAGE_MAX_BYTES, realtime_settings.MAX_FRAME_BYTES - ENVELOPE_RESERVE_BYTES)


def fitting(items: Sequence, *, from_end: bool = False, reserved_bytes: int = 0) -> int:
    """
    How many of ``items``, from the start (or from the end), fit in the page budget less
    ``reserved_bytes`` (what else the reply carries). At least one: an item over the budget
    alone is sent alone (and a reply over ``MAX_FRAME_BYTES`` is then refused as
    ``message_too_big`` by the consumer).
    """
    budget = page_budget_bytes() - reserved_bytes
    used = 0
    ordered = reversed(items) if from_end else items
    for count, item in enumerate(ordered):
        used += len(orjson.dumps(item)) + 1  # the comma
        if used > budget:
            return max(count, 1)
    return len(items)


def paged(name: str, rows: list, limit: int, *, key: Callable, render: Callable[[list], list]) -> Page:
    """
    The page of ``rows``: up to ``limit + 1`` rows that follow the cursor in the list's order
    (the extra one only says that more follow). ``render(rows)`` returns their items, in order;
    ``key(row)`` the sort key the cursor of list ``name`` carries. The page keeps the items that
    fit the byte budget (``fitting``).
    """
    more = len(rows) > limit
    rows = rows[:limit]
    items = render(rows)
    kept = fitting(items)
    more = more or kept < len(items)
    return Page(items[:kept], encode_cursor(name, *key(rows[kept - 1])) if more and kept else None)


def page_schema(name: str, key: str, item: serializers.Serializer) -> serializers.Serializer:
    """The OpenAPI shape of a page (``Page.reply``) of ``item``s under ``key``."""
    return inline_serializer(
        name,
        fields={
            key: item,
            "next_cursor": serializers.CharField(
                allow_null=True, help_text="the next page's cursor; null on the last page"
            ),
            "has_more": serializers.BooleanField(),
        },
    )
