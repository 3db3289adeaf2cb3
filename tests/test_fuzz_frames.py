"""
Hostile input (issue 8), property-based: random and mutated frames thrown at the consumer.

Every text frame gets exactly one well-formed reply (an ``error`` with a known code, an ``ack``
or a ``pong``), the connection stays open, and a refused frame stores nothing. Frames: non-JSON,
binary, deep nesting, huge strings, wrong types for every field of every registered command,
unknown and malformed types, unicode edge cases (lone surrogates, RTL, zero-width, NUL),
negative and huge ids.
"""

import itertools
import json
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.validators import ProhibitNullCharactersValidator
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.fields import empty

from chat.models import Conversation, Message
from conftest import access_token, protocol_frame_types
from progress.models import BatchTask
from realtime import registry
from realtime.context import HandlerContext
from realtime.errors import ErrorCode
from realtime.validation import StrictCharField
from workspaces.models import Workspace
from workspaces.serializers import WorkspaceFieldsIn

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

FIELDS = [
    "conversation_id",
    "recipient_id",
    "content",
    "content_type",
    "client_msg_id",
    "after_seq",
    "before_seq",
    "limit",
    "seq",
    "title",
    "member_ids",
    "user_id",
    "role",
    "attachment_id",
    "name",
    "id",
    "version",
    "changes",
    "order",
    "task_id",
    "token",
    "description",
    "settings",
]
WEIRD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "\udfff",
        "\u202e",
        "\u200b",
        "\ufeff",
        "é" * 3,
        "🙂",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "a" * 5000,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64]),
    st.text(max_size=50),
    WEIRD_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
TYPES = st.one_of(
    st.sampled_from(protocol_frame_types() + ["ping", "auth", "auth.refresh", "ack", "welcome"]),
    st.text(max_size=30),
    WEIRD_TEXT,
)
DATA = st.one_of(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5), VALUES)
ENVELOPES = st.fixed_dictionaries(
    {"type": TYPES}, optional={"ref": st.one_of(SCALARS, st.text(max_size=70)), "data": DATA, "extra": VALUES}
)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


TEXT_FRAMES = st.one_of(
    ENVELOPES.map(lambda e: json.dumps(e, allow_nan=True)),
    VALUES.map(lambda v: json.dumps(v, allow_nan=True)),  # JSON but not an envelope
    st.text(max_size=200),  # mostly not JSON
    st.integers(min_value=100, max_value=5000).map(deep),
    st.integers(min_value=100, max_value=3000).map(lambda d: '{"type": "ping", "data": ' + deep(d) + "}"),
    ENVELOPES.map(lambda e: json.dumps(e)[:-1]),  # truncated
)
FRAMES = st.one_of(TEXT_FRAMES.map(lambda t: ("text", t)), st.binary(max_size=100).map(lambda b: ("bytes", b)))
KNOWN_CODES = {code.value for code in ErrorCode}
USER_NUMBERS = itertools.count()


def stored_rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Message, Conversation, Workspace, BatchTask))


