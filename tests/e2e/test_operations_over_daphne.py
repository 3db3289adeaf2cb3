"""
Operations over real Daphne processes sharing one Redis: limits on real sockets, stats and
presence across processes, SIGKILL and SIGTERM, subscriptions older than the layer's group expiry.

Timers are shortened through REALTIME_OVERRIDES so the tests wait seconds, not minutes; the
documented defaults are the same code with larger numbers.
"""

import asyncio
import json
import os
import signal
import time
import urllib.request
import uuid

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat import services
from realtime.errors import CloseCode, Forbidden
from realtime.publish import close_user_connections
from tests.e2e.helpers import get_json, login, metric, next_of_type
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FAST_TIMERS = {"REGISTRY_TTL_S": 2, "REGISTRY_REFRESH_S": 0.5, "PRESENCE_SWEEP_S": 0.5, "STATS_PUBLISH_S": 0.5}


def server_env(tmp_path, **overrides) -> dict[str, str]:
    """Env of Daphnes that share the test database, Redis, a private key prefix and a metrics dir."""
    from django.db import connection

    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    realtime = {"KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}", **FAST_TIMERS, **overrides}
    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "REALTIME_OVERRIDES": json.dumps(realtime),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


@pytest.fixture
def pair(tmp_path, request):
    """
    Two Daphne processes with fast registry and stats timers; more ``REALTIME`` overrides from
    ``@pytest.mark.realtime(NAME=value, ...)``.
    """
    marker = request.node.get_closest_marker("realtime")
    env = server_env(tmp_path, **(marker.kwargs if marker else {}))
    servers = [Daphne(env), Daphne(env)]
    yield servers
    for server in servers:
        server.stop()


