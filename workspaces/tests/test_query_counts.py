"""
The database queries of ``workspace.reorder`` over /ws/ and of a member's connect, pinned: a
change that adds a query per workspace (or per reorder) fails here.

How they are counted: through the real consumer (``WebsocketCommunicator`` on the ASGI
application, both channel layers) with the ``database_queries`` fixture (realtime/tests/
query_capture.py). The consumer runs handlers in worker threads (``realtime.db.database_call``),
whose connections ``django_assert_num_queries`` cannot see; the fixture counts on the connection
each call really uses, call by call. Calling ``services.reorder_workspaces`` directly would count
the same service queries but not the database calls the frame costs on its way through the
consumer.

SQLite counts one more statement than PostgreSQL: Django runs the transaction's ``BEGIN`` there
as a statement (``transaction_mode`` IMMEDIATE), where psycopg opens it implicitly.
"""

from asgiref.sync import sync_to_async

from realtime.tests.query_capture import OPEN_SESSION, TOKEN_USER, only_app, per_vendor
from workspaces import handlers, services

REORDER = f"{handlers.reorder.__module__}.{handlers.reorder.__qualname__}"


async def test_reorder_four_workspaces(connect, alice, shared_workspace, database_queries):
    """alice reorders her four workspaces: three new ones and the one she shares with bob and carol."""
    own = await sync_to_async(lambda: [services.create_workspace(owner=alice, name=f"w{n}").pk for n in range(3)])()
    client = await connect(user=alice)
    order = [*reversed(own), shared_workspace.pk]
    with database_queries.recording():
        reply = await client.request("workspace.reorder", {"ids": order})
    assert reply["type"] == "ack" and reply["data"]["ids"] == order, reply
    # One transaction: BEGIN (SQLite), her memberships locked (SELECT ... FOR UPDATE on
    # PostgreSQL), one UPDATE of every position (bulk_update's CASE).
    assert database_queries.counts() == [(REORDER, per_vendor(sqlite=3, postgresql=2))], database_queries.report()


async def test_connect_of_a_member_of_four_workspaces(connect, alice, shared_workspace, database_queries, monkeypatch):
    """
    alice's first connection with workspaces' session groups alone registered (``only_app``; the
    core's own queries are pinned in realtime/tests/test_query_counts.py): one query for her four
    workspaces, none for presence (workspaces announce none).
    """
    only_app(monkeypatch, "workspaces")
    await sync_to_async(lambda: [services.create_workspace(owner=alice, name=f"w{n}") for n in range(3)])()
    with database_queries.recording():
        client = await connect(user=alice)
    assert client.welcome["data"]["user"]["id"] == alice.pk
    assert database_queries.counts() == [
        (TOKEN_USER, 1),
        # no receiver of presence_changed; her workspace ids (workspaces.handlers.member_workspace_groups)
        (OPEN_SESSION, 1),
    ], database_queries.report()
