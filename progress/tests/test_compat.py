"""
Seed 001's compatibility endpoints (``/compat/001/ws`` and its stats, progress.compat) in
process: the seed's envelope onto ``task.subscribe``/``unsubscribe`` and the task events, its
error shape for bad input (no write, no close), and its camelCase stats from the native figures.
"""

import asyncio
import time
from unittest import mock

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import Client as DjangoClient

from progress import services
from progress.compat import SEED001, ProgressBatch, Request, Seed001Codec
from progress.models import BatchTask
from progress.reporter import ProgressReporter
from realtime.envelope import Frame
from realtime.errors import CloseCode, ErrorCode

pytestmark = pytest.mark.any_database

PATH = "/compat/001/ws"


@pytest.fixture
async def task(alice):
    return await sync_to_async(services.create_task)(owner=alice, name="letters")


async def compat(connect, user):
    client = await connect(user=user, path=PATH, expect_welcome=False)
    connected = await client.receive()
    assert connected["type"] == "connected" and {"payload", "timestamp", "id"} <= set(connected)
    return client


async def request(client, message: dict) -> dict:
    await client.send(message)
    return await client.receive()


def run(task_id: int, status: str = BatchTask.Status.COMPLETED, **figures):
    reporter = ProgressReporter(task_id, min_interval_ms=0)
    reporter.start(total=2)
    reporter.progress(1, succeeded=1, stage="rendering")
    reporter.finish(status, current=2, **figures)


async def test_the_seed_flow_beside_a_native_subscriber(connect, alice, task):
    seed = await compat(connect, alice)
    native = await connect(user=alice)
    ack = await request(
        seed, {"type": "subscribe", "taskIds": [str(task.pk)], "rooms": [f"task:{task.pk}"], "id": "s1"}
    )
    assert ack["type"] == "subscription_ack"
    payload = ack["payload"]
    assert (payload["action"], payload["taskIds"], payload["rooms"], payload["requestId"]) == (
        "subscribe",
        [str(task.pk)],
        [f"task:{task.pk}"],
        "s1",
    )
    assert payload["tasks"][0]["status"] == "pending" and payload["tasks"][0]["taskId"] == str(task.pk)
    assert (await native.request("task.subscribe", {"task_ids": [task.pk]}))["type"] == "ack"

    await sync_to_async(run)(task.pk, succeeded=2)
    seen = [await seed.receive() for _ in range(3)]
    assert [m["type"] for m in seen] == ["task_started", "task_progress", "task_completed"]
    progress = seen[1]["payload"]
    assert (progress["taskId"], progress["status"], progress["progress"], progress["current"]) == (
        str(task.pk),
        "running",
        50.0,
        1,
    )
    assert {"total", "stage", "message"} <= set(progress) and progress["stage"] == "rendering"
    assert seen[-1]["payload"]["result"] == {"succeeded": 2, "failed": 0, "total": 2}
    native_types = [(await native.receive())["type"] for _ in range(3)]
    assert native_types == ["task.started", "task.progress", "task.completed"]

    left = await request(seed, {"type": "leave_room", "payload": {"room": f"task:{task.pk}"}})
    assert left["payload"]["action"] == "leave_room" and left["payload"]["taskIds"] == [str(task.pk)]
    joined = await request(seed, {"type": "join_room", "payload": {"room": f"task:{task.pk}"}, "id": 9})
    assert (joined["payload"]["action"], joined["payload"]["requestId"]) == ("join_room", 9)
    gone = await request(seed, {"type": "unsubscribe", "payload": {"taskIds": [task.pk]}})
    assert gone["type"] == "subscription_ack" and gone["payload"]["action"] == "unsubscribe"
    pong = await request(seed, {"type": "ping", "id": "p", "timestamp": 1})
    assert pong["type"] == "pong" and pong["payload"] == {"requestId": "p"}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "subscribe", "rooms": ["lobby"]}, ErrorCode.INVALID),
        ({"type": "subscribe", "rooms": "task:1"}, ErrorCode.INVALID),
        ({"type": "subscribe", "taskIds": "1"}, ErrorCode.INVALID),
        ({"type": "subscribe", "taskIds": [True]}, ErrorCode.INVALID),
        ({"type": "subscribe"}, ErrorCode.INVALID),
        ({"type": "join_room", "payload": {"room": 5}}, ErrorCode.INVALID),
        ({"type": "subscribe", "taskIds": ["999999"]}, ErrorCode.NOT_FOUND),
        ({"type": "room_broadcast", "payload": {}}, ErrorCode.UNKNOWN_TYPE),
        ({"type": "task.subscribe", "data": {"task_ids": [1]}}, ErrorCode.UNKNOWN_TYPE),
        ({"type": "subscribe", "payload": [1]}, ErrorCode.BAD_FRAME),
        ({"type": "subscribe", "id": {"x": 1}}, ErrorCode.BAD_FRAME),
        ({"type": 3}, ErrorCode.BAD_FRAME),
    ],
)
async def test_bad_input_gets_the_seed_error_shape(connect, alice, message, code):
    seed = await compat(connect, alice)
    error = await request(seed, {**message, **({"id": "r"} if "id" not in message else {})})
    assert error["type"] == "error" and error["payload"]["code"] == code, error
    assert isinstance(error["payload"]["message"], str) and {"timestamp", "id"} <= set(error)
    if code not in (ErrorCode.BAD_FRAME,):
        assert error["payload"]["requestId"] == "r"
    if code == ErrorCode.INVALID and "details" in error["payload"]:
        assert "task_ids" not in error["payload"]["details"]  # named as the seed's client names it
    assert (await request(seed, {"type": "ping"}))["type"] == "pong"  # still open


