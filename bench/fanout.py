"""
Fan-out benchmark: N connections in one conversation, one member sending at RATE messages/s.

Starts Switchboard under Daphne (pinned to CPU 0) on a throwaway SQLite database and the Redis of
``REDIS_URL`` (``make bench`` starts a throwaway one), opens N authenticated subscriber connections
and one sender from this process (pinned to CPU 1; picows + uvloop so the generator is not the
limit), sends COUNT ``chat.send`` commands on a fixed schedule (open loop) and measures, per
message, the time from the send to its ``chat.message`` arriving at each subscriber.

The path measured is the product's whole write path: consumer, validation, the SQLite transaction
that assigns ``seq``, publish after commit, one channel-layer hop, one encode, local fan-out.

Figures (one JSON object on stdout, a summary on stderr), following ../shared/wsbench/README.md:
- ``p50_ms`` / ``p99_ms``: per-delivery latency;
- ``last_p50_ms`` / ``last_p99_ms``: per message, until the LAST subscriber has it;
- ``lost_deliveries``, ``dup_deliveries``: expected N x COUNT deliveries;
- ``server_cpu_pct``, ``rss_per_conn_kb`` (server RSS growth while the N connections opened);
- ``server_cpu_us_per_delivery``: the server's CPU time from the first send until the last
  delivery, over the deliveries made: the figure that varies least between runs (a loaded
  machine stretches the latencies, much less the CPU each delivery takes).

``--server uvicorn`` serves the same application with uvicorn instead of Daphne. ``--topic task``
measures a batch task's progress instead: N staff connections subscribed to one task
(``task.subscribe``), this process reporting ``task.progress`` through ``ProgressReporter`` (the
worker's API) at RATE reports/s with coalescing off, each report timed to its arrival.
``--topic room``: N connections in the generic room ``game:bench`` (``room.join``), the sender
publishing ``room.publish`` (``except_self``) at RATE messages/s. ``--topic workspace``: N viewers
of one workspace, its owner sending ``workspace.update`` (each event carries the workspace with
its N + 1 members: about 90 bytes each, so use a low RATE).

``--endpoint`` connects the N subscribers through a seed's compatibility endpoint instead of
``/ws/`` (docs/migration.md), the sender staying a native client: chat through seed 002
(``auth``, ``join_session``, ``new_message``) or seed 004 (``/ws``, flat frames, no join), task
progress through seed 001 (``subscribe`` with ``taskIds``; ``task_progress``, batched by the
endpoint's default ``PROGRESS_SEED001_BATCH_*``: each update of a batch counts as a delivery),
the workspace through seed 000 (flat ``workspace.updated``), the room through seed 003's
Socket.IO (Engine.IO 4 over a WebSocket, as socket.io-client with ``transports: ["websocket"]``,
spoken by the same picows client so the generator's cost per frame stays the native one) or,
``003-polling``, as socket.io-client connects by default: long-polling first (handshake, CONNECT,
``joinRoom``), then the upgrade to WebSocket, over which every delivery measured arrives. Each
message's ref leads its text (``content``, the room message's ``data``, the workspace's
``name``) on every endpoint, so the bytes sent are alike. ``bench/adapters.py`` compares them.

Usage: ``make bench`` or ``BENCH_ARGS="--n 1000 --count 200 --rate 20" make bench``. Loopback only,
bounded in connections and time.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop
from picows import WSListener, WSMsgType, ws_connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.servers import Daphne, Uvicorn  # noqa: E402

SERVERS = {"daphne": Daphne, "uvicorn": Uvicorn}
now = time.perf_counter
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_CONNECTIONS = 5000
BODY = "x" * 64
ROOM = "game:bench"  # a room of the default ROOMS rule "game:*": any user joins, members publish
# The endpoints each topic is served by (docs/migration.md): "native" is /ws/, the others a seed's.
ENDPOINTS = {
    "chat": ("native", "002", "004"),
    "task": ("native", "001"),
    "room": ("native", "003", "003-polling"),
    "workspace": ("native", "000"),
}


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """VmRSS of process ``pid`` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def delivery_counts(latencies: list[float], received: list[int], per_message: int) -> dict:
    """
    m1/m2's delivery fields: ``latencies`` (sorted, seconds) of every delivery, ``received`` the
    deliveries counted per message, each owed ``per_message``; lost and duplicated are per delivery.
    """
    return {
        "deliveries": len(latencies),
        "lost_deliveries": sum(max(0, per_message - r) for r in received),
        "dup_deliveries": sum(max(0, r - per_message) for r in received),
        "p50_ms": ms(percentile(latencies, 0.5)),
        "p99_ms": ms(percentile(latencies, 0.99)),
    }


