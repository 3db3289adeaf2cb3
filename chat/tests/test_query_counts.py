"""
The database queries of chat's hot paths over /ws/, pinned: ``chat.send`` of one message, a
group commit of 20 sends that arrive together, ``chat.join`` resuming with ``after_seq``, 20 of
them arriving together, and what chat reads when a member connects. A change that adds a query per message (or per send,
per member, per conversation) fails here.

How they are counted: through the real consumer (``WebsocketCommunicator`` on the ASGI
application, the group commit, both channel layers), with the ``database_queries`` fixture
(realtime/tests/query_capture.py). The consumer runs its database work in worker threads
(``realtime.db.database_call``), whose connections ``django_assert_num_queries`` cannot see;
the fixture counts on the connection each call really uses, call by call. Calling the handlers
directly with a ``HandlerContext`` would count the same handler queries but miss what the
consumer adds around them (how sends are batched, the database calls a frame costs).

Each test pins the list of database calls the frame makes and the queries of each: the name of
the function the consumer ran in its worker thread, and the number of SQL statements. SQLite
counts one more statement per transaction than PostgreSQL: Django runs ``BEGIN`` there as a
statement (``transaction_mode`` IMMEDIATE), where psycopg opens the transaction implicitly.
"""

from asgiref.sync import sync_to_async

from chat import handlers, selectors, services
from chat.tests.batching import HeldFirstBatch, answer, group
from realtime.tests.query_capture import OPEN_SESSION, TOKEN_USER, only_app, per_vendor

SEND = f"{handlers.send.__module__}.{handlers.send.__qualname__}"
JOIN = f"{handlers.join.__module__}.{handlers.join.__qualname__}"


def send_frame(conversation, content: str, ref: str) -> dict:
    return {
        "type": "chat.send",
        "ref": ref,
        "data": {"conversation_id": conversation.pk, "content": content, "client_msg_id": f"id-{ref}"},
    }


async def test_one_send(connect, alice, bob, carol, database_queries):
    """``chat.send`` of one message (with its ``client_msg_id``) to a group of three."""
    conversation = await sync_to_async(group)("team", alice, bob, carol)
    client = await connect(user=alice)
    with database_queries.recording():
        await client.send(send_frame(conversation, "hello", "s1"))
        reply = await answer(client, "s1")
    assert reply["type"] == "ack" and reply["data"]["message"]["seq"] == 1
    # One call of the batch handler, one transaction: BEGIN (SQLite), the conversation locked
    # with the sender's membership (access and last_seq in one statement), the idempotency keys
    # already stored, INSERT, UPDATE last_seq, UPDATE the sender's last_read_seq (on PostgreSQL
    # the INSERT carries both UPDATEs).
    assert database_queries.counts() == [(SEND, per_vendor(sqlite=6, postgresql=3))], database_queries.report()


async def test_twenty_sends_that_arrive_together_are_one_call(
    connect, alice, bob, carol, database_queries, monkeypatch
):
    """
    20 connections of three users send at once to two conversations: one batch, one call of the
    batch handler, and the same queries as one send (each statement carries the 20 rows): a
    query per message, sender or conversation would show here.

    To make the 20 arrive together whatever the machine's speed, a first send is held in the
    database until the 20 are queued behind it (``GroupCommit.submit`` counts them); they then
    run as the next batch.
    """
    team, pair = await sync_to_async(lambda: (group("team", alice, bob, carol), group("pair", alice, bob)))()
    plan = [(alice, team), (bob, team), (carol, team), (alice, pair), (bob, pair)] * 4
    first = await connect(user=alice)
    senders = [await connect(user=user) for user, _ in plan]

    batch = HeldFirstBatch(monkeypatch, services, "send_many", calls=1 + len(plan))

    with database_queries.recording():
        try:
            await first.send(send_frame(team, "first", "first"))
            await batch.held()
            for n, (client, (_, conversation)) in enumerate(zip(senders, plan, strict=True)):
                await client.send(send_frame(conversation, f"message {n}", f"s{n}"))
            await batch.queued()
        finally:
            batch.release()
        replies = [await answer(client, f"s{n}") for n, client in enumerate(senders)]
        assert (await answer(first, "first"))["type"] == "ack"
    assert [reply["type"] for reply in replies] == ["ack"] * 20
    assert [reply["data"]["message"]["conversation_id"] for reply in replies] == [c.pk for _, c in plan]
    # The held send, then the 20 as one batch: the same statements as one send, with 20 rows.
    assert [len(call.args[0]) for call in database_queries.calls] == [1, 20]
    queries = per_vendor(sqlite=6, postgresql=3)
    assert database_queries.counts() == [(SEND, queries), (SEND, queries)], database_queries.report()