async def test_malformed_json_and_anonymous(connect, alice):
    seed = await compat(connect, alice)
    await seed.send_text("{")
    assert (await seed.receive())["payload"]["code"] == ErrorCode.BAD_JSON
    anonymous = await connect(path=PATH)
    assert (await anonymous.receive())["type"] == "connected"
    refused = await anonymous.receive()
    assert refused["type"] == "error" and refused["payload"]["code"] == ErrorCode.UNAUTHORIZED
    assert await anonymous.receive_close() == CloseCode.UNAUTHORIZED


async def test_another_users_task_is_not_found(connect, bob, task):
    seed = await compat(connect, bob)
    error = await request(seed, {"type": "subscribe", "taskIds": [task.pk]})
    assert error["payload"]["code"] == ErrorCode.NOT_FOUND


def test_every_task_event_in_the_seed_shape():
    codec = Seed001Codec()
    snapshot = {
        "task_id": 4,
        "name": "n",
        "status": "failed",
        "progress": 10.0,
        "current": 1,
        "total": 10,
        "succeeded": 1,
        "failed": 0,
        "stage": "s",
        "eta_ms": 1500,
        "message": "m",
        "error": "boom",
        "version": 3,
    }
    import orjson

    def event(native_type, data):
        return orjson.loads(codec.event(native_type, data))

    for native_type, seed_type in [
        ("task.started", "task_started"),
        ("task.paused", "task_paused"),
        ("task.resumed", "task_progress"),
        ("task.cancelled", "task_cancelled"),
    ]:
        assert event(native_type, snapshot)["type"] == seed_type
    failed = event("task.failed", snapshot)["payload"]
    assert (failed["error"], failed["estimatedTimeRemaining"], failed["taskId"]) == ("boom", 1500, "4")
    document = {"task_id": 4, "index": 2, "status": "failed", "output_name": "", "error": "bad row"}
    assert event("task.document_failed", document) | {"timestamp": 0, "id": ""} == {
        "type": "document_failed",
        "payload": {"taskId": "4", "index": 2, "status": "failed", "outputName": "", "error": "bad row"},
        "timestamp": 0,
        "id": "",
    }
    assert event("task.document_generated", document | {"error": ""})["type"] == "document_generated"
    for other in ("welcome", "chat.message", "workspace.updated", "presence", "resync"):
        assert codec.event(other, {}) is None
    assert codec.ack(Frame("task.unsubscribe", Request("leave_room", None), {}), {"task_ids": [1]}) is not None


STATS = {
    "server": {"processes": 2, "start_time": 1_700_000_000_000, "uptime_s": 12.5},
    "connections": {"total": 9, "active": 4, "authenticated": 3},
    "messages": {"total_sent": 70, "total_received": 30, "sent_per_minute": 7.5, "received_per_minute": 3.0},
    "rooms": {"total": 5, "clients": 8, "largest": []},
    "memory": {"used": 100, "total": 1000, "percentage": 10.0},
    "broadcaster": {
        "total_broadcasts": 11,
        "successful_sends": 70,
        "failed_sends": 2,
        "average_latency_ms": 1.25,
        "latency_window_s": 60,
        "latency_deliveries": 40,
    },
    "processes": [{"updated_at": 1_700_000_001_000}, {"updated_at": 1_700_000_002_000}],
}


def test_the_seed_stats_are_the_native_figures_in_camel_case(make_user, alice):
    staff = DjangoClient()
    staff.force_login(make_user("ops", is_staff=True))
    with mock.patch("progress.views.cluster_stats", return_value=STATS):
        native = staff.get("/api/broadcaster/stats").json()
        seed = staff.get("/compat/001/api/broadcaster/stats").json()
        websocket = staff.get("/compat/001/api/websocket/stats").json()
    for camel, snake in [
        ("totalBroadcasts", "total_broadcasts"),
        ("totalMessages", "total_messages"),
        ("successfulSends", "successful_sends"),
        ("failedSends", "failed_sends"),
        ("averageLatency", "average_latency_ms"),
        ("queueSize", "queue_size"),
        ("cacheSize", "cache_size"),
        ("lastUpdate", "last_update"),
    ]:
        assert seed[camel] == native[snake], camel
    assert (seed["totalBroadcasts"], seed["lastUpdate"]) == (11, 1_700_000_002_000)
    assert websocket["server"] == {"uptime": 12500, "startTime": 1_700_000_000_000, "processes": 2}
    assert websocket["connections"] == {"total": 9, "active": 4, "authenticated": 3}
    assert websocket["messages"] == {
        "totalSent": 70,
        "totalReceived": 30,
        "sentPerMinute": 7.5,
        "receivedPerMinute": 3.0,
    }
    assert (websocket["rooms"], websocket["memory"]["percentage"]) == ({"total": 5, "clients": 8}, 10.0)

    member = DjangoClient()
    member.force_login(alice)
    for path in ("/compat/001/api/broadcaster/stats", "/compat/001/api/websocket/stats"):
        assert member.get(path).status_code == 403
        assert DjangoClient().get(path).status_code in (401, 403)