def production_env(redis_url: str, database_url: str) -> dict[str, str]:
    """A benchmarked server's environment: production settings (DEBUG off: no query log kept per
    database connection, JSON logs at WARNING), with the default limits."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": os.urandom(32).hex(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def server_env(redis_url: str, database_url: str) -> dict[str, str]:
    """``production_env`` with the per-client limits lifted."""
    return {
        **production_env(redis_url, database_url),
        # The load generator is one address, its senders far over a person's rate and its
        # connections past one process's cap: limits are not under test here.
        "REALTIME_OVERRIDES": json.dumps(
            {
                "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
                "CONNECTIONS_PER_IP_PER_S": 1_000_000,
                "RATE_PER_MIN": 1_000_000,
                "RATE_BURST": 10_000,
                "MAX_CONNECTIONS_PER_PROCESS": 20_000,
            }
        ),
    }


def prepare_database(env: dict[str, str], members: int, topic: str = "chat") -> tuple[int, list[str]]:
    """
    Migrate a fresh database, create ``members`` users in one group conversation (``topic``
    "chat") or, staff, beside one batch task of the first ("task"), in one workspace of the first
    ("workspace"), or just the users ("room"); return the conversation's, the task's or the
    workspace's id (the room's name) and their access tokens.
    """
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env={**os.environ, **env}, check=True
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from chat.models import Conversation, Membership

    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bench{i}", password="!", is_staff=topic == "task") for i in range(members)]
    )
    tokens = [str(AccessToken.for_user(user)) for user in users]
    if topic == "task":
        from progress import services

        return services.create_task(owner=users[0], name="fan-out bench").pk, tokens
    if topic == "room":
        return ROOM, tokens
    if topic == "workspace":
        from workspaces.models import Workspace, WorkspaceMember

        workspace = Workspace.objects.create(owner=users[0], name="fan-out bench")
        WorkspaceMember.objects.bulk_create(
            [WorkspaceMember(workspace=workspace, user=users[0], role=WorkspaceMember.Role.OWNER)]
            + [WorkspaceMember(workspace=workspace, user=user, role=WorkspaceMember.Role.VIEWER) for user in users[1:]]
        )
        return workspace.pk, tokens
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="fan-out bench")
    Membership.objects.bulk_create([Membership(user=user, conversation=conversation) for user in users])
    return conversation.pk, tokens


class Bench:
    """Counters shared by every connection's listener."""

    def __init__(self, count: int):
        self.sent_at: dict[str, float] = {}
        self.received = [0] * count
        self.last = [0.0] * count
        self.latencies: list[float] = []
        self.acks: list[float] = []
        self.unexpected = 0
        self.disconnects = 0

    def on_delivery(self, client_msg_id: str, at: float) -> None:
        index = int(client_msg_id[1:])
        latency = at - self.sent_at[client_msg_id]
        self.latencies.append(latency)
        self.received[index] += 1
        if latency > self.last[index]:
            self.last[index] = latency


# What a frame is to the load generator: DELIVERY (value: the refs it carries), ACK (value: its
# ref), PING (Engine.IO's: answered at once), IGNORED, or a signal a connection's set-up awaits.
DELIVERY, ACK, PING, IGNORED, UNEXPECTED = "delivery", "ack", "ping", "ignored", "unexpected"


def text_ref(text: str) -> str:
    """The ref a message's text starts with (``f"{ref} " + BODY``)."""
    return text.split(" ", 1)[0]


def progress_ref(payload: dict) -> str:
    """The ref of progress report i, which carries ``current`` i + 1 (``report_progress``)."""
    return f"b{payload['current'] - 1}"