async def silent_client(server, token) -> asyncio.StreamWriter:
    """A raw TCP client that completes a WebSocket handshake to ``/ws/`` and then reads and answers nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET /ws/?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert (await reader.readline()).startswith(b"HTTP/1.1 101")
    return writer


async def connect(server, token, **kwargs):
    ws = await websockets.connect(f"{server.url}?token={token}", **kwargs)
    await next_of_type(ws, "welcome")
    return ws


async def closed_with(ws, timeout: float = 5) -> tuple[list[dict], int]:
    """Read until the server closes: ``(frames received, close code)``."""
    frames = []
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await ws.recv()))
    return frames, ws.close_code


async def test_connections_beyond_the_handshake_bound_wait_and_are_all_welcomed(tmp_path, alice):
    # A bound of 1 handshake: 30 clients connecting at once keep the process at it. They wait
    # in the listen backlog while it is paused, where they used to be refused with 1013.
    env = server_env(
        tmp_path,
        MAX_HANDSHAKES_IN_PROGRESS=1,
        MAX_CONNECTIONS_PER_USER=100,
        CONNECTIONS_PER_IP_PER_S=1000,
        CONNECTIONS_PER_IP_PER_MIN=1000,
    )
    server = Daphne(env)
    try:
        token = await asyncio.to_thread(login, server, "alice", "alice-pass")

        async def first_frame() -> tuple[websockets.ClientConnection, dict]:
            ws = await websockets.connect(f"{server.url}?token={token}", open_timeout=30)
            async with asyncio.timeout(30):
                return ws, json.loads(await ws.recv())

        opened = await asyncio.gather(*(first_frame() for _ in range(30)))
        assert [frame["type"] for _, frame in opened] == ["welcome"] * 30
        assert metric(server, "switchboard_ws_accept_pauses_total") >= 1
        assert metric(server, 'switchboard_ws_limit_refusals_total{limit="MAX_HANDSHAKES_IN_PROGRESS"}') == 0
        for ws, _ in opened:
            await ws.close()
    finally:
        server.stop()


async def test_limits_on_real_sockets(tmp_path, alice, bob, carol):
    env = server_env(
        tmp_path,
        RATE_PER_MIN=60,
        RATE_BURST=5,
        RATE_ABUSE_FRAMES=5,
        MAX_CONNECTIONS_PER_USER=2,
        CONNECTIONS_PER_IP_PER_MIN=3,
    )
    # --proxy-headers: the client IP is X-Forwarded-For's, so each check below has its own address.
    server = Daphne(env, ["--proxy-headers"])
    try:
        tokens = {u: await asyncio.to_thread(login, server, u, f"{u}-pass") for u in ("alice", "bob", "carol")}

        # Frame size: the application's 1,000,000-byte limit, under Daphne's 1 MiB cap -> 1009.
        async with await connect(
            server, tokens["alice"], additional_headers={"X-Forwarded-For": "10.0.0.1"}, max_size=None
        ) as ws:
            await ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * 1_010_000}}))
            frames, code = await closed_with(ws)
        assert [f["error"]["code"] for f in frames] == ["message_too_big"] and code == 1009

        # Rate: a burst of 5, then rate_limited frames, then 4429.
        async with await connect(server, tokens["bob"], additional_headers={"X-Forwarded-For": "10.0.0.2"}) as ws:
            for _ in range(11):
                await ws.send(json.dumps({"type": "ping"}))
            frames, code = await closed_with(ws)
        assert [f["type"] for f in frames] == ["pong"] * 5 + ["error"] * 5
        assert {f["error"]["code"] for f in frames[5:]} == {"rate_limited"} and code == CloseCode.RATE_LIMITED

        # Connections per user: the third of carol's is refused with 1013.
        headers = {"X-Forwarded-For": "10.0.0.3"}
        async with (
            await connect(server, tokens["carol"], additional_headers=headers),
            await connect(server, tokens["carol"], additional_headers={"X-Forwarded-For": "10.0.0.4"}),
        ):
            async with websockets.connect(
                f"{server.url}?token={tokens['carol']}", additional_headers={"X-Forwarded-For": "10.0.0.5"}
            ) as ws:
                frames, code = await closed_with(ws)
        assert frames[0]["error"]["details"] == {"limit": "MAX_CONNECTIONS_PER_USER"} and code == 1013

        # New connections per IP per minute: the 4th from 10.0.0.9 is refused; 10.0.0.10 is not.
        for _ in range(3):
            async with await connect(server, tokens["alice"], additional_headers={"X-Forwarded-For": "10.0.0.9"}):
                pass
        async with websockets.connect(
            f"{server.url}?token={tokens['alice']}", additional_headers={"X-Forwarded-For": "10.0.0.9"}
        ) as ws:
            frames, code = await closed_with(ws)
        assert frames[0]["error"]["details"] == {"limit": "CONNECTIONS_PER_IP_PER_MIN"} and code == 1013
        async with await connect(server, tokens["alice"], additional_headers={"X-Forwarded-For": "10.0.0.10"}):
            pass

        # The token used in every ?token= above never reached the server's output.
        await asyncio.sleep(0.2)
        assert tokens["alice"] not in server.output() and "limit conn=" in server.output()
    finally:
        server.stop()


async def test_process_subscription_and_typing_caps_on_real_sockets(tmp_path, alice, bob, carol, conversation):
    env = server_env(
        tmp_path,
        MAX_CONNECTIONS_PER_PROCESS=2,
        MAX_SUBSCRIPTIONS=0,
        TYPE_RATE_LIMITS={"chat.typing": {"per_min": 1, "burst": 1}},
    )
    server = Daphne(env)
    try:
        tokens = {u: await asyncio.to_thread(login, server, u, f"{u}-pass") for u in ("alice", "bob", "carol")}
        # alice follows her user group and the conversation from the start: they do not count.
        async with await connect(server, tokens["alice"]) as alice_ws, await connect(server, tokens["bob"]):
            join = {"type": "chat.join", "ref": "j", "data": {"conversation_id": conversation.pk}}
            await alice_ws.send(json.dumps(join))  # asks for the viewers group: one over 0
            assert (await next_of_type(alice_ws, "error"))["error"]["details"] == {"limit": "MAX_SUBSCRIPTIONS"}
            typing = {"type": "chat.typing", "data": {"conversation_id": conversation.pk}}
            await alice_ws.send(json.dumps({**typing, "ref": "t1"}))
            assert (await next_of_type(alice_ws, "ack"))["ref"] == "t1"
            await alice_ws.send(json.dumps({**typing, "ref": "t2"}))
            refused = await next_of_type(alice_ws, "error")
            assert refused["ref"] == "t2" and refused["error"]["details"]["limit"] == "chat.typing"
            # A third connection to this process is one too many.
            async with websockets.connect(f"{server.url}?token={tokens['carol']}") as ws:
                frames, code = await closed_with(ws)
            assert frames[0]["error"]["details"] == {"limit": "MAX_CONNECTIONS_PER_PROCESS"} and code == 1013
    finally:
        server.stop()


async def test_stats_metrics_and_presence_agree_across_two_processes(pair, alice, bob, conversation, make_user):
    server_a, server_b = pair
    await sync_to_async(make_user)("ops", is_staff=True)
    staff = await asyncio.to_thread(login, server_a, "ops", "ops-pass")
    bob_token = await asyncio.to_thread(login, server_a, "bob", "bob-pass")
    alice_token = await asyncio.to_thread(login, server_b, "alice", "alice-pass")
    async with await connect(server_a, bob_token) as bob_ws:
        alice_ws = await connect(server_b, alice_token)
        online = await next_of_type(bob_ws, "presence.changed")
        assert online["data"]["user_id"] == alice.pk and online["data"]["online"] is True
        await asyncio.sleep(1.2)  # two stats publications

        both = [await asyncio.to_thread(get_json, f"{s.http}/api/websocket/stats", staff) for s in pair]
        assert [status for status, _ in both] == [200, 200]
        for _, stats in both:
            assert stats["server"]["processes"] == 2
            assert stats["connections"]["active"] == 2
            assert {p["connections"] for p in stats["processes"]} == {1}
        status, health = await asyncio.to_thread(get_json, f"{server_b.http}/health")
        assert status == 200 and health["websocket"]["connections"] == 2

        metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{server_a.http}/metrics").read().decode())
        assert 'switchboard_ws_connections{state="authenticated"} 2.0' in metrics  # both processes summed

        await alice_ws.close()
        offline = await next_of_type(bob_ws, "presence.changed")
        assert offline["data"] == {"user_id": alice.pk, "online": False, "last_seen": offline["data"]["last_seen"]}


async def test_admin_disconnect_reaches_every_process(pair, alice):
    token = await asyncio.to_thread(login, pair[0], "alice", "alice-pass")
    sockets = [await connect(server, token) for server in pair]
    await sync_to_async(close_user_connections)(alice.pk, CloseCode.DISCONNECTED, Forbidden("Disconnected by ops"))
    for ws in sockets:
        frames, code = await closed_with(ws)
        assert frames[0]["error"]["message"] == "Disconnected by ops" and code == 4403


async def alice_on_b_watched_by_bob_on_a(pair) -> tuple:
    """Bob on process A, alice on process B, once bob has seen her come online: ``(bob_ws, alice_ws, alice_token)``."""
    bob_token = await asyncio.to_thread(login, pair[0], "bob", "bob-pass")
    alice_token = await asyncio.to_thread(login, pair[1], "alice", "alice-pass")
    bob_ws = await connect(pair[0], bob_token)
    alice_ws = await connect(pair[1], alice_token)
    await next_of_type(bob_ws, "presence.changed")
    return bob_ws, alice_ws, alice_token


async def test_sigkilled_process_users_go_offline_within_ttl_plus_sweep(pair, alice, bob, conversation):
    server_a, server_b = pair
    bob_ws, alice_ws, _ = await alice_on_b_watched_by_bob_on_a(pair)
    async with bob_ws:
        killed_at = time.monotonic()
        server_b.stop(signal.SIGKILL)
        offline = await next_of_type(bob_ws, "presence.changed", timeout=10)
        elapsed = time.monotonic() - killed_at
        assert offline["data"]["user_id"] == alice.pk and offline["data"]["online"] is False
        # Documented bound: REGISTRY_TTL_S (2 here) + PRESENCE_SWEEP_S (0.5 here).
        assert elapsed < 2 + 0.5 + 1, elapsed
        await alice_ws.close()


@pytest.mark.realtime(PRESENCE_DRAIN_GRACE_S=30)
async def test_sigterm_drains_with_1001_and_the_user_back_in_time_is_never_shown_offline(
    pair, alice, bob, conversation
):
    server_a, server_b = pair
    bob_ws, alice_ws, alice_token = await alice_on_b_watched_by_bob_on_a(pair)
    async with bob_ws:
        server_b.proc.send_signal(signal.SIGTERM)
        frames, code = await closed_with(alice_ws)
        assert [f["error"]["code"] for f in frames] == ["going_away"] and code == 1001
        assert await asyncio.to_thread(server_b.proc.wait, 10) == 0
        # The client reconnects to the other process and resumes.
        await sync_to_async(services.send_message)(sender=bob, conversation=conversation, content="after restart")
        async with await connect(server_a, alice_token) as again:
            await again.send(
                json.dumps(
                    {"type": "chat.join", "ref": "j", "data": {"conversation_id": conversation.pk, "after_seq": 0}}
                )
            )
            ack = await next_of_type(again, "ack")
            assert [m["content"] for m in ack["data"]["messages"]] == ["after restart"]
            # Bob's frames since: his own message, and no presence of alice going or coming back.
            seen = []
            while not seen or seen[-1]["type"] != "chat.message":
                seen.append(json.loads(await asyncio.wait_for(bob_ws.recv(), 10)))
            assert [f["type"] for f in seen if f["type"] == "presence.changed"] == []


@pytest.mark.realtime(PRESENCE_DRAIN_GRACE_S=1)
async def test_a_drained_user_who_does_not_come_back_goes_offline_after_the_grace(pair, alice, bob, conversation):
    bob_ws, alice_ws, _ = await alice_on_b_watched_by_bob_on_a(pair)
    async with bob_ws:
        started = time.monotonic()
        pair[1].proc.send_signal(signal.SIGTERM)
        await closed_with(alice_ws)
        offline = await next_of_type(bob_ws, "presence.changed", timeout=10)
        elapsed = time.monotonic() - started
        assert offline["data"]["user_id"] == alice.pk and offline["data"]["online"] is False
        # Documented bound: PRESENCE_DRAIN_GRACE_S (1 here) + PRESENCE_SWEEP_S (0.5 here).
        assert 1 <= elapsed < 1 + 0.5 + 2, elapsed


async def test_a_draining_process_stops_listening_at_once(tmp_path, alice):
    """
    SIGTERM closes the listening socket before the drain waits for its connections: a client
    reconnecting at once after 1001 (client.js) meets a refused connect (nginx tries the next
    process) instead of this process, which would accept and refuse it again, in a loop.
    """
    server = Daphne(server_env(tmp_path, DRAIN_TIMEOUT_S=10))
    try:
        token = await asyncio.to_thread(login, server, "alice", "alice-pass")
        # A client that completed its handshake and reads nothing more: the drain waits for it.
        writer = await silent_client(server, token)
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while True:
            try:
                _, probe = await asyncio.open_connection("127.0.0.1", server.port)
            except ConnectionRefusedError:
                break
            probe.close()
            assert time.monotonic() < deadline, "still accepting connections 10 s after SIGTERM"
            await asyncio.sleep(0.05)
        assert server.proc.poll() is None  # refused while the process was still draining
        writer.close()
        assert await asyncio.to_thread(server.proc.wait, 15) == 0
    finally:
        server.stop()


async def test_subscriptions_outlive_the_layer_group_expiry(tmp_path, alice, bob, conversation):
    env = {**server_env(tmp_path, HUB_REFRESH_S=0.5), "CHANNEL_GROUP_EXPIRY_S": "2"}
    servers = [Daphne(env), Daphne(env)]
    try:
        bob_token = await asyncio.to_thread(login, servers[0], "bob", "bob-pass")
        alice_token = await asyncio.to_thread(login, servers[1], "alice", "alice-pass")
        async with await connect(servers[0], bob_token) as bob_ws, await connect(servers[1], alice_token) as alice_ws:
            await asyncio.sleep(4)  # twice the layer's group_expiry
            await alice_ws.send(
                json.dumps(
                    {
                        "type": "chat.send",
                        "ref": "s",
                        "data": {"conversation_id": conversation.pk, "content": "still here"},
                    }
                )
            )
            assert (await next_of_type(bob_ws, "chat.message"))["data"]["content"] == "still here"
    finally:
        for server in servers:
            server.stop()


async def test_a_client_that_stops_answering_pings_is_dropped_and_forgotten(tmp_path, alice, bob, conversation):
    # Daphne's WebSocket pings, as in deploy/ but every second: a silent peer is dead after ~2 s.
    server = Daphne(server_env(tmp_path), ["--ping-interval", "1", "--ping-timeout", "1"])
    try:
        bob_token = await asyncio.to_thread(login, server, "bob", "bob-pass")
        alice_token = await asyncio.to_thread(login, server, "alice", "alice-pass")
        async with await connect(server, bob_token) as bob_ws:  # websockets answers pings by itself
            # Alice's client completes the handshake, then never reads or answers again.
            writer = await silent_client(server, alice_token)
            online = await next_of_type(bob_ws, "presence.changed")
            assert online["data"]["user_id"] == alice.pk and online["data"]["online"] is True
            offline = await next_of_type(bob_ws, "presence.changed", timeout=6)
            assert offline["data"]["user_id"] == alice.pk and offline["data"]["online"] is False
            await asyncio.sleep(5)  # bob, who answers pings, stays connected meanwhile
            await bob_ws.send(json.dumps({"type": "ping"}))
            assert (await next_of_type(bob_ws, "pong"))["type"] == "pong"
            writer.close()
    finally:
        server.stop()


async def test_chat_workspace_and_task_events_from_one_process_reach_clients_on_the_other(
    pair, alice, bob, conversation
):
    from progress import services as progress_services
    from progress.reporter import ProgressReporter
    from workspaces import services as workspace_services

    server_a, server_b = pair
    alice_token = await asyncio.to_thread(login, server_a, "alice", "alice-pass")
    bob_token = await asyncio.to_thread(login, server_b, "bob", "bob-pass")
    workspace = await sync_to_async(workspace_services.create_workspace)(owner=alice, name="Plan")
    await sync_to_async(workspace_services.share_workspace)(
        actor=alice, workspace_id=workspace.pk, user_id=bob.pk, role="viewer"
    )
    task = await sync_to_async(progress_services.create_task)(owner=bob, name="letters")
    async with await connect(server_a, alice_token) as alice_ws, await connect(server_b, bob_token) as bob_ws:
        await bob_ws.send(json.dumps({"type": "task.subscribe", "ref": "t", "data": {"task_ids": [task.pk]}}))
        await next_of_type(bob_ws, "ack")
        # Through process A: a chat message and a workspace rename, sent by alice's socket.
        await alice_ws.send(
            json.dumps(
                {"type": "chat.send", "ref": "c", "data": {"conversation_id": conversation.pk, "content": "via A"}}
            )
        )
        await alice_ws.send(
            json.dumps(
                {
                    "type": "workspace.update",
                    "ref": "w",
                    "data": {"id": workspace.pk, "version": 1, "changes": {"name": "Plan B"}},
                }
            )
        )
        assert (await next_of_type(bob_ws, "chat.message"))["data"]["content"] == "via A"
        assert (await next_of_type(bob_ws, "workspace.updated"))["data"]["name"] == "Plan B"
        # From a third process (this test, as a worker would): a task's progress.
        await sync_to_async(ProgressReporter(task.pk).start)(total=10)
        assert (await next_of_type(bob_ws, "task.started"))["data"]["total"] == 10
