"""
Reconnect storm (issue 25): C authenticated clients (``--clients``, 5,000) on one Daphne process
(with the options of deploy/switchboard-daphne@.service), each user in ``--per-client`` (3) group
conversations of ``--room-size`` (10), every client having joined its conversations
(``chat.join``). The server gets SIGTERM (it drains: every client gets ``going_away`` and close
1001) and is started again on the same port, as a process manager would; meanwhile
``--messages`` chat messages (default one per conversation) are sent, spread evenly over the first
``--send-window`` (4) seconds after the SIGTERM, so part of them is sent while the server is down
and part during the storm.

The clients follow ``static/realtime/client.js``: after close 1001 they reconnect at once within
1 s of jitter; after a refused or failed connect (1006) with exponential backoff, 0.5 s doubling to
30 s, jitter factor 0.5-1.0 (reset by ``welcome``); 1013 waits 5 s more, 4429 60 s; 1000, 1009,
4401, 4403 and 4409 stop. They authenticate with ``?token=`` and resume each conversation with
``chat.join {conversation_id, after_seq: synced}``, paging while ``has_more`` (docs/protocol.md,
"Resume"), and keep taking live ``chat.message`` events through a SeqTracker of their own (seq
order, a message at or below ``synced`` or already held ignored, a gap or ``resync`` fetched).

The messages are sent by a separate process (``--sender``, on the generator's CPU) with Django
set up on the same database and Redis, through the path a socket's ``chat.send`` takes in the
server: ``chat.services.send_many`` (authorisation, seq, one transaction) under
``collecting_publishes``, then ``flush_collected`` (publish after commit, one layer batch), in
batches of what is due every few ms like the server's group commit. A batch the database refuses
is sent again with the same ``client_msg_id``s (idempotent). So every message is persisted as a
socket send is; the sender does not depend on the server being up.

Report (one JSON object on stdout, a summary on stderr), times in seconds from the SIGTERM:
- per-client completion (p50/p99/max, and ``all_done_s``): the client is reconnected, has resumed,
  and holds every message stored in its conversations since the SIGTERM (checked against the
  database at the end); ``last_sent_s`` says when the last message was committed;
- the outage (``sigterm_to_exit_s``, ``restart_to_listening_s``) and the storm's connects: welcomes
  after the restart, their rate (``connect_rate_per_s``, from the new process listening to the last
  welcome), attempts, retries (attempts beyond one per client) and failed attempts by cause
  (``refused``: nothing listening; ``closed_1001``: the draining process refused it; ``timeout``);
- ``lost``: (member, message) pairs a client never had by the deadline; ``duplicates_shown``: a
  message a client would show twice (the SeqTracker releases each seq once, so this counts a
  message id released under two seqs or a ``client_msg_id`` stored twice); ``raw_duplicates``:
  deliveries of a seq already held or released (a live event and a resume page both carrying it),
  which the tracker drops;
- the server's CPU: the old process from SIGTERM to its exit (drain), the new one's start-up (to
  listening) and from listening until every client was done (the storm), and that per connect.

Bounded: at most 6,000 clients, 20,000 messages, a deadline (``--deadline``, 120 s after the
SIGTERM) after which what is missing is reported. Loopback only. SQLite in a temporary directory
by default; ``--database postgres`` creates a throwaway database ``switchboard_storm_<pid>`` on the
PostgreSQL at 127.0.0.1:5432 (``--postgres-url``, trust auth) and drops it at the end.

The floor (``--server bare``): the same clients, with the same reconnect policy, against the bare
ASGI app of ``../shared/wsbench`` (``s8_asgi_raw:app``, started as ``bench/compare.py`` starts its
reference, ``WSBENCH_DIR``) on Daphne, pinned to CPU 0 likewise: no Django, no database, no Redis,
no sender, no tokens, no conversations. A client is welcomed (and done) when the app has answered
its first frame, ``{"type": "join", "room": "storm"}``, with ``joined``: the handshake and one round
trip. Stock Daphne drops its connections at SIGTERM without a close frame, so the clients see 1006
and back off from 0.5 s (``closes`` by code): that is reported as it is. The report keeps the
fields that apply (the outage, completion, connects, closes, server CPU) and says ``"server":
"bare"``; what concerns messages is left out.

Usage: ``make bench-storm``, ``BENCH_ARGS="--clients 200" make bench-storm`` or, for the floor,
``BENCH_ARGS="--server bare" make bench-storm``.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson
import uvloop
from picows import WSError, WSListener, WSMsgType, ws_connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import databases  # noqa: E402
from bench.compare import WSBENCH_DIR, asgi_raw_command  # noqa: E402
from bench.connect_profile import Recording, table  # noqa: E402
from bench.fanout import cpu_seconds, percentile, server_env  # noqa: E402
from tests.deploy import unit_daphne_args  # noqa: E402
from tests.servers import Daphne  # noqa: E402

now = time.monotonic  # CLOCK_MONOTONIC: the same clock in the sender process
MAX_CLIENTS = 6000
MAX_MESSAGES = 20_000
BODY = "x" * 64
CONNECT_TIMEOUT_S = 30  # handshake and welcome; a request's answer
# client.js's reconnect policy (its header comment; closed()).
STOP_CODES = {1000, 1009, 4401, 4403, 4409}
MIN_DELAY_S = {1001: 0, 1013: 5.0, 4429: 60.0}
MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
PAGE_LIMIT = 100
JOIN = orjson.dumps({"type": "join", "room": "storm"})  # the floor's round trip (``--server bare``)
# What the floor's report leaves out: the conversations and their messages.
SWITCHBOARD_ONLY = (
    *("conversations", "per_client", "room_size", "database", "messages_planned", "send_window_s"),
    *("messages_stored", "sender", "last_sent_s", "join_errors", "resyncs", "deliveries_expected"),
    *("live_deliveries", "paged_deliveries", "lost", "wrong_message", "duplicates_shown", "raw_duplicates"),
)


def seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Tracker:
    """One client's SeqTracker for one conversation (client.js), with the bench's counts."""

    __slots__ = ("synced", "held", "released", "resuming", "again")

    def __init__(self):
        self.synced = 0
        self.held: dict[int, dict] = {}
        self.released: dict[int, tuple[int, str | None, float]] = {}  # seq -> (id, client_msg_id, at)
        self.resuming = False
        self.again = False


class Closed(Exception):
    """The connection closed before its welcome (``code``) or while a request waited."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Bench:
    """What every client shares: the phase, the counters, the storm's timestamps."""

    def __init__(self, url: str, bare: bool = False):
        self.url = url
        self.bare = bare  # the floor: welcomed when the app answers JOIN
        self.storm = False  # the SIGTERM was sent: count attempts, welcomes and errors
        self.finished = False
        self.t0 = 0.0
        self.welcomes: list[float] = []
        self.attempts = 0
        self.errors: Counter = Counter()
        self.closes: Counter = Counter()  # close codes of welcomed connections during the storm
        self.live = 0
        self.paged = 0
        self.raw_duplicates = 0
        self.join_errors: Counter = Counter()
        self.resyncs = 0
        self.stopped = 0  # clients that stopped (a stop code), as client.js does
        self.initial_errors = 0  # failed connects before the SIGTERM (retried)
        self.last_closed = 0.0  # when the last connection open at the SIGTERM closed


