"""realtime.paging: opaque cursors, and pages cut to fit a frame (docs/protocol.md, "Lists")."""

import base64
from datetime import UTC, datetime

import orjson
import pytest

from realtime.errors import Invalid
from realtime.paging import decode_cursor, encode_cursor, epoch_us, fitting, from_epoch_us, paged


def b64(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def test_a_cursor_round_trips_for_its_own_list_only():
    cursor = encode_cursor("workspaces", 3, 41)
    assert "=" not in cursor
    assert decode_cursor("workspaces", cursor, 2) == (3, 41)
    assert decode_cursor("workspaces", None, 2) is None
    with pytest.raises(Invalid) as refused:
        decode_cursor("tasks", cursor, 2)
    assert "cursor" in refused.value.details


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        b64({"workspaces": 1}),
        b64(["workspaces", 1]),
        b64(["workspaces", 1, 2, 3]),
        b64(["workspaces", True, 1]),
        b64(["workspaces", 1.0, 1]),
        b64(["workspaces", -1, 1]),
        b64(["workspaces", 2**63, 1]),
        b64(["workspaces", "1", 1]),
    ],
)
def test_a_malformed_cursor_is_invalid(cursor):
    with pytest.raises(Invalid) as refused:
        decode_cursor("workspaces", cursor, 2)
    assert list(refused.value.details) == ["cursor"]


def test_timestamps_survive_a_cursor_to_the_microsecond():
    moment = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert from_epoch_us(epoch_us(moment)) == moment
    with pytest.raises(Invalid):
        from_epoch_us(2**63 - 1)


def test_a_page_keeps_what_fits_and_at_least_one_item(settings):
    settings.REALTIME = {**settings.REALTIME, "LIST_PAGE_MAX_BYTES": 100}
    items = [{"n": "x" * 45}] * 5  # 54 bytes each with its comma
    assert fitting(items) == 1
    assert fitting(items, from_end=True) == 1
    assert fitting([{"n": "x" * 500}]) == 1  # alone over the budget: still sent (the consumer judges the frame)
    assert fitting([{"n": 1}] * 5) == 5
    settings.REALTIME = {**settings.REALTIME, "LIST_PAGE_MAX_BYTES": 10**9, "MAX_FRAME_BYTES": 1024 + 110}
    assert fitting(items) == 2  # the frame limit, less room for the envelope, bounds the page too


def test_paged_hands_out_a_cursor_exactly_when_more_follow(settings):
    rows = list(range(1, 6))
    render = lambda page: [{"id": row} for row in page]  # noqa: E731
    last = paged("numbers", rows[:3], 3, key=lambda row: (row,), render=render)
    assert (last.items, last.next_cursor, last.has_more) == ([{"id": 1}, {"id": 2}, {"id": 3}], None, False)
    first = paged("numbers", rows[:4], 3, key=lambda row: (row,), render=render)
    assert decode_cursor("numbers", first.next_cursor, 1) == (3,)
    settings.REALTIME = {**settings.REALTIME, "LIST_PAGE_MAX_BYTES": 20}
    cut = paged("numbers", rows[:3], 3, key=lambda row: (row,), render=render)
    assert len(cut.items) < 3 and decode_cursor("numbers", cut.next_cursor, 1) == (len(cut.items),)
    assert cut.reply("numbers") == {"numbers": cut.items, "next_cursor": cut.next_cursor, "has_more": True}
