"""
The database queries of ``task.subscribe`` over /ws/, pinned: a change that adds a query per
subscribed task, or per subscription, fails here.

How they are counted: through the real consumer (``WebsocketCommunicator`` on the ASGI
application, both channel layers) with the ``database_queries`` fixture (realtime/tests/
query_capture.py). The consumer runs handlers in worker threads (``realtime.db.database_call``),
whose connections ``django_assert_num_queries`` cannot see; the fixture counts on the connection
each call really uses, call by call. Calling ``progress.handlers.subscribe`` directly with a
``HandlerContext`` would count the same handler queries but not the database calls the frame
costs on its way through the consumer.

No transaction, so SQLite and PostgreSQL count the same.

Every id of the frame is read in one query (``selectors.access_tasks``), however many there are.
"""

from asgiref.sync import sync_to_async

from progress import handlers, services

SUBSCRIBE = f"{handlers.subscribe.__module__}.{handlers.subscribe.__qualname__}"


def three_tasks(owner) -> list[int]:
    return [services.create_task(owner=owner, name=f"letters {n}").pk for n in range(3)]


async def test_subscribe_to_one_task(connect, alice, database_queries):
    task_ids = await sync_to_async(three_tasks)(alice)
    client = await connect(user=alice)
    with database_queries.recording():
        reply = await client.request("task.subscribe", {"task_ids": task_ids[:1]})
    assert [task["task_id"] for task in reply["data"]["tasks"]] == task_ids[:1]
    # The task (access_tasks: its owner is checked in Python).
    assert database_queries.counts() == [(SUBSCRIBE, 1)], database_queries.report()


async def test_subscribe_to_three_tasks(connect, alice, database_queries):
    task_ids = await sync_to_async(three_tasks)(alice)
    client = await connect(user=alice)
    with database_queries.recording():
        reply = await client.request("task.subscribe", {"task_ids": task_ids})
    assert [task["task_id"] for task in reply["data"]["tasks"]] == task_ids
    # The three tasks in one query, not one per id.
    assert database_queries.counts() == [(SUBSCRIBE, 1)], database_queries.report()