class Native:
    """``/ws/`` (docs/protocol.md): ``welcome``, then ``task.subscribe`` or ``room.join`` acked as ref "subscribe"."""

    path = "/ws/"
    opening = "welcome"  # the first frame that says the connection is ready (None: none comes)

    def url(self, base: str, token: str) -> str:
        return f"{base}{self.path}?token={token}"

    async def prepare(self, base: str, token: str) -> str:
        """What is done before the WebSocket opens (nothing but its URL here); the URL."""
        return self.url(base, token)

    def read(self, payload: bytes) -> tuple[str, object]:
        message = orjson.loads(payload)
        kind = message["type"]
        if kind == "chat.message":
            return DELIVERY, (text_ref(message["data"]["content"]),)
        if kind == "room.message":
            return DELIVERY, (text_ref(message["data"]["data"]),)
        if kind == "workspace.updated":
            return DELIVERY, (text_ref(message["data"]["name"]),)
        if kind == "task.progress":
            return DELIVERY, (progress_ref(message["data"]),)
        if kind == "ack":
            return ("subscribed", None) if message["ref"] == "subscribe" else (ACK, message["ref"])
        if kind == "task.started":
            return IGNORED, None
        return kind, None

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        if topic == "task":
            await client.request(
                "subscribed", {"type": "task.subscribe", "ref": "subscribe", "data": {"task_ids": [topic_id]}}
            )
        elif topic == "room":
            await client.request("subscribed", {"type": "room.join", "ref": "subscribe", "data": {"room": topic_id}})


class Seed002(Native):
    """Seed 002 (docs/migration.md): ``connected``, then ``auth {token}`` and ``join_session``, as its clients do."""

    path = "/compat/002/ws"
    opening = "connected"

    def url(self, base: str, token: str) -> str:
        return f"{base}{self.path}"  # the token comes in the auth frame

    def read(self, payload: bytes) -> tuple[str, object]:
        message = orjson.loads(payload)
        if message["type"] == "new_message":
            return DELIVERY, (text_ref(message["message"]["content"]),)
        return message["type"], None

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        await client.request("auth_success", {"type": "auth", "token": token})
        await client.request("joined_session", {"type": "join_session", "session_id": topic_id})


class Seed004(Native):
    """
    Seed 004 (docs/migration.md): ``/ws`` with the token, flat pushes of every conversation of
    the user without a join; no frame says the session is ready, so a ``ping``'s ``pong`` does
    (frames are handled after the handshake's session start).
    """

    path = "/ws"
    opening = None

    def read(self, payload: bytes) -> tuple[str, object]:
        message = orjson.loads(payload)
        if "seq" in message:
            return DELIVERY, (text_ref(message["content"]),)
        return message.get("type", UNEXPECTED), None

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        await client.request("pong", {"type": "ping"})


class Seed000(Native):
    """Seed 000 (docs/migration.md): no frame on open, so a ``ping``'s ``pong`` says the session is ready."""

    path = "/compat/000/ws"
    opening = None

    def read(self, payload: bytes) -> tuple[str, object]:
        message = orjson.loads(payload)
        if message["type"] == "workspace.updated":
            return DELIVERY, (text_ref(message["name"]),)
        return message["type"], None

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        await client.request("pong", {"type": "ping"})


class Seed001(Native):
    """Seed 001 (docs/migration.md): ``connected``, ``subscribe {taskIds}``, ``subscription_ack``, ``task_progress``."""

    path = "/compat/001/ws"
    opening = "connected"

    def read(self, payload: bytes) -> tuple[str, object]:
        message = orjson.loads(payload)
        kind = message["type"]
        if kind == "task_progress":
            updates = message["payload"]
            return DELIVERY, tuple(
                progress_ref(update) for update in (updates if isinstance(updates, list) else [updates])
            )
        if kind == "task_started":
            return IGNORED, None
        return kind, None

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        frame = {"type": "subscribe", "payload": {"taskIds": [str(topic_id)]}, "id": "subscribe"}
        await client.request("subscription_ack", frame)


class Seed003(Native):
    """
    Seed 003's Socket.IO (docs/migration.md) over a WebSocket from the start: Engine.IO 4's open
    packet, the ``/game`` namespace's CONNECT with ``{token}``, ``joinRoom`` with an
    acknowledgement; a room message is ``42/game,["<event>", data, origin]``; Engine.IO's ping
    ("2") is answered ("3") as socket.io-client does.
    """

    path = "/compat/003/socket.io/?EIO=4&transport=websocket"
    opening = "open"
    EVENT = b"42/game,"

    def url(self, base: str, token: str) -> str:
        return f"{base}{self.path}"  # the token comes in the namespace's CONNECT, as the seed's clients send it

    def read(self, payload: bytes) -> tuple[str, object]:
        if payload.startswith(self.EVENT):
            event = orjson.loads(payload[len(self.EVENT) :])
            return (DELIVERY, (text_ref(event[1]),)) if event[0] == "bench" else (UNEXPECTED, None)
        if payload == b"2":
            return PING, None
        if payload.startswith(b"0{"):
            return "open", None
        if payload.startswith(b"40/game,"):
            return "connect", None
        if payload.startswith(b"43/game,1["):
            return "joined", None
        return UNEXPECTED, None

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        await client.request("connect", b"40/game," + orjson.dumps({"token": token}))
        await client.request("joined", b'42/game,1["joinRoom",' + orjson.dumps({"roomId": topic_id}) + b"]")