async def test_join_resuming_after_seq(connect, alice, bob, carol, database_queries):
    """``chat.join {after_seq}`` returning three messages of three senders: a query per message or member would show."""

    def setup():
        conversation = group("team", alice, bob, carol)
        for n, sender in enumerate([alice, bob, carol, alice, bob]):
            services.send_message(sender=sender, conversation=conversation, content=f"m{n}")
        return conversation

    conversation = await sync_to_async(setup)()
    client = await connect(user=alice)
    with database_queries.recording():
        reply = await client.request("chat.join", {"conversation_id": conversation.pk, "after_seq": 2}, ref="j")
    assert [m["seq"] for m in reply["data"]["messages"]] == [3, 4, 5]
    # One call of the batch handler, no transaction: the conversation, its members with their
    # users and read positions (where the caller is one: access), the messages after seq 2 with
    # their senders and attachments.
    assert database_queries.counts() == [(JOIN, 3)], database_queries.report()


async def test_twenty_joins_that_arrive_together_are_one_call(
    connect, alice, bob, carol, database_queries, monkeypatch
):
    """
    20 connections of three users resume two conversations at once, as after a reconnect: one
    batch, one call of the batch handler, and the same queries as one join (each statement
    carries every conversation and resume). Held like the twenty sends above.
    """

    def setup():
        team, pair = group("team", alice, bob, carol), group("pair", alice, bob)
        for n in range(3):
            services.send_message(sender=bob, conversation=team, content=f"t{n}")
            services.send_message(sender=alice, conversation=pair, content=f"p{n}")
        return team, pair

    team, pair = await sync_to_async(setup)()
    plan = [(alice, team, 0), (bob, team, 1), (carol, team, 2), (alice, pair, 0), (bob, pair, 2)] * 4
    first = await connect(user=alice)
    joiners = [await connect(user=user) for user, _, _ in plan]

    batch = HeldFirstBatch(monkeypatch, selectors, "join_replies", calls=1 + len(plan))

    with database_queries.recording():
        try:
            await first.send({"type": "chat.join", "ref": "first", "data": {"conversation_id": team.pk}})
            await batch.held()
            for n, (client, (_, conversation, after)) in enumerate(zip(joiners, plan, strict=True)):
                data = {"conversation_id": conversation.pk, "after_seq": after}
                await client.send({"type": "chat.join", "ref": f"j{n}", "data": data})
            await batch.queued()
        finally:
            batch.release()
        replies = [await answer(client, f"j{n}") for n, client in enumerate(joiners)]
        assert (await answer(first, "first"))["type"] == "ack"
    assert [[m["seq"] for m in reply["data"]["messages"]] for reply in replies] == [
        list(range(after + 1, 4)) for _, _, after in plan
    ]
    assert [len(call.args[0]) for call in database_queries.calls] == [1, 20]
    assert database_queries.counts() == [(JOIN, 2), (JOIN, 3)], database_queries.report()


async def test_connect_of_a_member_of_three_conversations(connect, alice, bob, database_queries, monkeypatch):
    """
    A member's first connection, with chat's session groups and presence receiver alone
    registered (``only_app``; the core's own queries are pinned in realtime/tests/
    test_query_counts.py): one query each, whatever the number of conversations.
    """
    only_app(monkeypatch, "chat")
    await sync_to_async(lambda: [group(f"room {n}", alice, bob) for n in range(3)])()
    with database_queries.recording():
        client = await connect(user=alice)
    assert client.welcome["data"]["user"]["id"] == alice.pk
    assert database_queries.counts() == [
        (TOKEN_USER, 1),
        # came online: her small conversations (chat.presence), told presence.changed (1);
        # her conversation ids (chat.handlers.member_conversation_groups) (1)
        (OPEN_SESSION, 2),
    ], database_queries.report()
