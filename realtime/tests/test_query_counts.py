"""
The database queries of a WebSocket connect, pinned: a connection authenticated by an access
token in the query string, from the handshake up to its ``welcome`` frame. Every connection
pays them, so a query the core adds per connect, or per group a user follows, fails here.

How they are counted: through the real ASGI stack (the middleware, the consumer, the connection
registry, both channel layers) with the ``database_queries`` fixture (realtime/tests/
query_capture.py). The consumer and its middleware run their database work in worker threads
(``realtime.db.database_call``), whose connections ``django_assert_num_queries`` cannot see; the
fixture counts on the connection each call really uses, call by call. Calling the functions
alone would miss the database calls the stack makes around them (the presence announcement). A
token connection makes no session lookup at all, even with a session cookie (RealtimeAuthMiddleware).

The session groups and the presence receivers are the apps'; here the test app's alone are
registered (``only_app``), one query each whatever the number of rooms, so every other query is
the core's. Chat and workspaces pin their own (chat/tests/test_query_counts.py,
workspaces/tests/test_query_counts.py).

None of these calls opens a transaction, so SQLite and PostgreSQL count the same.
"""

import pytest
from asgiref.sync import sync_to_async

from realtime.tests.query_capture import OPEN_SESSION, TOKEN_USER, only_app
from realtime.tests.testapp.models import Room, RoomMember


@pytest.fixture(autouse=True)
def test_app_alone(monkeypatch):
    only_app(monkeypatch, "realtime.tests.testapp")


def rooms(alice, bob):
    """alice: three rooms, each shared with bob."""
    for n in range(3):
        room = Room.objects.create(title=f"room {n}")
        RoomMember.objects.create(room=room, user=alice)
        RoomMember.objects.create(room=room, user=bob)


async def test_connect_with_a_token_up_to_welcome(connect, alice, bob, database_queries):
    """A user's first connection: three queries in two database calls, whatever the number of rooms."""
    await sync_to_async(rooms)(alice, bob)
    with database_queries.recording():
        client = await connect(user=alice)
    assert client.welcome["data"]["user"]["id"] == alice.pk
    assert database_queries.counts() == [
        (TOKEN_USER, 1),  # the token's user (simplejwt's get_user)
        # came online: the test app's receiver reads her rooms, tells them presence.changed (1);
        # the test app's session-group provider: her room ids (1)
        (OPEN_SESSION, 2),
    ], database_queries.report()


async def test_second_connection_of_a_user(connect, alice, bob, database_queries):
    """A user already online (another tab): the same, without the presence announcement."""
    await sync_to_async(rooms)(alice, bob)
    await connect(user=alice)
    with database_queries.recording():
        client = await connect(user=alice)
    assert client.welcome["data"]["user"]["id"] == alice.pk
    assert database_queries.counts() == [(TOKEN_USER, 1), (OPEN_SESSION, 1)], database_queries.report()