async def http_request(base: str, method: str, path: str, body: bytes = b"") -> bytes:
    """One HTTP/1.0 request to the server at ``base`` (``ws://host:port``); the body of its 200 response."""
    host, port = base.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head.decode("latin1"))
    return payload


class Seed003Polling(Seed003):
    """
    Seed 003's Socket.IO as socket.io-client connects by default: Engine.IO's handshake, the
    ``/game`` CONNECT and ``joinRoom`` over HTTP long-polling, then the upgrade (a WebSocket with
    the session's sid: ``2probe``/``3probe`` while a poll is pending, which engine.io ends with a
    NOOP, then ``5``). Every delivery measured arrives over the upgraded WebSocket.
    """

    opening = None  # the upgrade's WebSocket gets no Engine.IO open packet

    def __init__(self):
        self.polls: dict[str, asyncio.Task] = {}  # token -> the GET pending when the probe is sent

    async def prepare(self, base: str, token: str) -> str:
        path = self.path.removesuffix("websocket") + "polling"
        sid = orjson.loads((await http_request(base, "GET", path))[1:])["sid"]
        path += f"&sid={sid}"
        await http_request(base, "POST", path, b"40/game," + orjson.dumps({"token": token}))
        if not (await http_request(base, "GET", path)).startswith(b"40/game,"):
            raise ConnectionError("connect refused")
        await http_request(base, "POST", path, b'42/game,1["joinRoom",' + orjson.dumps({"roomId": ROOM}) + b"]")
        if not (await http_request(base, "GET", path)).startswith(b"43/game,1["):
            raise ConnectionError("joinRoom refused")
        self.polls[token] = asyncio.create_task(http_request(base, "GET", path))
        return f"{base}{self.path}&sid={sid}"

    def read(self, payload: bytes) -> tuple[str, object]:
        if payload == b"3probe":
            return "probe", None
        return super().read(payload)

    async def subscribe(self, client, topic: str, topic_id, token: str) -> None:
        await client.request("probe", b"2probe")
        if b"6" not in (await asyncio.wait_for(self.polls.pop(token), 30)).split(b"\x1e"):  # ended by a NOOP
            raise ConnectionError("the upgrade did not end the pending poll")
        client.transport.send(WSMsgType.TEXT, b"5")


CLIENTS = {
    "native": Native(),
    "000": Seed000(),
    "002": Seed002(),
    "004": Seed004(),
    "001": Seed001(),
    "003": Seed003(),
    "003-polling": Seed003Polling(),
}


class Listener(WSListener):
    """
    One connection of ``endpoint``: counts deliveries (a subscriber's) or times acks (the sender's);
    ``request`` sends a frame and waits for the signal that answers it.
    """

    def __init__(self, bench: Bench, endpoint: Native, subscriber: bool):
        super().__init__()
        self.bench = bench
        self.endpoint = endpoint
        self.subscriber = subscriber
        self.transport = None
        self.waiting: dict[str, asyncio.Future] = {}
        self.opened = self.expect(endpoint.opening) if endpoint.opening else None
        self.parts: bytes | None = None

    def expect(self, signal: str) -> asyncio.Future:
        future = self.waiting[signal] = asyncio.get_running_loop().create_future()
        return future

    async def request(self, signal: str, frame, timeout: float = 30) -> object:
        """Send ``frame`` (an object, or bytes as they are) and wait for ``signal``; its value."""
        future = self.expect(signal)
        self.transport.send(WSMsgType.TEXT, frame if isinstance(frame, bytes) else orjson.dumps(frame))
        return await asyncio.wait_for(future, timeout)

    def on_ws_connected(self, transport):
        self.transport = transport

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type not in (WSMsgType.TEXT, WSMsgType.CONTINUATION):
            return
        payload = frame.get_payload_as_bytes()
        if not frame.fin or self.parts is not None:
            self.parts = (self.parts or b"") + payload
            if not frame.fin:
                return
            payload, self.parts = self.parts, None
        self.on_text(payload, now())

    def on_text(self, payload: bytes, at: float) -> None:
        bench = self.bench
        signal, value = self.endpoint.read(payload)
        if signal == DELIVERY:
            if self.subscriber:
                for ref in value:
                    bench.on_delivery(ref, at)
        elif signal == ACK and not self.subscriber:
            bench.acks.append(at - bench.sent_at[value])
        elif signal in self.waiting:
            self.waiting.pop(signal).set_result(value)
        elif signal == PING:
            self.transport.send(WSMsgType.TEXT, b"3")
        elif signal != IGNORED:
            bench.unexpected += 1

    def on_ws_disconnected(self, transport):
        self.bench.disconnects += 1
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("closed while waiting for the server"))