class Listener(WSListener):
    """One connection of a ``Client``: its welcome, its requests' answers, its close code."""

    def __init__(self, client: "Client"):
        super().__init__()
        self.client = client
        loop = asyncio.get_running_loop()
        self.welcome = loop.create_future()
        self.closed = loop.create_future()
        self.pending: dict[str, asyncio.Future] = {}
        self.transport = None
        self.close_code = 1006

    def on_ws_connected(self, transport):
        self.transport = transport
        if self.client.bench.bare:
            transport.send(WSMsgType.TEXT, JOIN)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            transport.send_close(self.close_code)
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        at = now()
        message = orjson.loads(frame.get_payload_as_bytes())
        kind = message["type"]
        if kind == "chat.message":
            self.client.on_live(message["data"], at)
        elif kind == "ack" or (kind == "error" and message.get("ref") in self.pending):
            future = self.pending.pop(message.get("ref"), None)
            if future is not None and not future.done():
                if kind == "ack":
                    future.set_result(message["data"])
                else:
                    future.set_exception(RuntimeError(message["error"].get("code", "error")))
        elif kind in ("welcome", "joined"):
            self.welcome.set_result(at)
        elif kind == "resync":
            self.client.bench.resyncs += 1
            self.client.resume_all_soon()

    def on_ws_disconnected(self, transport):
        code = self.close_code
        if not self.welcome.done():
            self.welcome.set_exception(Closed(code))
            self.welcome.exception()  # read: the opener sees it through wait
        for future in self.pending.values():
            if not future.done():
                future.set_exception(Closed(code))
        self.pending.clear()
        self.closed.set_result(code)

    async def request(self, kind: str, data: dict, ref: str) -> dict:
        future = self.pending[ref] = asyncio.get_running_loop().create_future()
        self.transport.send(WSMsgType.TEXT, orjson.dumps({"type": kind, "ref": ref, "data": data}))
        return await asyncio.wait_for(future, CONNECT_TIMEOUT_S)