async def throw(user, frames) -> list[tuple[dict, tuple, tuple]]:
    """Send each frame on one connection; return (reply, rows before, rows after) per frame."""
    from asgiref.sync import sync_to_async

    from config.asgi import application
    from realtime.delivery.process import close_process

    communicator = WebsocketCommunicator(application, f"/ws/?token={access_token(user)}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    while (await communicator.receive_json_from(timeout=5))["type"] != "welcome":
        pass
    results = []
    try:
        for kind, payload in frames:
            before = await sync_to_async(stored_rows)()
            # send_input, not send_to: an empty text frame is a frame too.
            await communicator.send_input({"type": "websocket.receive", kind: payload})
            output = await communicator.receive_output(timeout=5)
            assert output["type"] == "websocket.send", f"connection closed on {payload!r:.200}: {output}"
            reply = json.loads(output["text"])
            results.append((reply, before, await sync_to_async(stored_rows)()))
        assert await communicator.receive_nothing(timeout=0.05), "more than one reply to a frame"
    finally:
        await communicator.disconnect()
        await close_process()
    return results


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(FRAMES, min_size=1, max_size=8))
def test_every_frame_gets_one_well_formed_reply_and_refusals_store_nothing(frames, make_user, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # One connection per example, all from the same address: limits are tested elsewhere.
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_PER_MIN": 1_000_000,
        "RATE_BURST": 100_000,
        "TYPE_RATE_LIMITS": {},
        "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
        "CONNECTIONS_PER_IP_PER_S": 1_000_000,
    }
    user = make_user(f"fuzz{next(USER_NUMBERS)}")  # the database is not reset between examples
    for reply, before, after in async_to_sync(throw)(user, frames):
        assert reply["type"] in ("error", "ack", "pong"), reply
        if reply["type"] == "error":
            assert reply["error"]["code"] in KNOWN_CODES and isinstance(reply["error"]["message"], str)
            assert reply["error"]["code"] != ErrorCode.SERVER_ERROR, reply  # a crash, not a refusal
            assert after == before, f"a refused frame stored something: {reply}"


# -- typed data (issue 20) ------------------------------------------------------------------------
#
# For every client frame type, ``data`` built from its handler's serializer: each field absent, of
# its JSON type (inside or beyond its limits), or of another JSON type (null, booleans, integers
# beyond 64 bits, fractions, strings of digits, arrays, objects), at every depth (list items, the
# fields inside ``workspace.update``'s ``changes``). A frame with a value of another type, or
# without a required field, is refused with ``invalid`` naming that field. Every frame gets exactly
# one reply echoing its ``ref``, the socket stays open, and a refused frame changes no row.

ABSENT = object()
NO_SURROGATES = st.characters(blacklist_categories=("Cs",))  # a lone surrogate is bad_json, tested above
HUGE = [2**63, 2**64 - 1, 2**64, 2**70, -(2**63) - 1, -(2**64), 10**30]


def short_text(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(NO_SURROGATES, max_size=max_size)


JSON_KINDS = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.one_of(
        st.integers(min_value=-5, max_value=10**6), st.sampled_from([0, 1, -1, 2**31, 2**63 - 1, *HUGE])
    ),
    "float": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1.0, 0.5, -0.0, 1e300])),
    "string": st.one_of(short_text(), st.sampled_from(["", " ", "1", "0", "-1", "1.0", "true", "null", "[1]", "{}"])),
}
JUNK = st.recursive(
    st.one_of(*JSON_KINDS.values()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(short_text(8), inner, max_size=3)),
    max_leaves=6,
)
JSON_KINDS["array"] = st.lists(JUNK, max_size=3)
JSON_KINDS["object"] = st.dictionaries(short_text(8), JUNK, max_size=3)


def kind_of(value) -> str:
    if value is None:
        return "null"
    for kind, types in (
        ("boolean", bool),
        ("integer", int),
        ("float", float),
        ("string", str),
        ("array", list),
        ("object", dict),
    ):
        if isinstance(value, types):
            return kind
    raise TypeError(value)


class TokenIn(serializers.Serializer):
    """``auth`` / ``auth.refresh`` data as the consumer checks it (a non-empty string, no other rule)."""

    token = StrictCharField(trim_whitespace=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].validators = []  # the consumer passes any string on to the token check


# Dict fields whose keys a serializer validates by hand: their values are generated from that shape.
DICT_SHAPES = {"changes": WorkspaceFieldsIn}


def wrong(field, *right: str) -> st.SearchStrategy[tuple]:
    """Values of a JSON type other than ``right`` (null only when the field refuses it): always refused."""
    kinds = [kind for kind in JSON_KINDS if kind not in right and not (kind == "null" and field.allow_null)]
    return st.one_of(*(JSON_KINDS[kind] for kind in kinds)).map(lambda value: (value, True))