async def open_connection(
    base: str, token: str, bench: Bench, endpoint: Native, subscriber: bool, timeout: float = 30
) -> Listener:
    """Connect through ``endpoint`` and wait for its opening frame; the listener."""
    _, client = await ws_connect(
        lambda: Listener(bench, endpoint, subscriber),
        await endpoint.prepare(base, token),
        websocket_handshake_timeout=timeout,
        enable_auto_pong=True,
    )
    if client.opened is not None:
        await asyncio.wait_for(client.opened, timeout)
    return client


async def wait_for_deliveries(bench: Bench, expected: int, stall_s: float, cap_s: float) -> float:
    """Wait until ``expected`` deliveries arrived, nothing arrived for ``stall_s``, or ``cap_s`` passed."""
    started = last_change = now()
    seen = len(bench.latencies)
    while len(bench.latencies) < expected and now() - last_change < stall_s and now() - started < cap_s:
        await asyncio.sleep(0.02)
        if len(bench.latencies) != seen:
            seen, last_change = len(bench.latencies), now()
    return now() - started


def report_progress(task_id: int, count: int, rate: float, sent_at: dict) -> None:
    """``count`` progress reports at ``rate`` per second through the worker's ``ProgressReporter``, coalescing off."""
    from django.db import connections

    from progress.reporter import ProgressReporter

    reporter = ProgressReporter(task_id, min_interval_ms=0, min_delta=0)
    reporter.start(total=count)
    started = now()
    for i in range(count):
        delay = started + i / rate - now()
        if delay > 0:
            time.sleep(delay)
        sent_at[f"b{i}"] = now()
        reporter.progress(i + 1)
    connections.close_all()


