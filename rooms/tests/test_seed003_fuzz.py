"""
Hostile input on seed 003's Socket.IO endpoint (rooms/compat/seed003.py), property-based like
tests/test_fuzz_compat.py: random events and payloads from an authenticated socket. Each is
answered once, in the seed's shape (acknowledgement and ``exception`` event), with a known code,
never ``server_error``; the socket stays; a refused event publishes nothing to the room.
"""

import pytest
import socketio
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import access_token
from realtime.delivery import close_process
from realtime.errors import ErrorCode
from rooms.compat.seed003 import SOCKETIO_PATH, Seed003Endpoint

from .sio import SioClient

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

KNOWN_CODES = {code.value for code in ErrorCode} - {ErrorCode.SERVER_ERROR.value}
ROOM = "game:fuzz"
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["", " ", "\x00", "🙂", "a" * 300, ROOM, "connect"]),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
PAYLOADS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "roomId": st.one_of(st.sampled_from([ROOM, "game:other", "announcements", "nowhere", "a b", ""]), VALUES),
            "event": st.one_of(st.sampled_from(["vote", "connect", "exception", "", "x" * 101]), VALUES),
            "data": VALUES,
            "except": st.one_of(st.booleans(), VALUES),
        },
    ),
)
EVENTS = st.tuples(
    st.one_of(st.sampled_from(["joinRoom", "leaveRoom", "sendToRoom", "connect", "disconnect"]), st.text(max_size=10)),
    st.lists(PAYLOADS, max_size=2),
)


@pytest.fixture
def fuzz_settings(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Two sockets per example from one address: the per-address connection budget is not under test.
    settings.REALTIME = {
        **settings.REALTIME,
        "REDIS_URL": "",
        "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
        "CONNECTIONS_PER_IP_PER_S": 1_000_000,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, min_size=1, max_size=6))
def test_random_events_are_answered_in_the_seed_shape_and_refusals_publish_nothing(fuzz_settings, alice, bob, events):
    async_to_sync(run)(alice, bob, events)


async def run(alice, bob, events):
    application = socketio.ASGIApp(Seed003Endpoint().server, socketio_path=SOCKETIO_PATH)
    sender, observer = SioClient(application), SioClient(application)
    try:
        assert await sender.open({"token": access_token(alice)})
        assert await observer.open({"token": access_token(bob)})
        assert (await observer.call("joinRoom", {"roomId": ROOM}))["status"] == "ok"
        published = errors = 0
        for event, args in events:
            reply = await sender.call(event, *args)
            assert isinstance(reply, dict) and reply["status"] in ("ok", "error"), reply
            if reply["status"] == "error":
                errors += 1
                assert reply["code"] in KNOWN_CODES and isinstance(reply["message"], str), reply
                assert set(reply) <= {"status", "message", "code", "details"}, reply
            elif event == "sendToRoom" and reply["roomId"] == ROOM:
                published += 1
        exceptions = [e for e in sender.events if e[0] == "exception"]
        assert len(exceptions) == errors
        # The socket still answers, and the observer got exactly the accepted publishes.
        assert (await sender.call("leaveRoom", {"roomId": ROOM}))["status"] == "ok"
        for _ in range(published):
            await observer.next_event()
        await observer.assert_no_event(0.05)
    finally:
        await sender.close()
        await observer.close()
        await close_process()
