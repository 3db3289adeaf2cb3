"""/health, /api/websocket/stats, /metrics and the admin's online view, with live connections."""

import logging
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client as DjangoClient

from realtime.delivery.outbox import LAYER_EVENT_TYPE, send_to_layer
from realtime.delivery.process import get_process
from realtime.envelope import event_frame
from realtime.groups import user_group
from realtime.ops.logs import RedactSecrets
from realtime.publish import publish


@pytest.fixture
def staff(make_user):
    return make_user("staffer", is_staff=True, is_superuser=True)


def http(user=None) -> DjangoClient:
    client = DjangoClient()
    if user is not None:
        client.force_login(user)
    return client


async def test_health_reports_checks_and_live_figures(connect, alice, channel_layer):
    await connect(user=alice)
    await (await get_process()).publish_stats()
    response = await sync_to_async(http().get)("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "healthy"
    # Without REDIS_URL (the in-memory layer) there is no Redis to check: one process, not a failure.
    assert body["checks"] == {
        "database": "ok",
        "redis": "ok" if channel_layer == "redis" else "not configured (single process)",
    }
    assert body["websocket"]["connections"] == 1
    assert body["uptime_s"] > 0


async def test_health_average_latency_is_publish_to_socket_per_delivery(connect, alice, bob):
    """Two prompt deliveries and one published 900 ms before it reached the layer: (0 + 0 + 900) / 3, per delivery."""
    group = user_group(alice.pk)
    alice_clients = [await connect(user=alice), await connect(user=alice)]
    bob_client = await connect(user=bob)
    await sync_to_async(publish)(group, "test.prompt", {})
    for client in alice_clients:
        await client.receive_type("test.prompt")
    late = {
        "type": LAYER_EVENT_TYPE,
        "group": user_group(bob.pk),
        "text": event_frame("test.late", {}),
        "event": "test.late",
        "ts": time.time() - 0.900,
    }
    await send_to_layer(late["group"], late)
    await bob_client.receive_type("test.late")
    await (await get_process()).publish_stats()
    broadcaster = (await sync_to_async(http().get)("/health")).json()["broadcaster"]
    assert broadcaster["latency_deliveries"] == 3
    assert broadcaster["latency_window_s"] == 60
    # A loaded machine adds milliseconds to each delivery, never takes any away. Per event (the
    # figure before issue 20) it would be (0 + 900) / 2 = 450.
    assert 300 <= broadcaster["average_latency_ms"] < 420


def test_health_is_503_when_redis_does_not_answer(db, settings):
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": "redis://127.0.0.1:1/0"}
    response = http().get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ConnectionError")


async def test_websocket_stats_are_staff_only_and_count_connections_frames_and_groups(connect, alice, bob, staff):
    alice_client = await connect(user=alice)
    await connect(user=bob)
    await alice_client.send({"type": "ping"})
    await alice_client.receive()
    await (await get_process()).publish_stats()
    as_alice, as_staff = await sync_to_async(http)(alice), await sync_to_async(http)(staff)
    assert (await sync_to_async(as_alice.get)("/api/websocket/stats")).status_code == 403
    stats = (await sync_to_async(as_staff.get)("/api/websocket/stats")).json()
    assert stats["connections"] == {"total": 2, "active": 2, "authenticated": 2}
    assert stats["messages"]["total_received"] == 1
    assert stats["messages"]["total_sent"] == 3  # two welcomes and a pong
    assert stats["rooms"]["total"] == 2  # each user's own group
    assert {room["group"] for room in stats["rooms"]["largest"]} == {
        f"realtime.user.{alice.pk}",
        f"realtime.user.{bob.pk}",
    }
    assert stats["server"]["processes"] == 1
    assert 0 < stats["memory"]["percentage"] < 100


async def test_metrics_expose_frames_connections_and_errors(connect, alice):
    client = await connect(user=alice)
    await client.send_text("not json")
    await client.receive()
    text = (await sync_to_async(http().get)("/metrics")).content.decode()
    assert 'switchboard_ws_frames_received_total{type="invalid"}' in text
    assert 'switchboard_ws_errors_total{code="bad_json"}' in text
    assert 'switchboard_ws_connections{state="authenticated"}' in text
    assert "switchboard_fanout_latency_seconds_bucket" in text


async def test_admin_user_list_shows_who_is_online_and_filters_by_it(connect, alice, bob, staff):
    await connect(user=alice)
    admin = await sync_to_async(http)(staff)
    online_only = (await sync_to_async(admin.get)("/admin/auth/user/?online=yes")).content.decode()
    assert ">alice<" in online_only and ">bob<" not in online_only
    page = (await sync_to_async(admin.get)(f"/admin/auth/user/{alice.pk}/change/")).content.decode()
    assert "Live connections" in page and (await get_process()).id in page


async def test_admin_disconnect_action_closes_the_users_connections(connect, alice, staff):
    client = await connect(user=alice)
    admin = await sync_to_async(http)(staff)
    response = await sync_to_async(admin.post)(
        "/admin/auth/user/", {"action": "disconnect", "_selected_action": [alice.pk]}, follow=True
    )
    assert "Disconnected 1 user(s)" in response.content.decode()
    assert "Disconnected by an administrator (staffer)" in (await client.receive())["error"]["message"]
    assert await client.receive_close() == 4403


def test_log_lines_never_carry_tokens():
    record = logging.LogRecord(
        "daphne",
        logging.INFO,
        __file__,
        1,
        "%s %s",
        (
            "GET /ws/?token=eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl",
            "headers=[(b'authorization', b'Bearer abc.def.ghi')]",
        ),
        None,
    )
    RedactSecrets().filter(record)
    message = record.getMessage()
    assert "eyJ" not in message and "abc.def.ghi" not in message
    assert "token=[redacted]" in message