def integer_values(field) -> st.SearchStrategy[tuple]:
    low = -(2**63) if field.min_value is None else field.min_value
    high = 2**64 - 1 if field.max_value is None else field.max_value

    def judged(value: int) -> tuple:
        # orjson reads an integer beyond 64 bits as a float: refused like one.
        return value, not (low <= value <= high and -(2**63) <= value <= 2**64 - 1)

    return st.one_of(
        st.one_of(
            st.integers(min_value=low, max_value=min(high, low + 20)),
            st.sampled_from([low - 1, low, high, high + 1, *HUGE]),
            st.integers(min_value=-(2**70), max_value=2**70),
        ).map(judged),
        wrong(field, "integer"),
    )


def string_values(field) -> st.SearchStrategy[tuple]:
    refuses_nul = any(isinstance(v, ProhibitNullCharactersValidator) for v in field.validators)

    def judged(value: str) -> tuple:
        kept = value.strip() if field.trim_whitespace else value
        refused = (
            (kept == "" and not field.allow_blank)
            or (refuses_nul and "\x00" in kept)
            or (field.max_length is not None and len(kept) > field.max_length)
            or (field.min_length is not None and len(kept) < field.min_length)
        )
        return value, refused

    edges = ["", " ", "\x00", "a\x00b", "\u202e", "\ufeff", "🙂", "x" * ((field.max_length or 4000) + 1)]
    if field.max_length:
        edges.append("é" * field.max_length)
    return st.one_of(st.one_of(short_text(30), st.sampled_from(edges)).map(judged), wrong(field, "string"))


def choice_values(field) -> st.SearchStrategy[tuple]:
    kinds = {kind_of(choice) for choice in field.choices}

    def judged(value) -> tuple:
        return value, value not in field.choices and not (value == "" and field.allow_blank)

    return st.one_of(st.one_of(st.sampled_from(list(field.choices)), short_text(8)).map(judged), wrong(field, *kinds))


def list_values(field) -> st.SearchStrategy[tuple]:
    child = field_values(field.child)

    def judged(items: list[tuple]) -> tuple:
        values, n = [value for value, _ in items], len(items)
        refused = (
            any(refused for _, refused in items)
            or (n == 0 and not field.allow_empty)
            or (field.max_length is not None and n > field.max_length)
            or (field.min_length is not None and n < field.min_length)
        )
        return values, refused

    strategies = [st.lists(child, max_size=4).map(judged), wrong(field, "array")]
    if field.max_length is not None:  # one item too many (small items: the frame stays under MAX_FRAME_BYTES)
        strategies.append(st.just(([1] * (field.max_length + 1), True)))
    return st.one_of(*strategies)


def field_values(field) -> st.SearchStrategy[tuple]:
    """``(value, refused)`` pairs for ``field``: ``refused`` when the field must refuse the value."""
    if isinstance(field, serializers.BooleanField):
        return st.one_of(st.booleans().map(lambda value: (value, False)), wrong(field, "boolean"))
    if isinstance(field, serializers.IntegerField):
        return integer_values(field)
    if isinstance(field, serializers.ChoiceField):
        return choice_values(field)
    if isinstance(field, serializers.CharField):
        return string_values(field)
    if isinstance(field, serializers.ListField):
        return list_values(field)
    if isinstance(field, serializers.Serializer):
        return st.one_of(
            serializer_data(field.fields).map(lambda pair: (pair[0], bool(pair[1]))), wrong(field, "object")
        )
    if isinstance(field, serializers.DictField):
        shape = DICT_SHAPES.get(field.field_name)
        if shape is not None:
            # Validated as a partial ``shape``: no field required, at least one given.
            inner = serializer_data(shape().fields, partial=True).map(
                lambda pair: (pair[0], bool(pair[1]) or not pair[0])
            )
        else:
            inner = JSON_KINDS["object"].map(lambda value: (value, not value and not field.allow_empty))
        return st.one_of(inner, wrong(field, "object"))
    return JUNK.map(lambda value: (value, False))  # JSONField and the like: any JSON, judged by the handler