# -- batching (the seed broadcaster's batchSize / broadcastInterval) ------------------------------


async def subscribed(connect, alice, task):
    seed = await compat(connect, alice)
    assert (await request(seed, {"type": "subscribe", "taskIds": [str(task.pk)]}))["type"] == "subscription_ack"
    return seed


def report(task_id: int, steps: list[int], total: int = 12, finish: bool = False) -> ProgressReporter:
    reporter = ProgressReporter(task_id, min_interval_ms=0)
    reporter.start(total=total)
    for current in steps:
        reporter.progress(current)
    if finish:
        reporter.finish(BatchTask.Status.COMPLETED, current=total, succeeded=total)
    return reporter


async def test_updates_go_out_ten_to_a_message_and_never_after_a_later_status(connect, alice, task, settings):
    settings.PROGRESS_SEED001_BATCH_INTERVAL_MS = 60_000  # only the size and the status change send them here
    seed = await subscribed(connect, alice, task)
    await sync_to_async(report)(task.pk, list(range(1, 13)), finish=True)
    started, first, rest, completed = [await seed.receive() for _ in range(4)]
    assert started["type"] == "task_started"
    assert first["type"] == rest["type"] == "task_progress"
    assert [update["current"] for update in first["payload"]] == list(range(1, 11))
    assert [update["current"] for update in rest["payload"]] == [11, 12]  # sent ahead of the completion
    assert {"taskId", "status", "progress", "total", "stage"} <= set(first["payload"][0])
    assert completed["type"] == "task_completed" and {"timestamp", "id"} <= set(first)


async def test_a_window_sends_what_it_gathered_and_one_update_alone_keeps_the_single_shape(
    connect, alice, task, settings
):
    settings.PROGRESS_SEED001_BATCH_INTERVAL_MS = 500
    seed = await subscribed(connect, alice, task)
    reporter = await sync_to_async(report)(task.pk, [1, 2])
    assert (await seed.receive())["type"] == "task_started"
    batch = await seed.receive()
    assert [update["current"] for update in batch["payload"]] == [1, 2]
    await sync_to_async(reporter.progress)(3)
    single = await seed.receive()
    assert single["type"] == "task_progress" and single["payload"]["current"] == 3


async def test_batching_off_sends_each_update_as_its_own_message(connect, alice, task, settings):
    settings.PROGRESS_SEED001_BATCH_INTERVAL_MS = 0
    seed = await subscribed(connect, alice, task)
    await sync_to_async(report)(task.pk, [1, 2])
    messages = [await seed.receive() for _ in range(3)]
    assert [m["type"] for m in messages] == ["task_started", "task_progress", "task_progress"]
    assert [m["payload"]["current"] for m in messages[1:]] == [1, 2]


class FakeWriter:
    """A server's direct frame writer (realtime.servers.FrameWriter) that keeps what it is given."""

    def __init__(self):
        self.frames = []

    def write(self, frame) -> bool:
        self.frames.append(frame)
        return True


def progress_text(current: int) -> str:
    snapshot = {
        "task_id": 7,
        "name": "letters",
        "status": "running",
        "progress": current * 10.0,
        "current": current,
        "total": 10,
        "stage": "rendering",
        "message": "",
        "succeeded": current,
        "failed": 0,
        "eta_ms": None,
    }
    return SEED001.event("task.progress", snapshot)


async def test_under_a_direct_writer_a_window_is_one_message_framed_once_for_every_connection():
    asgi_sent = []
    writers = [FakeWriter(), FakeWriter()]
    batches = [ProgressBatch(asgi_sent.append, 10, 0.01, writer) for writer in writers]
    for current in (1, 2):
        text = progress_text(current)  # the hub hands every member the same event text
        for batch in batches:
            await batch.send({"type": "websocket.send", "text": text})
    deadline = time.monotonic() + 5
    while not all(writer.frames for writer in writers) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    (first,), (second,) = (writer.frames for writer in writers)
    assert first is second and not asgi_sent
    assert [update["current"] for update in orjson.loads(first.text)["payload"]] == [1, 2]
