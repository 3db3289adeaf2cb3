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

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import Conversation, Message
from conftest import access_token
from progress.models import BatchTask
from realtime import registry
from realtime.errors import ErrorCode
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = ["conversation_id", "recipient_id", "content", "content_type", "client_msg_id", "after_seq", "before_seq",
          "limit", "seq", "title", "member_ids", "user_id", "role", "attachment_id", "name", "id", "version",
          "changes", "order", "task_id", "token", "description", "settings"]
WEIRD_TEXT = st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "\u202e", "\u200b", "\ufeff", "é" * 3, "🙂",
                              "<script>alert(1)</script>", "' OR 1=1 --", "a" * 5000])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64]),
    st.text(max_size=50), WEIRD_TEXT,
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)
TYPES = st.one_of(st.sampled_from(registry.registered_types() + ["ping", "auth", "auth.refresh", "ack", "welcome"]),
                  st.text(max_size=30), WEIRD_TEXT)
DATA = st.one_of(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5), VALUES)
ENVELOPES = st.fixed_dictionaries({"type": TYPES}, optional={"ref": st.one_of(SCALARS, st.text(max_size=70)),
                                                             "data": DATA, "extra": VALUES})


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
    from realtime.process import close_process

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
    settings.REALTIME = {**settings.REALTIME, "RATE_PER_MIN": 1_000_000, "RATE_BURST": 100_000,
                         "TYPE_RATE_LIMITS": {}, "CONNECTIONS_PER_IP_PER_MIN": 1_000_000, "CONNECTIONS_PER_IP_PER_S": 1_000_000}
    user = make_user(f"fuzz{next(USER_NUMBERS)}")  # the database is not reset between examples
    for reply, before, after in async_to_sync(throw)(user, frames):
        assert reply["type"] in ("error", "ack", "pong"), reply
        if reply["type"] == "error":
            assert reply["error"]["code"] in KNOWN_CODES and isinstance(reply["error"]["message"], str)
            assert reply["error"]["code"] != ErrorCode.SERVER_ERROR, reply  # a crash, not a refusal
            assert after == before, f"a refused frame stored something: {reply}"