async def measure(args, base: str, topic_id, tokens: list[str], server_pid: int) -> dict:
    bench = Bench(args.count)
    rss_before = rss_bytes(server_pid)
    gate = asyncio.Semaphore(args.concurrency)
    endpoint = CLIENTS[args.endpoint]

    async def subscribe(token):
        async with gate:
            client = await open_connection(base, token, bench, endpoint, subscriber=True)
            await endpoint.subscribe(client, args.topic, topic_id, token)
            return client

    started = now()
    subscribers = await asyncio.gather(*(subscribe(token) for token in tokens[1:]))
    connect_s = now() - started
    sender = await open_connection(base, tokens[0], bench, CLIENTS["native"], subscriber=False)
    if args.topic == "room":  # the room's rule lets members publish
        await CLIENTS["native"].subscribe(sender, "room", topic_id, tokens[0])
    await asyncio.sleep(1.0)
    rss_connected = rss_bytes(server_pid)

    cpu_before, wall_before, gen_before = cpu_seconds(server_pid), now(), time.process_time()
    schedule_start = now()
    if args.topic == "task":
        await asyncio.to_thread(report_progress, topic_id, args.count, args.rate, bench.sent_at)
    for i in range(args.count if args.topic != "task" else 0):
        delay = schedule_start + i / args.rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        ref = f"b{i}"
        bench.sent_at[ref] = now()
        if args.topic == "room":
            data = {"room": topic_id, "event": "bench", "data": f"{ref} {BODY}", "except_self": True}
            frame = {"type": "room.publish", "ref": ref, "data": data}
        elif args.topic == "workspace":  # one at a time on the connection: each update is based on the last
            data = {"id": topic_id, "version": i + 1, "changes": {"name": f"{ref} {BODY}"}}
            frame = {"type": "workspace.update", "ref": ref, "data": data}
        else:
            data = {"conversation_id": topic_id, "content": f"{ref} {BODY}", "client_msg_id": ref}
            frame = {"type": "chat.send", "ref": ref, "data": data}
        sender.transport.send(WSMsgType.TEXT, orjson.dumps(frame))
    send_span = now() - schedule_start
    expected = args.n * args.count
    drain_s = await wait_for_deliveries(bench, expected, stall_s=10, cap_s=120)
    server_cpu_s = cpu_seconds(server_pid) - cpu_before
    server_cpu = 100 * server_cpu_s / (now() - wall_before)
    generator_cpu = 100 * (time.process_time() - gen_before) / (now() - wall_before)

    for client in (*subscribers, sender):
        client.transport.disconnect()
    latencies = sorted(bench.latencies)
    complete = sorted(bench.last[i] for i in range(args.count) if bench.received[i] >= args.n)
    acks = sorted(bench.acks)
    return {
        "n": args.n,
        "endpoint": args.endpoint,
        "rate_per_s": args.rate,
        "count": args.count,
        "connect_s": round(connect_s, 2),
        "send_span_s": round(send_span, 2),
        "drain_s": round(drain_s, 2),
        "acked": len(acks),
        "ack_p50_ms": ms(percentile(acks, 0.5)),
        "ack_p99_ms": ms(percentile(acks, 0.99)),
        "deliveries_expected": expected,
        **delivery_counts(latencies, bench.received, args.n),
        "last_p50_ms": ms(percentile(complete, 0.5)),
        "last_p99_ms": ms(percentile(complete, 0.99)),
        "last_max_ms": ms(complete[-1] if complete else None),
        "disconnects": bench.disconnects,
        "unexpected_frames": bench.unexpected,
        "server_cpu_pct": round(server_cpu, 1),
        "server_cpu_us_per_delivery": round(1e6 * server_cpu_s / max(len(latencies), 1), 2),
        "generator_cpu_pct": round(generator_cpu, 1),
        "rss_per_conn_kb": round((rss_connected - rss_before) / (args.n + 1) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="subscriber connections (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20, help="messages sent per second (default %(default)s)")
    parser.add_argument("--count", type=int, default=200, help="messages sent (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=50, help="handshakes in flight while connecting")
    parser.add_argument("--server", choices=SERVERS, default="daphne", help="the ASGI server (default %(default)s)")
    parser.add_argument(
        "--topic",
        choices=ENDPOINTS,
        default="chat",
        help="a conversation's messages, a task's progress or a room's messages (default %(default)s)",
    )
    parser.add_argument(
        "--endpoint",
        choices=tuple(CLIENTS),
        default="native",
        help="the subscribers' endpoint: /ws/ or a seed's compatibility endpoint (default %(default)s)",
    )
    args = parser.parse_args()
    if args.endpoint not in ENDPOINTS[args.topic]:
        parser.error(f"--topic {args.topic} is served by the endpoints {', '.join(ENDPOINTS[args.topic])}")
    if not 1 <= args.n <= MAX_CONNECTIONS or not 1 <= args.count <= 10_000 or not 0 < args.rate <= 1000:
        parser.error(f"bounds: 1 <= n <= {MAX_CONNECTIONS}, 1 <= count <= 10000, 0 < rate <= 1000")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench starts a throwaway Redis)")

    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        env = server_env(redis_url, f"sqlite:///{workdir}/bench.sqlite3")
        topic_id, tokens = prepare_database(env, args.n + 1, args.topic)
        server = SERVERS[args.server](env, cpus={0})
        try:
            result = uvloop.run(measure(args, server.url.removesuffix("/ws/"), topic_id, tokens, server.proc.pid))
        finally:
            server.stop()
    result["server"] = args.server
    result["topic"] = args.topic
    print(json.dumps(result))
    print(
        f"fan-out ({args.server}, {args.topic}, endpoint {args.endpoint}) n={result['n']} rate={args.rate}/s: "
        f"last-delivery p50 {result['last_p50_ms']} ms, "
        f"p99 {result['last_p99_ms']} ms; per-delivery p99 {result['p99_ms']} ms; "
        f"lost {result['lost_deliveries']}/{result['deliveries_expected']}, dup {result['dup_deliveries']}; "
        f"server CPU {result['server_cpu_pct']} % ({result['server_cpu_us_per_delivery']} us/delivery), "
        f"{result['rss_per_conn_kb']} KB/connection",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