def serializer_data(fields, *, partial: bool = False) -> st.SearchStrategy[tuple[dict, set[str]]]:
    """``(data, refused field names)`` for a serializer's ``fields``: each absent or drawn from ``field_values``."""
    writable = {name: field for name, field in fields.items() if not field.read_only}

    def judged(drawn: dict) -> tuple[dict, set[str]]:
        data = {name: pair[0] for name, pair in drawn.items() if pair is not ABSENT}
        refused = {
            name
            for name, pair in drawn.items()
            if (pair is ABSENT and writable[name].required and not partial) or (pair is not ABSENT and pair[1])
        }
        return data, refused

    return st.fixed_dictionaries(
        {name: st.one_of(st.just(ABSENT), field_values(field)) for name, field in writable.items()}
    ).map(judged)


class _Anything(dict):
    """Validated data standing in for any: every field reads as 1, so the handler goes on to its next step."""

    def __missing__(self, key):
        return 1


_handler_serializers: dict[str, list[type[serializers.Serializer]]] = {}


def serializers_of(frame_type: str, user) -> list[type[serializers.Serializer]]:
    """
    The serializers the handler of ``frame_type`` validates ``data`` with, in order: found by
    running the handler (rolled back) with validation spied on, so a new handler or field is fuzzed
    too. The spy passes anything, so a handler that validates twice (``chat.history``) shows both.
    """
    if frame_type in ("auth", "auth.refresh"):
        return [TokenIn]
    if frame_type == "ping":
        return []
    if frame_type not in _handler_serializers:
        found = []

        def spy(self, data=empty):
            found.append(type(self))
            return _Anything()

        handler, ctx = registry.get_handler(frame_type), HandlerContext(user=user, connection_id="fuzz")
        with mock.patch.object(serializers.Serializer, "run_validation", spy):
            try:
                with transaction.atomic():
                    try:
                        handler([(ctx, {})]) if registry.is_batched(frame_type) else handler(ctx, {})
                    finally:
                        transaction.set_rollback(True)
            except Exception:
                pass  # made-up data ends most handlers early; what they validated first is known
        _handler_serializers[frame_type] = list(dict.fromkeys(found))
    return _handler_serializers[frame_type]


def typed_frames(frame_type: str, serializer_classes: list) -> st.SearchStrategy[list[tuple[dict, set[str]]]]:
    """
    One or two ``(frame, refused field names)`` of ``frame_type``, their data from the fields of
    ``serializer_classes`` (a field name belongs to the first that declares it). The refused names
    are the first serializer's that refuses some: validation stops there.
    """
    owned: dict = {}
    parts = []
    for serializer_class in serializer_classes:
        fields = {name: field for name, field in serializer_class().fields.items() if name not in owned}
        owned.update(fields)
        parts.append(serializer_data(fields))
    extra = st.dictionaries(short_text(8).filter(lambda key: key not in owned), JUNK, max_size=2 if parts else 4)

    def combined(drawn) -> tuple[dict, set[str]]:
        extra_data, drawn_parts = drawn
        data = {**extra_data}
        for part, _ in drawn_parts:
            data.update(part)
        return {"type": frame_type, "data": data}, next((refused for _, refused in drawn_parts if refused), set())

    return st.lists(st.tuples(extra, st.tuples(*parts)).map(combined), min_size=1, max_size=2)


def stored_state() -> tuple:
    """Every row of the apps' models (and the users): a refused frame must leave it as it was."""
    from django.apps import apps
    from django.contrib.auth import get_user_model

    models = [
        get_user_model(),
        *(model for label in ("chat", "workspaces", "progress") for model in apps.get_app_config(label).get_models()),
    ]
    return tuple(tuple(model.objects.order_by("pk").values_list()) for model in models)


