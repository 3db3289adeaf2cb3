"""
Hostile input on the seed compatibility endpoints of workspaces and tasks (seeds 000 and 001,
docs/migration.md), property-based like
tests/test_fuzz_frames.py: every frame gets exactly one frame back in that seed's own shape (an
error with a known code, or the seed's answer), the connection stays open, and a refused frame
stores nothing.
"""

import itertools
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import access_token
from realtime.errors import ErrorCode
from tests.test_fuzz_frames import SCALARS, VALUES, WEIRD_TEXT, stored_rows

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

KNOWN_CODES = {code.value for code in ErrorCode} - {ErrorCode.SERVER_ERROR.value}
USER_NUMBERS = itertools.count()
IDS = st.one_of(st.integers(min_value=-3, max_value=5), st.sampled_from(["1", "task-1", "", 2**64, 1.5]), SCALARS)

SEED_000 = st.fixed_dictionaries(
    {
        "type": st.one_of(
            st.sampled_from(["workspace.create", "workspace.update", "workspace.delete", "workspace.reorder", "ping"]),
            st.text(max_size=20),
            WEIRD_TEXT,
            SCALARS,
        )
    },
    optional={
        "name": VALUES,
        "id": IDS,
        "version": IDS,
        "changes": st.one_of(st.dictionaries(st.sampled_from(["name", "description", "x"]), VALUES), VALUES),
        "ids": st.one_of(st.lists(IDS, max_size=3), VALUES),
        "settings": VALUES,
    },
)
ROOMS = st.one_of(st.sampled_from(["task:1", "task:0", "task:", "lobby", "task:99999999999999999999"]), SCALARS)
SEED_001_FIELDS = {
    "taskIds": st.one_of(st.lists(IDS, max_size=3), VALUES),
    "rooms": st.one_of(st.lists(ROOMS, max_size=3), VALUES),
    "room": ROOMS,
}
SEED_001 = st.fixed_dictionaries(
    {
        "type": st.one_of(
            st.sampled_from(["subscribe", "unsubscribe", "join_room", "leave_room", "ping", "room_broadcast"]),
            st.text(max_size=20),
            SCALARS,
        )
    },
    optional={
        "id": st.one_of(SCALARS, st.text(max_size=70)),
        "timestamp": SCALARS,
        "payload": st.one_of(st.fixed_dictionaries({}, optional=SEED_001_FIELDS), VALUES),
        **SEED_001_FIELDS,
    },
)


def frames_of(messages):
    return st.lists(
        st.one_of(
            messages.map(lambda m: json.dumps(m, allow_nan=True)),
            messages.map(lambda m: json.dumps(m)[:-1]),  # truncated
            st.text(max_size=50),
        ),
        min_size=1,
        max_size=6,
    )


async def throw(user, path: str, opening: int, texts: list[str]) -> list[tuple[dict, tuple, tuple]]:
    """Send each text on one connection to ``path``; return (the frame back, rows before, rows after) per text."""
    from config.asgi import application
    from realtime.delivery.process import close_process

    communicator = WebsocketCommunicator(application, f"{path}?token={access_token(user)}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    for _ in range(opening):
        await communicator.receive_output(timeout=5)
    results = []
    try:
        for text in texts:
            before = await sync_to_async(stored_rows)()
            await communicator.send_input({"type": "websocket.receive", "text": text})  # "" is a frame too
            output = await communicator.receive_output(timeout=5)
            assert output["type"] == "websocket.send", f"connection closed on {text!r:.200}: {output}"
            results.append((json.loads(output["text"]), before, await sync_to_async(stored_rows)()))
        assert await communicator.receive_nothing(timeout=0.05), "more than one frame back for a frame"
    finally:
        await communicator.disconnect()
        await close_process()
    return results


@pytest.fixture
def open_limits(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_PER_MIN": 1_000_000,
        "RATE_BURST": 100_000,
        "TYPE_RATE_LIMITS": {},
        "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
        "CONNECTIONS_PER_IP_PER_S": 1_000_000,
    }


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(texts=frames_of(SEED_000))
def test_seed_000_frames_get_one_frame_in_the_seed_shape(texts, make_user, open_limits):
    user = make_user(f"seed0-{next(USER_NUMBERS)}")
    for reply, before, after in async_to_sync(throw)(user, "/compat/000/ws", 0, texts):
        if reply["type"] == "error":
            assert set(reply) <= {"type", "message", "code", "details"} and isinstance(reply["message"], str)
            assert reply["code"] in KNOWN_CODES, reply
            assert after == before, f"a refused frame stored something: {reply}"
        else:  # the seed's answer: the broadcast of the change, or pong
            assert reply["type"] in ("pong", "workspace.created", "workspace.reordered"), reply


@FUZZ
@given(texts=frames_of(SEED_001))
def test_seed_001_messages_get_one_message_in_the_seed_shape(texts, make_user, open_limits):
    user = make_user(f"seed1-{next(USER_NUMBERS)}")
    for reply, before, after in async_to_sync(throw)(user, "/compat/001/ws", 1, texts):
        assert set(reply) == {"type", "payload", "timestamp", "id"}, reply
        assert after == before  # seed 001's socket writes nothing
        if reply["type"] == "error":
            assert reply["payload"]["code"] in KNOWN_CODES and isinstance(reply["payload"]["message"], str), reply
        else:
            assert reply["type"] in ("pong", "subscription_ack"), reply