class Client:
    """One user's client: connects, joins and resumes its conversations, reconnects as client.js does."""

    def __init__(self, bench: Bench, token: str | None, conversations: list[int]):
        self.bench = bench
        self.token = token
        self.trackers = {c: Tracker() for c in conversations}
        self.listener: Listener | None = None
        self.backoff = MIN_BACKOFF_S
        self.next_ref = 0
        self.attempts = 0
        self.resumed_at: float | None = None  # the end of the last full resume after a storm reconnect
        self.stopped = False

    # Connecting.

    async def open(self) -> int | None:
        """Connect and wait for welcome; None when welcomed, else the close code to react to."""
        bench = self.bench
        errors = bench.errors if bench.storm else Counter()  # before the SIGTERM: initial_errors
        if bench.storm:
            self.attempts += 1
            bench.attempts += 1
        made: list[Listener] = []  # picows returns no listener when the server closed during the handshake

        def factory() -> Listener:
            made.append(Listener(self))
            return made[-1]

        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await ws_connect(
                    factory,
                    f"{bench.url}?token={self.token}" if self.token else bench.url,
                    websocket_handshake_timeout=CONNECT_TIMEOUT_S,
                    enable_auto_pong=True,
                )
                if not made:  # the server closed the socket before its 101 answer
                    raise Closed(1006)
                await made[0].welcome
        except Closed as exc:
            errors[f"closed_{exc.code}"] += 1
            return exc.code
        except TimeoutError:
            errors["timeout"] += 1
            if made and made[0].transport is not None:
                made[0].transport.disconnect()
            return 1006
        except ConnectionRefusedError:
            errors["refused"] += 1
            return 1006
        except (OSError, WSError) as exc:
            errors[type(exc).__name__] += 1
            return 1006
        self.listener = made[0]
        self.backoff = MIN_BACKOFF_S  # client.js: welcome resets the backoff
        if bench.storm:
            bench.welcomes.append(now())
        return None

    def delay(self, code: int) -> float:
        """client.js's closed(): 1001 within 1 s of jitter, else backoff 0.5 s doubling to 30 s, jitter 0.5-1."""
        if code == 1001:
            delay = random.random()
        else:
            delay = MIN_DELAY_S.get(code, 0) + self.backoff * (0.5 + random.random() / 2)
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)
        return delay

    async def run(self, gate: asyncio.Semaphore, ready: asyncio.Future) -> None:
        """Connect and join (``gate`` bounds handshakes in flight), then follow the storm until the bench ends."""
        for _ in range(5):  # a busy machine can time a handshake out: try again, counted
            async with gate:
                code = await self.open()
            if code is None:
                break
            self.bench.initial_errors += 1
            await asyncio.sleep(1)
        else:
            raise RuntimeError(f"initial connect failed 5 times (close {code})")
        await self.resume_all()
        ready.set_result(None)
        bench = self.bench
        while not bench.finished:
            code = await self.listener.closed
            if bench.finished:
                return
            if not bench.storm:
                raise RuntimeError(f"connection closed ({code}) before the SIGTERM")
            bench.closes[code] += 1
            if self.resumed_at is None:
                bench.last_closed = max(bench.last_closed, now())
            while True:
                if code in STOP_CODES:
                    self.stopped = True
                    bench.stopped += 1
                    return
                await asyncio.sleep(self.delay(code))
                if bench.finished:
                    return
                code = await self.open()
                if code is None:
                    break
            await self.resume_all()
            if self.listener.closed.done():
                continue
            self.resumed_at = now()

    # Messages (client.js's SeqTracker and docs/protocol.md "Resume").

    def take(self, conversation_id: int, message: dict, at: float) -> bool:
        """Take a live or paged message; return whether a gap remains (a catch-up is needed)."""
        tracker = self.trackers.get(conversation_id)
        if tracker is None:
            return False
        seq = message["seq"]
        if seq <= tracker.synced or seq in tracker.held:
            self.bench.raw_duplicates += 1
            return bool(tracker.held)
        tracker.held[seq] = message
        while tracker.synced + 1 in tracker.held:
            released = tracker.held.pop(tracker.synced + 1)
            tracker.synced += 1
            tracker.released[tracker.synced] = (released["id"], released.get("client_msg_id"), at)
        return bool(tracker.held)

    def on_live(self, message: dict, at: float) -> None:
        self.bench.live += 1
        if self.take(message["conversation_id"], message, at):
            asyncio.get_running_loop().create_task(self.resume(message["conversation_id"]))

    def resume_all_soon(self) -> None:
        for conversation_id in self.trackers:
            asyncio.get_running_loop().create_task(self.resume(conversation_id))

    async def resume_all(self) -> None:
        await asyncio.gather(*(self.resume(c) for c in self.trackers))

    async def resume(self, conversation_id: int) -> None:
        """``chat.join {after_seq: synced}`` while ``has_more`` (again if a gap opened meanwhile)."""
        tracker = self.trackers[conversation_id]
        if tracker.resuming:
            tracker.again = True
            return
        tracker.resuming = True
        listener = self.listener
        try:
            while not listener.closed.done() and not self.bench.finished:
                tracker.again = False
                self.next_ref += 1
                data = {"conversation_id": conversation_id, "after_seq": tracker.synced, "limit": PAGE_LIMIT}
                try:
                    reply = await listener.request("chat.join", data, f"j{self.next_ref}")
                except Closed:
                    return  # the reconnect resumes
                except (TimeoutError, RuntimeError) as exc:
                    self.bench.join_errors[str(exc) or type(exc).__name__] += 1
                    await asyncio.sleep(1)
                    continue
                at = now()
                for message in reply.get("messages", ()):
                    self.bench.paged += 1
                    self.take(conversation_id, message, at)
                if not reply.get("has_more") and not tracker.again and not tracker.held:
                    return
        finally:
            tracker.resuming = False