async def exchange(user, frames: list[dict]) -> list[tuple[dict, tuple, tuple]]:
    """Send each frame on one connection; return (its reply, state before, state after) per frame."""
    from asgiref.sync import sync_to_async

    from config.asgi import application
    from realtime.delivery.process import close_process

    communicator = WebsocketCommunicator(application, f"/ws/?token={access_token(user)}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    while (await communicator.receive_json_from(timeout=5))["type"] != "welcome":
        pass

    async def next_reply(text: str) -> dict:
        while True:  # events a previous command caused (chat.message, workspace.created) are skipped
            output = await communicator.receive_output(timeout=5)
            assert output["type"] == "websocket.send", f"connection closed on {text:.300}: {output}"
            frame = json.loads(output["text"])
            if frame["type"] in ("ack", "error", "pong"):
                return frame

    results = []
    try:
        for frame in frames:
            before = await sync_to_async(stored_state)()
            text = json.dumps(frame)
            await communicator.send_to(text_data=text)
            reply = await next_reply(text)
            results.append((reply, before, await sync_to_async(stored_state)()))
        # What is left may be events only. (receive_nothing: receive_output's timeout would end the app.)
        while not await communicator.receive_nothing(timeout=0.05):
            output = await communicator.receive_output()
            assert output["type"] == "websocket.send", f"closed after the last reply: {output}"
            assert json.loads(output["text"])["type"] not in ("ack", "error", "pong"), f"a second reply: {output}"
    finally:
        await communicator.disconnect()
        await close_process()
    return results


CLIENT_TYPES = protocol_frame_types() + ["auth", "auth.refresh", "ping"]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_data_of_wrong_types_at_every_depth_is_invalid_and_stores_nothing(data, make_user, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_PER_MIN": 1_000_000,
        "RATE_BURST": 100_000,
        "TYPE_RATE_LIMITS": {},
        "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
        "CONNECTIONS_PER_IP_PER_S": 1_000_000,
    }
    user = make_user(f"typed{next(USER_NUMBERS)}")  # the database is not reset between examples
    # Every type in each example, on one connection: a connection per example costs more than its frames.
    drawn = [
        pair
        for frame_type in CLIENT_TYPES
        for pair in data.draw(typed_frames(frame_type, serializers_of(frame_type, user)), label=frame_type)
    ]
    frames = [{**frame, "ref": f"t{i}"} for i, (frame, _) in enumerate(drawn)]

    for (reply, before, after), frame, (_, refused) in zip(
        async_to_sync(exchange)(user, frames), frames, drawn, strict=True
    ):
        assert reply["ref"] == frame["ref"], reply
        assert reply["type"] in (("pong",) if frame["type"] == "ping" else ("ack", "error")), (frame, reply)
        if refused:
            assert reply["type"] == "error" and reply["error"]["code"] == ErrorCode.INVALID, (frame, reply)
            if frame["type"] != "auth":  # an authenticated connection refuses any auth frame, details aside
                assert refused <= set(reply["error"]["details"]), (frame, reply)
        if reply["type"] == "error":
            assert reply["error"]["code"] in KNOWN_CODES and reply["error"]["code"] != ErrorCode.SERVER_ERROR, (
                frame,
                reply,
            )
            assert after == before, f"a refused frame changed stored rows: {frame} -> {reply}"


def test_the_typed_fuzz_finds_the_serializers(make_user):
    from chat.serializers import CreateGroupIn, HistoryIn, SendMessageIn
    from workspaces.serializers import ReorderIn, UpdateIn

    user = make_user("finder")
    assert serializers_of("chat.send", user) == [SendMessageIn]
    assert serializers_of("chat.create_group", user) == [CreateGroupIn]
    assert serializers_of("workspace.reorder", user) == [ReorderIn]
    assert serializers_of("workspace.update", user) == [UpdateIn]
    assert HistoryIn in serializers_of("chat.history", user)
