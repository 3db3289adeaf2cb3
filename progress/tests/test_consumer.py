"""task.subscribe / task.unsubscribe and the events a reporter publishes, over both layers."""

import pytest
from asgiref.sync import sync_to_async

from progress import services
from progress.models import BatchTask
from progress.reporter import ProgressReporter
from realtime.errors import ErrorCode


@pytest.fixture
async def task(alice):
    return await sync_to_async(services.create_task)(owner=alice, name="letters")


async def test_subscribe_acks_snapshots_then_events_arrive_in_order(connect, alice, task):
    client = await connect(user=alice)
    reply = await client.request("task.subscribe", {"task_ids": [task.pk, task.pk]})
    (snapshot,) = reply["data"]["tasks"]
    assert snapshot["task_id"] == task.pk and snapshot["status"] == "pending" and snapshot["progress"] == 0.0

    def run_the_task():
        reporter = ProgressReporter(task.pk, min_interval_ms=0)
        reporter.start(total=4)
        for current in range(1, 5):
            reporter.progress(current, succeeded=current, stage="rendering")
        reporter.finish(BatchTask.Status.COMPLETED, current=4, succeeded=4)

    await sync_to_async(run_the_task)()
    events = [await client.receive() for _ in range(6)]
    assert [e["type"] for e in events] == ["task.started"] + ["task.progress"] * 4 + ["task.completed"]
    assert [e["data"]["progress"] for e in events[1:5]] == [25.0, 50.0, 75.0, 100.0]
    assert events[-1]["data"]["status"] == "completed"
    versions = [e["data"]["version"] for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 6


async def test_late_subscriber_starts_from_the_truth(connect, alice, task):
    def half_done():
        reporter = ProgressReporter(task.pk, min_interval_ms=0)
        reporter.start(total=10)
        reporter.progress(5, stage="rendering")

    await sync_to_async(half_done)()
    client = await connect(user=alice)
    (snapshot,) = (await client.request("task.subscribe", {"task_ids": [task.pk]}))["data"]["tasks"]
    assert (snapshot["status"], snapshot["current"], snapshot["progress"], snapshot["stage"]) == (
        "running",
        5,
        50.0,
        "rendering",
    )


async def test_others_tasks_answer_like_unknown_ones_staff_sees_all(connect, bob, make_user, task):
    bob_client = await connect(user=bob)
    refused = await bob_client.request("task.subscribe", {"task_ids": [task.pk]})
    unknown = await bob_client.request("task.subscribe", {"task_ids": [10**9]}, ref="2")
    assert refused["error"] == unknown["error"] == {"code": ErrorCode.NOT_FOUND, "message": "Task not found"}
    assert (await bob_client.request("task.subscribe", {"task_ids": []}, ref="3"))["error"]["code"] == ErrorCode.INVALID
    staff = await sync_to_async(make_user)("ops", is_staff=True)
    staff_client = await connect(user=staff)
    assert (await staff_client.request("task.subscribe", {"task_ids": [task.pk]}))["type"] == "ack"


async def test_unsubscribed_connections_get_no_more_events(connect, alice, task):
    client = await connect(user=alice)
    await client.request("task.subscribe", {"task_ids": [task.pk]}, ref="s")
    await client.request("task.unsubscribe", {"task_ids": [task.pk]}, ref="u")
    await sync_to_async(ProgressReporter(task.pk).start)(total=3)
    await client.assert_nothing()


async def test_pause_resume_cancel_over_the_socket_reach_every_subscriber(connect, alice, task):
    await sync_to_async(ProgressReporter(task.pk).start)(total=10)
    watcher, controller = await connect(user=alice), await connect(user=alice)
    await watcher.request("task.subscribe", {"task_ids": [task.pk]})
    paused = await controller.request("task.pause", {"task_id": task.pk}, ref="p")
    assert paused["data"]["task"]["status"] == "paused"
    assert (await watcher.receive_type("task.paused"))["data"]["message"] == "Paused"
    await controller.request("task.resume", {"task_id": task.pk}, ref="r")
    assert (await watcher.receive_type("task.resumed"))["data"]["status"] == "running"
    await controller.request("task.cancel", {"task_id": task.pk}, ref="c")
    assert (await watcher.receive_type("task.cancelled"))["data"]["status"] == "cancelled"
    again = await controller.request("task.resume", {"task_id": task.pk}, ref="x")
    assert again["error"]["code"] == ErrorCode.CONFLICT
    assert again["error"]["details"]["task"]["status"] == "cancelled"


async def test_others_cannot_control_a_task(connect, bob, task):
    client = await connect(user=bob)
    assert (await client.request("task.cancel", {"task_id": task.pk}))["error"]["code"] == ErrorCode.NOT_FOUND
