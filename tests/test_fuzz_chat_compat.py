"""
Hostile input on the seed chat endpoints (seed 002 at /compat/002/ws, seed 004 at /ws),
property-based like tests/test_fuzz_frames.py: random and mutated seed frames. The connection
stays open, every error is in the endpoint's own shape with a known code (never
``server_error``), and a frame answered with an error stores nothing.
"""

import itertools
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import Conversation, Membership, Message
from conftest import access_token
from realtime.errors import ErrorCode

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

KNOWN_CODES = {code.value for code in ErrorCode}
USER_NUMBERS = itertools.count()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, -1, 2**63, "1", "", " ", "\x00", "🙂", "a" * 3000]),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def frames_of(types: list[str], fields: list[str], ids: st.SearchStrategy) -> st.SearchStrategy[str]:
    """Text frames: objects of the endpoint's fields (real ids among junk), other JSON, non-JSON, truncated."""
    objects = st.dictionaries(
        st.sampled_from(fields),
        st.one_of(VALUES, ids, st.sampled_from(types or ["x"]), st.text(max_size=30)),
        max_size=6,
    )
    if types:
        objects = st.tuples(st.one_of(st.sampled_from(types), VALUES), objects).map(lambda p: {"type": p[0], **p[1]})
    encoded = objects.map(json.dumps)
    return st.one_of(encoded, encoded.map(lambda t: t[:-1]), VALUES.map(json.dumps), st.text(max_size=60))


async def throw(path: str, headers, frames: list[str], opening: list[str], marker: str, is_marker):
    """
    Send each frame then ``marker`` (a command answered in order: a ping could overtake a reply
    still owed); return (frames answered before the marker's reply, rows before, rows after) per frame.
    """
    from config.asgi import application
    from realtime.delivery.process import close_process

    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    for expected in opening:
        assert (await communicator.receive_json_from(timeout=5))["type"] == expected
    results = []
    try:
        for text in frames:
            before = await sync_to_async(stored_rows)()
            await communicator.send_input({"type": "websocket.receive", "text": text})  # "" is a frame too
            await communicator.send_to(text_data=marker)
            answered = []
            while True:
                output = await communicator.receive_output(timeout=5)
                assert output["type"] == "websocket.send", f"connection closed on {text!r:.200}: {output}"
                frame = json.loads(output["text"])
                if is_marker(frame):
                    break
                answered.append(frame)
            results.append((answered, before, await sync_to_async(stored_rows)()))
    finally:
        await communicator.disconnect()
        await close_process()
    return results


def stored_rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Message, Conversation, Membership))


def check(results, reply_types: set[str]) -> None:
    for answered, before, after in results:
        errors = [frame for frame in answered if frame.get("type") == "error"]
        for frame in answered:
            assert frame.get("type") in reply_types or "conversationId" in frame, frame
        assert len(errors) <= 1, answered
        for error in errors:
            assert error["code"] in KNOWN_CODES and error["code"] != ErrorCode.SERVER_ERROR, error
            assert isinstance(error["message"], str) and set(error) <= {"type", "code", "message", "details", "ref"}
            assert after == before, f"a refused frame stored something: {error}"


@pytest.fixture
def fuzz_settings(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_PER_MIN": 1_000_000,
        "RATE_BURST": 100_000,
        "TYPE_RATE_LIMITS": {},
        "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
        "CONNECTIONS_PER_IP_PER_S": 1_000_000,
    }


def two_users(make_user):
    n = next(USER_NUMBERS)  # the database is not reset between examples
    # Ids no drawn value names by chance: the markers below tell their replies by the user's own id.
    user, other = make_user(f"fuzz{n}", id=10**6 + 2 * n), make_user(f"fuzzpeer{n}", id=10**6 + 2 * n + 1)
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="fuzz")
    Membership.objects.bulk_create([Membership(user=u, conversation=conversation) for u in (user, other)])
    return user, other, conversation


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_seed002_frames(data, make_user, fuzz_settings):
    user, other, conversation = two_users(make_user)
    ids = st.sampled_from([user.pk, other.pk, conversation.pk])
    types = ["auth", "join_session", "leave_session", "send_message", "ping", "new_message", "chat.send"]
    fields = ["session_id", "content", "user_id", "token", "client_msg_id", "ref", "data"]
    frames = data.draw(st.lists(frames_of(types, fields, ids), min_size=1, max_size=6))
    marker = json.dumps({"type": "auth", "user_id": user.pk, "ref": "§marker§"})
    results = async_to_sync(throw)(
        f"/compat/002/ws?token={access_token(user)}",
        [],
        frames,
        ["connected", "auth_success"],
        marker,
        lambda frame: frame.get("ref") == "§marker§" and frame["type"] == "auth_success",
    )
    check(results, {"error", "pong", "joined_session", "left_session", "auth_success", "new_message"})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_seed004_frames(data, make_user, fuzz_settings):
    user, other, conversation = two_users(make_user)
    ids = st.sampled_from([user.pk, other.pk, conversation.pk, 1, 2])
    fields = ["conversationId", "recvId", "sendId", "chatType", "content", "contentType", "attachmentId", "type"]
    frames = data.draw(st.lists(frames_of([], fields, ids), min_size=1, max_size=6))
    marker = json.dumps({"chatType": 2, "recvId": user.pk, "content": "marker"})  # to oneself: refused
    results = async_to_sync(throw)(
        "/ws",
        [(b"websocket", access_token(user).encode())],
        frames,
        [],
        marker,
        lambda frame: frame.get("details") == {"recvId": ["Is yourself."]},
    )
    check(results, {"error", "pong"})