# Data.


def prepare_data(clients: int, per_client: int, room_size: int) -> tuple[list[list[int]], dict[int, list[int]], list]:
    """
    ``clients`` users; ``per_client`` layers of group conversations of ``room_size``, each layer a
    seeded shuffle of the users cut into rooms (so every user is in ``per_client`` conversations).
    Return each user's conversations, each conversation's members (user ids) and the users.
    """
    from django.contrib.auth import get_user_model

    from chat.models import Conversation, Membership

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"storm{i}", password="!") for i in range(clients)])
    rooms_per_layer = clients // room_size
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(kind=Conversation.Kind.GROUP, title=f"storm {layer}.{r}")
            for layer in range(per_client)
            for r in range(rooms_per_layer)
        ]
    )
    rng = random.Random(25)
    of_user: list[list[int]] = [[] for _ in range(clients)]
    members: dict[int, list[int]] = {}
    memberships = []
    for layer in range(per_client):
        order = list(range(clients))
        if layer:
            rng.shuffle(order)
        for position, index in enumerate(order):
            conversation = conversations[layer * rooms_per_layer + position // room_size]
            of_user[index].append(conversation.pk)
            members.setdefault(conversation.pk, []).append(users[index].pk)
            memberships.append(Membership(user=users[index], conversation=conversation))
    Membership.objects.bulk_create(memberships, batch_size=2000)
    return of_user, members, users


def send_plan(members: dict[int, list[int]], count: int, window_s: float) -> list[tuple[float, int, int, str]]:
    """``count`` sends ``(offset_s, sender_id, conversation_id, client_msg_id)`` spread over ``window_s``."""
    conversation_ids = sorted(members)
    rng = random.Random(26)
    offsets = [window_s * (i + 0.5) / count for i in range(count)] if count else []
    rng.shuffle(offsets)
    plan = []
    for i in range(count):
        conversation_id = conversation_ids[i % len(conversation_ids)]
        room = members[conversation_id]
        sender = room[(i // len(conversation_ids)) % len(room)]
        plan.append((offsets[i], sender, conversation_id, f"storm-{i}"))
    return sorted(plan)


# The sender process.


def sender_main(plan_path: str) -> None:
    """
    ``--sender PLAN``: set Django up (the environment is the server's), say ``ready``, wait for
    ``go <t0>`` on stdin, then send the plan's messages when due, the server's way: each due batch
    ``send_many`` under ``collecting_publishes``, then ``flush_collected``. One JSON line per message.
    """
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from chat.services import SendRequest, send_many
    from realtime.db import database_call
    from realtime.delivery import collecting_publishes, flush_collected

    plan = json.loads(Path(plan_path).read_text())
    users = get_user_model().objects.in_bulk({sender for _, sender, _, _ in plan})
    print("ready", flush=True)
    go = sys.stdin.readline().split()
    if not go:  # the bench ended before the SIGTERM
        return
    t0 = float(go[1])

    async def send_all() -> dict:
        stats = Counter()
        done = 0
        while done < len(plan):
            due = done
            while due < len(plan) and t0 + plan[due][0] <= now():
                due += 1
            if due == done:
                await asyncio.sleep(min(0.005, max(0.0, t0 + plan[done][0] - now())))
                continue
            batch = plan[done:due][:100]  # the group commit's MAX_BATCH
            requests = [
                SendRequest(
                    sender=users[sender], conversation_id=conversation, content=f"{key} {BODY}", client_msg_id=key
                )
                for _, sender, conversation, key in batch
            ]
            with collecting_publishes() as collected:
                try:
                    outcomes = await database_call(send_many, requests)
                except Exception as exc:  # noqa: BLE001 (the database refused the batch: resend it, idempotent)
                    stats[f"batch_retry_{type(exc).__name__}"] += 1
                    await asyncio.sleep(0.05)
                    continue
            committed = now()
            await flush_collected(collected)
            stats["batches"] += 1
            for (_, _, conversation, key), outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    stats[f"refused_{type(outcome).__name__}"] += 1
                    line = {"key": key, "conversation_id": conversation, "error": repr(outcome)}
                else:
                    message, created = outcome
                    stats["created" if created else "duplicate"] += 1
                    line = {"key": key, "conversation_id": conversation, "seq": message.seq, "at": committed}
                print(json.dumps(line), flush=False)
            sys.stdout.flush()
            done += len(batch)
        return dict(stats)

    stats = uvloop.run(send_all())
    print("done " + json.dumps(stats), flush=True)


# The storm.


async def measure(
    args, server: Daphne, of_user: list[list[int]], tokens: list[str | None], plan_path: str | None, env
) -> dict:
    """The storm; the floor (``--server bare``) without ``plan_path``: no sender, no messages."""
    bare = plan_path is None
    bench = Bench(server.url, bare)
    clients = [Client(bench, token, conversations) for token, conversations in zip(tokens, of_user, strict=True)]
    loop = asyncio.get_running_loop()

    sender = None
    if not bare:
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--sender",
            plan_path,
            cwd=BASE_DIR,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=lambda: os.sched_setaffinity(0, {1}),
        )

    gate = asyncio.Semaphore(50)
    readies = [loop.create_future() for _ in clients]
    started = now()
    tasks = [asyncio.create_task(client.run(gate, ready)) for client, ready in zip(clients, readies, strict=True)]
    waiting = [*readies, *tasks]
    while not all(ready.done() for ready in readies):
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task in tasks and task.exception():
                raise task.exception()
        waiting = [w for w in waiting if not w.done()]
    connect_s = now() - started
    if sender is not None and (await sender.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the sender process did not start")
    await asyncio.sleep(1)

    results: list[dict] = []
    sender_stats: dict = {}

    async def read_sender() -> None:
        while sender is not None and (line := await sender.stdout.readline()):
            if line.startswith(b"done "):
                sender_stats.update(json.loads(line[5:]))
            else:
                results.append(json.loads(line))

    # SIGTERM (the drain), then a restart on the same port as soon as the old process is gone.
    old_pid = server.proc.pid
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = cpu_seconds(old_pid)
    generator_before = time.process_time()
    bench.t0 = t0 = now()
    bench.storm = True
    drain_recording = Recording(old_pid) if args.profile else None
    if sender is not None:
        sender.stdin.write(f"go {t0}\n".encode())
        await sender.stdin.drain()
    reader = asyncio.create_task(read_sender())
    exit_code, killed, old_log = await asyncio.to_thread(terminate, server, args.kill_after)
    t_exit = now()
    if drain_recording is not None:
        print(f"where the drain's server time went (samples: {drain_recording.out}):", file=sys.stderr)
        print(table(*drain_recording.stop()), file=sys.stderr, flush=True)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    old_total = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    drain_cpu = old_total - cpu_before
    await asyncio.to_thread(server.start_again)
    t_listening = now()
    new_pid = server.proc.pid
    startup_cpu = cpu_seconds(new_pid)
    recording = Recording(new_pid) if args.profile else None

    deadline = t0 + args.deadline
    while now() < deadline:
        if reader.done() and all(client_done(c, results) is not None or c.stopped for c in clients):
            break
        await asyncio.sleep(0.1)
    t_end = now()
    storm_cpu = cpu_seconds(new_pid) - startup_cpu
    if recording is not None:
        print(f"where the storm's server time went (samples: {recording.out}):", file=sys.stderr)
        print(table(*recording.stop()), file=sys.stderr, flush=True)
    generator_cpu = time.process_time() - generator_before
    bench.finished = True
    stuck = [describe(client, task) for client, task in zip(clients, tasks, strict=True) if client.resumed_at is None]
    for client in clients:
        if client.listener is not None and client.listener.transport is not None:
            client.listener.transport.disconnect()
    await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if sender is not None and not reader.done():
        sender.kill()
    await reader
    if sender is not None:
        await sender.wait()

    log_path = Path(tempfile.gettempdir()) / f"storm-{os.getpid()}-old-server.log"
    log_path.write_text(old_log)
    # The truth: what the database holds in the conversations since the SIGTERM.
    stored = {} if bare else await asyncio.to_thread(stored_messages)
    report = tally(bench, clients, stored, t0)
    welcomes = sorted(bench.welcomes)
    span = (welcomes[-1] - t_listening) if welcomes else None
    committed = [r["at"] for r in results if "at" in r]
    report.update(
        {
            "clients": len(clients),
            "conversations": len({c for conversations in of_user for c in conversations}),
            "per_client": args.per_client,
            "room_size": args.room_size,
            "database": args.database,
            "initial_connect_s": seconds(connect_s),
            "initial_connect_errors": bench.initial_errors,
            "messages_planned": args.messages,
            "send_window_s": args.send_window,
            "messages_stored": sum(len(v) for v in stored.values()),
            "sender": sender_stats,
            "last_sent_s": seconds(max(committed) - t0 if committed else None),
            "old_exit_code": exit_code,
            "old_killed": killed,
            "sigterm_to_all_closed_s": seconds(bench.last_closed - t0 if bench.last_closed else None),
            "sigterm_to_exit_s": seconds(t_exit - t0),
            "restart_to_listening_s": seconds(t_listening - t_exit),
            "reconnects": len(welcomes),
            "connect_attempts": bench.attempts,
            "retries": bench.attempts - len(clients),
            "connect_errors": sum(bench.errors.values()),
            "connect_errors_by_cause": dict(bench.errors),
            "first_welcome_s": seconds(welcomes[0] - t0 if welcomes else None),
            "last_welcome_s": seconds(welcomes[-1] - t0 if welcomes else None),
            "connect_rate_per_s": round(len(welcomes) / span, 1) if span else None,
            "closes": {str(k): v for k, v in bench.closes.items()},
            "stopped_clients": bench.stopped,
            "join_errors": dict(bench.join_errors),
            "resyncs": bench.resyncs,
            "server_drain_cpu_s": round(drain_cpu, 2),
            "server_startup_cpu_s": round(startup_cpu, 2),
            "server_storm_cpu_s": round(storm_cpu, 2),
            "server_storm_cpu_pct": round(100 * storm_cpu / max(t_end - t_listening, 1e-9), 1),
            "server_cpu_ms_per_connect": round(1000 * storm_cpu / len(welcomes), 2) if welcomes else None,
            "generator_cpu_s": round(generator_cpu, 2),
            "measured_until_s": seconds(t_end - t0),
            "not_resumed": stuck[:20],
            "old_server_log": str(log_path),
            "old_server_log_lines": old_log.count("\n"),
        }
    )
    if bare:
        return {"server": "bare", **{key: value for key, value in report.items() if key not in SWITCHBOARD_ONLY}}
    return report


def terminate(server: Daphne, grace_s: float) -> tuple[int, bool, str]:
    """
    SIGTERM ``server`` and wait up to ``grace_s`` for its exit, then SIGKILL it (``Daphne.stop``
    with its log kept): its exit code, whether it had to be killed, the log's last lines (and, when
    killed, py-spy's dump of where its threads were, if py-spy is installed).
    """
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    killed = server.proc.poll() is None
    log = server.output()
    if killed:
        spy = Path(sys.executable).with_name("py-spy")
        if spy.exists():
            dump = subprocess.run(
                [str(spy), "dump", "--pid", str(server.proc.pid)], capture_output=True, text=True, timeout=30
            )
            log += "\n== py-spy dump of the process that outlived its grace\n" + dump.stdout + dump.stderr
    return server.stop(signal.SIGKILL), killed, log


def describe(client: Client, task: asyncio.Task) -> dict:
    """What a client that never resumed after the SIGTERM was doing at the deadline."""
    listener = client.listener
    state = {"attempts": client.attempts, "backoff_s": client.backoff, "stopped": client.stopped}
    if task.done() and not task.cancelled() and task.exception() is not None:
        state["error"] = repr(task.exception())
    elif not task.done():
        state["waiting_in"] = [f"{frame.f_code.co_name}:{frame.f_lineno}" for frame in task.get_stack()]
    if listener is not None:
        state["connection_closed"] = listener.closed.done()
    return state


def client_done(client: Client, results: list[dict]) -> float | None:
    """While measuring: when ``client`` had resumed and every message sent to its conversations so far; else None."""
    if client.resumed_at is None:
        return None
    latest = client.resumed_at
    for tracker in client.trackers.values():
        if tracker.held:
            return None
        if tracker.released:
            latest = max(latest, tracker.released[tracker.synced][2])
    return latest if _has_all(client, results) else None


_final_seq: dict[int, int] = {}
_final_count = [0]


def _has_all(client: Client, results: list[dict]) -> bool:
    if _final_count[0] != len(results):  # fold in the sender's new results
        for result in results[_final_count[0] :]:
            if "seq" in result:
                conversation = result["conversation_id"]
                _final_seq[conversation] = max(_final_seq.get(conversation, 0), result["seq"])
        _final_count[0] = len(results)
    return all(t.synced >= _final_seq.get(c, 0) for c, t in client.trackers.items())


def stored_messages() -> dict[int, dict[int, tuple[int, str | None]]]:
    """Every stored message, by conversation then seq: ``(id, client_msg_id)``."""
    from django.db import connections

    from chat.models import Message

    stored: dict[int, dict[int, tuple[int, str | None]]] = {}
    for conversation, seq, pk, key in Message.objects.values_list("conversation_id", "seq", "id", "client_msg_id"):
        stored.setdefault(conversation, {})[seq] = (pk, key)
    connections.close_all()
    return stored


def tally(bench: Bench, clients: list[Client], stored: dict, t0: float) -> dict:
    """Per client: done when resumed and holding every stored message of its conversations; lost, duplicates shown."""
    completion: list[float] = []
    lost = wrong = shown_twice = incomplete = never_reconnected = 0
    keys = Counter(key for messages in stored.values() for _, key in messages.values())
    stored_twice = sum(n - 1 for key, n in keys.items() if key is not None and n > 1)
    for client in clients:
        latest = client.resumed_at
        complete = latest is not None
        if latest is None:
            never_reconnected += 1
        for conversation, tracker in client.trackers.items():
            messages = stored.get(conversation, {})
            ids = Counter()
            for seq, (pk, _key) in messages.items():
                got = tracker.released.get(seq)
                if got is None:
                    lost += 1
                    complete = False
                    continue
                if got[0] != pk:
                    wrong += 1
                ids[got[0]] += 1
                if latest is not None:
                    latest = max(latest, got[2])
            shown_twice += sum(n - 1 for n in ids.values() if n > 1)
        if complete:
            completion.append(latest - t0)
        else:
            incomplete += 1
    completion.sort()
    return {
        "complete_clients": len(completion),
        "incomplete_clients": incomplete,
        "never_reconnected": never_reconnected,
        "completion_p50_s": seconds(percentile(completion, 0.5)),
        "completion_p99_s": seconds(percentile(completion, 0.99)),
        "completion_max_s": seconds(completion[-1] if completion else None),
        "all_done_s": seconds(completion[-1]) if completion and not incomplete else None,
        "deliveries_expected": sum(len(stored.get(c, {})) for client in clients for c in client.trackers),
        "live_deliveries": bench.live,
        "paged_deliveries": bench.paged,
        "lost": lost,
        "wrong_message": wrong,
        "duplicates_shown": shown_twice + stored_twice,
        "raw_duplicates": bench.raw_duplicates,
    }


class BareDaphne(Daphne):
    """The floor: ``bench/compare.py``'s bare-ASGI reference on Daphne (pass ``cwd=WSBENCH_DIR``)."""

    def command(self) -> list[str]:
        return asgi_raw_command(self.port)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--sender":
        sender_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        choices=("switchboard", "bare"),
        default="switchboard",
        help="switchboard, or bare: the floor, the bare ASGI app of WSBENCH_DIR on Daphne (default %(default)s)",
    )
    parser.add_argument("--clients", type=int, default=5000, help="connected users (default %(default)s)")
    parser.add_argument("--per-client", type=int, default=3, help="conversations per user (default %(default)s)")
    parser.add_argument("--room-size", type=int, default=10, help="members per conversation (default %(default)s)")
    parser.add_argument("--messages", type=int, help="messages sent (default: one per conversation)")
    parser.add_argument(
        "--send-window",
        type=float,
        default=4.0,
        help="seconds after the SIGTERM the sends spread over (default %(default)s)",
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds after the SIGTERM (default %(default)s)")
    parser.add_argument(
        "--kill-after",
        type=float,
        default=10.0,
        help="SIGKILL the old process this long after its SIGTERM (default %(default)s)",
    )
    databases.add_arguments(parser)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the old server's drain and the restarted server's storm with py-spy (bench/connect_profile.py)",
    )
    args = parser.parse_args()
    if args.messages is None:
        args.messages = args.clients * args.per_client // args.room_size
    if not (
        2 <= args.room_size <= args.clients <= MAX_CLIENTS
        and args.clients % args.room_size == 0
        and 1 <= args.per_client <= 10
        and 0 <= args.messages <= MAX_MESSAGES
        and 0 < args.send_window <= 60
        and 0 < args.deadline <= 600
    ):
        parser.error(
            f"bounds: room-size <= clients <= {MAX_CLIENTS} (a multiple of room-size), 1 <= per-client <= 10, "
            f"0 <= messages <= {MAX_MESSAGES}, 0 < send-window <= 60, 0 < deadline <= 600"
        )
    redis_url = os.environ.get("REDIS_URL")
    if args.server == "bare" and not (WSBENCH_DIR / "s8_asgi_raw.py").is_file():
        parser.error(f"the bare ASGI app is not at {WSBENCH_DIR} (set WSBENCH_DIR)")
    if args.server == "switchboard" and not redis_url:
        parser.error("REDIS_URL is required (make bench-storm starts a throwaway Redis)")

    os.sched_setaffinity(0, {1})
    if args.server == "bare":
        server = BareDaphne({}, cpus={0}, cwd=WSBENCH_DIR)
        try:
            result = uvloop.run(measure(args, server, [[]] * args.clients, [None] * args.clients, None, {}))
        finally:
            server.stop()
        summarise(result)
        return
    with tempfile.TemporaryDirectory(prefix="switchboard-storm-") as workdir:
        database_url, drop = databases.throwaway_database(args, workdir, "switchboard_storm")
        server = None
        try:
            env = server_env(redis_url, database_url)
            from bench.progress import prepare

            prepare(env)
            from rest_framework_simplejwt.tokens import AccessToken

            of_user, members, users = prepare_data(args.clients, args.per_client, args.room_size)
            tokens = [str(AccessToken.for_user(user)) for user in users]
            plan_path = Path(workdir) / "plan.json"
            plan_path.write_text(json.dumps(send_plan(members, args.messages, args.send_window)))
            from django.db import connections

            connections.close_all()
            # With the production unit's options (deploy/): its handshake timeout matters here.
            server = Daphne(env, unit_daphne_args(), cpus={0})
            result = uvloop.run(measure(args, server, of_user, tokens, str(plan_path), env))
        finally:
            if server is not None:
                server.stop()
            drop()
    summarise(result, args.send_window)


def summarise(result: dict, send_window: float | None = None) -> None:
    """The report on stdout, a summary on stderr (the floor's without the messages, with the closes)."""
    print(json.dumps(result))
    bare = result.get("server") == "bare"
    print(
        (
            f"storm (bare ASGI on Daphne, the floor) clients={result['clients']}: "
            if bare
            else f"storm ({result['database']}) clients={result['clients']} in {result['conversations']} "
            f"conversations, {result['messages_stored']} messages sent in {send_window} s "
            f"(last at {result['last_sent_s']} s): "
        )
        + f"SIGTERM to exit {result['sigterm_to_exit_s']} s, "
        f"listening again {result['restart_to_listening_s']} s later; "
        f"completion p50 {result['completion_p50_s']} s, p99 {result['completion_p99_s']} s, "
        f"max {result['completion_max_s']} s, all done {result['all_done_s']} s "
        f"({result['complete_clients']} complete, {result['incomplete_clients']} not); "
        f"{result['reconnects']} reconnects at {result['connect_rate_per_s']}/s, "
        f"{result['connect_attempts']} attempts, errors {result['connect_errors_by_cause']}; "
        + (
            f"closes {result['closes']}; "
            if bare
            else f"lost {result['lost']}, duplicates shown {result['duplicates_shown']} "
            f"(raw {result['raw_duplicates']}); "
        )
        + f"server CPU drain {result['server_drain_cpu_s']} s, "
        f"storm {result['server_storm_cpu_s']} s ({result['server_cpu_ms_per_connect']} ms/connect)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
