"""
The database queries of a WebSocket connect, pinned: a connection authenticated by an access
token in the query string, from the handshake up to its ``welcome`` frame. Every connection
pays them, so a query added per membership (conversation, workspace) or per connect fails here.

How they are counted: through the real ASGI stack (the middleware, the consumer, the connection
registry, both channel layers) with the ``database_queries`` fixture (realtime/tests/
query_capture.py). The consumer and its middleware run their database work in worker threads
(``realtime.db.database_call``), whose connections ``django_assert_num_queries`` cannot see; the
fixture counts on the connection each call really uses, call by call. Calling the functions
alone would miss the database calls the stack makes around them (the presence announcement). A
token connection with no session cookie makes no session lookup at all (SessionAuthMiddleware).

None of these calls opens a transaction, so SQLite and PostgreSQL count the same.
"""

from asgiref.sync import sync_to_async

from chat.models import Conversation, Membership
from workspaces import services as workspace_services

TOKEN_USER = "realtime.consumer.auth._authenticate_token_sync"
PRESENCE = "django.dispatch.dispatcher.Signal.send"  # realtime.delivery.presence.announce: presence_changed
SESSION_GROUPS = "realtime.registry.groups_for_session"


def memberships(alice, bob):
    """alice: three conversations and two workspaces (one hers, one shared with her)."""
    for n in range(3):
        conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=f"room {n}")
        Membership.objects.create(conversation=conversation, user=alice)
        Membership.objects.create(conversation=conversation, user=bob)
    workspace_services.create_workspace(owner=alice, name="hers")
    shared = workspace_services.create_workspace(owner=bob, name="his")
    workspace_services.share_workspace(actor=bob, workspace_id=shared.pk, user_id=alice.pk, role="editor")


async def test_connect_with_a_token_up_to_welcome(connect, alice, bob, database_queries):
    """
    A user's first connection: four queries in four database calls, whatever the number of
    conversations and workspaces (alice has three and two).
    """
    await sync_to_async(memberships)(alice, bob)
    with database_queries.recording():
        client = await connect(user=alice)
    assert client.welcome["data"]["user"]["id"] == alice.pk
    assert database_queries.counts() == [
        (TOKEN_USER, 1),  # the token's user (simplejwt's get_user)
        (PRESENCE, 1),  # came online: her small conversations (chat.presence), told presence.changed
        (SESSION_GROUPS, 2),  # her conversation ids, her workspace ids
    ], database_queries.report()


async def test_second_connection_of_a_user(connect, alice, bob, database_queries):
    """A user already online (another tab): the same, without the presence announcement."""
    await sync_to_async(memberships)(alice, bob)
    await connect(user=alice)
    with database_queries.recording():
        client = await connect(user=alice)
    assert client.welcome["data"]["user"]["id"] == alice.pk
    assert database_queries.counts() == [(TOKEN_USER, 1), (SESSION_GROUPS, 2)], database_queries.report()
