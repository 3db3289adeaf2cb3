"""
Chat throughput (issue 7, ``../shared/wsbench`` measure m2): ``--clients`` authenticated users
(200) in group conversations of ``--room-size`` (10), each with one connection; the offered rate of
``chat.send`` frames is stepped up (``--rates``, ``--step-s`` seconds each), every message
persisted before its ack. The server (Daphne or uvicorn, ``--server``) runs on CPU 0 with Redis and
SQLite, or a throwaway database on the machine's PostgreSQL (``--database postgres``,
bench/databases.py); the generator runs on CPU 1.

Per step, with m2's definitions: achieved send rate, deliveries (each message reaches all 10
members' connections, its sender's included), per-delivery p50/p99/max (send to arrival), lost
deliveries, acks missing, disconnects, the server's CPU (percent of a core while sending, and
milliseconds per message sent). A step is clean when nothing is lost or unacked, p99 is
under ``--p99-limit-ms`` (100) and at least 98 % of the offered messages went out; stepping stops
after a step that loses deliveries or has a p99 over 1 s. ``max_clean_rate`` is the highest step
with every lower step clean. At the end the database is counted: every acked message stored once.

Usage: ``make bench-chat``, ``BENCH_ARGS="--server uvicorn" make bench-chat`` or
``BENCH_ARGS="--database postgres" make bench-chat``. Loopback only,
bounded (at most 1,000 clients, 20,000 msgs/s offered, 30 s per step).
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop
from picows import WSListener, WSMsgType, ws_connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import databases  # noqa: E402
from bench.connect_profile import Recording, table  # noqa: E402
from bench.fanout import SERVERS, cpu_seconds, delivery_counts, ms, server_env  # noqa: E402
from bench.progress import prepare  # noqa: E402

now = time.perf_counter
BODY = "x" * 64
DEFAULT_RATES = [100, 250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000]


class Step:
    """One step's counters, keyed by the message's index within the step (its ``client_msg_id``)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.sent_at: list[float] = []
        self.received: list[int] = []
        self.latencies: list[float] = []
        self.acks = 0

    def index(self, client_msg_id: str) -> int | None:
        head, _, number = client_msg_id.rpartition("-")
        return int(number) if head == self.prefix else None


class Listener(WSListener):
    """One member's connection: resolves ``welcome``; counts deliveries and acks of the current step."""

    step: Step | None = None  # the bench's current step, shared by every listener
    disconnects = 0

    def __init__(self):
        super().__init__()
        self.welcome = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        at = now()
        message = orjson.loads(frame.get_payload_as_bytes())
        kind, step = message["type"], Listener.step
        if kind == "chat.message" and step:
            i = step.index(message["data"]["client_msg_id"])
            if i is not None:
                step.received[i] += 1
                step.latencies.append(at - step.sent_at[i])
        elif kind == "ack" and step and step.index(message["ref"]) is not None:
            step.acks += 1
        elif kind == "welcome":
            self.welcome.set_result(True)

    def on_ws_disconnected(self, transport):
        Listener.disconnects += 1
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError("closed before welcome"))


async def connect_all(url: str, tokens: list[str], concurrency: int = 50) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(token):
        async with gate:
            transport, listener = await ws_connect(
                Listener, f"{url}?token={token}", enable_auto_pong=True, websocket_handshake_timeout=30
            )
            await asyncio.wait_for(listener.welcome, 30)
            return transport

    return await asyncio.gather(*(one(token) for token in tokens))


async def run_step(number: int, rate: int, args, clients: list, conversations: list[int], server_pid: int) -> dict:
    step = Listener.step = Step(f"s{number}")
    disconnects_before = Listener.disconnects
    total = int(rate * args.step_s)
    cpu_before, started = cpu_seconds(server_pid), now()
    sent = 0
    while sent < total:
        due = min(total, int((now() - started) * rate))
        while sent < due:
            member = sent % len(clients)
            ref = f"{step.prefix}-{sent}"
            step.sent_at.append(now())
            step.received.append(0)
            clients[member].send(
                WSMsgType.TEXT,
                orjson.dumps(
                    {
                        "type": "chat.send",
                        "ref": ref,
                        "data": {
                            "conversation_id": conversations[member // args.room_size],
                            "content": BODY,
                            "client_msg_id": ref,
                        },
                    }
                ),
            )
            sent += 1
        await asyncio.sleep(0.002)
    send_span = now() - started
    server_cpu = 100 * (cpu_seconds(server_pid) - cpu_before) / send_span
    expected = sent * args.room_size
    last_change, seen = now(), 0
    while len(step.latencies) < expected and now() - last_change < 5 and now() - started < args.step_s + 60:
        await asyncio.sleep(0.02)
        if len(step.latencies) != seen:
            seen, last_change = len(step.latencies), now()
    latencies = sorted(step.latencies)
    result = {
        "offered_rate": rate,
        "sent": sent,
        "achieved_rate": round(sent / send_span, 1),
        "acked": step.acks,
        "deliveries_expected": expected,
        **delivery_counts(latencies, step.received, args.room_size),
        "max_ms": ms(latencies[-1] if latencies else None),
        "disconnects": Listener.disconnects - disconnects_before,
        "server_cpu_pct": round(server_cpu, 1),
        # The same CPU over the messages sent: the figure that varies least between runs.
        "server_cpu_ms_per_message": round(server_cpu * 10 / (sent / send_span), 3) if sent else None,
    }
    result["clean"] = (
        result["lost_deliveries"] == 0
        and step.acks == sent
        and result["p99_ms"] is not None
        and result["p99_ms"] < args.p99_limit_ms
        and sent >= 0.98 * rate * args.step_s
        and result["disconnects"] == 0
    )
    Listener.step = None
    return result


async def measure(args, url: str, conversations: list[int], tokens: list[str], server_pid: int) -> dict:
    started = now()
    clients = await connect_all(url, tokens)
    out = {
        "clients": args.clients,
        "room_size": args.room_size,
        "step_s": args.step_s,
        "connect_s": round(now() - started, 2),
        "steps": [],
    }
    await asyncio.sleep(1)
    for number, rate in enumerate(args.rates):
        step = await run_step(number, rate, args, clients, conversations, server_pid)
        out["steps"].append(step)
        print(
            f"chat rate={rate}/s: achieved {step['achieved_rate']}/s, p99 {step['p99_ms']} ms, lost "
            f"{step['lost_deliveries']}, acked {step['acked']}/{step['sent']}, server CPU {step['server_cpu_pct']} %"
            f" ({step['server_cpu_ms_per_message']} ms per message), clean={step['clean']}",
            file=sys.stderr,
            flush=True,
        )
        if step["lost_deliveries"] or (step["p99_ms"] or 1e9) > 1000 or step["disconnects"]:
            break
        await asyncio.sleep(1)
    for transport in clients:
        transport.disconnect()
    out["max_clean_rate"] = 0
    for step in out["steps"]:
        if not step["clean"]:
            break
        out["max_clean_rate"] = step["offered_rate"]
    return out


def prepare_conversations(clients: int, room_size: int) -> tuple[list[int], list[str]]:
    """
    ``clients`` users in group conversations of ``room_size``; return the conversations' ids and the users' tokens.
    """
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from chat.models import Conversation, Membership

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"chat{i}", password="!") for i in range(clients)])
    conversations = Conversation.objects.bulk_create(
        [Conversation(kind=Conversation.Kind.GROUP, title=f"room {r}") for r in range(clients // room_size)]
    )
    Membership.objects.bulk_create(
        [Membership(user=user, conversation=conversations[i // room_size]) for i, user in enumerate(users)]
    )
    return [c.pk for c in conversations], [str(AccessToken.for_user(user)) for user in users]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="connected users (default %(default)s)")
    parser.add_argument("--room-size", type=int, default=10, help="members per conversation (default %(default)s)")
    parser.add_argument("--rates", type=int, nargs="+", default=DEFAULT_RATES, help="offered msgs/s, stepped")
    parser.add_argument("--step-s", type=float, default=6.0, help="seconds per step (default %(default)s)")
    parser.add_argument("--p99-limit-ms", type=float, default=100.0, help="clean-step p99 bound (default %(default)s)")
    parser.add_argument("--server", choices=SERVERS, default="daphne", help="the ASGI server (default %(default)s)")
    databases.add_arguments(parser)
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy throughout")
    args = parser.parse_args()
    if not (
        1 <= args.clients <= 1000
        and 1 <= args.room_size <= args.clients
        and args.clients % args.room_size == 0
        and all(0 < r <= 20_000 for r in args.rates)
        and 0 < args.step_s <= 30
    ):
        parser.error("bounds: 1 <= clients <= 1000 (a multiple of room-size), 0 < rate <= 20000, 0 < step-s <= 30")
    if not os.environ.get("REDIS_URL"):
        parser.error("REDIS_URL is required (make bench-chat starts a throwaway Redis)")

    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-chat-") as workdir:
        database_url, drop = databases.throwaway_database(args, workdir, "switchboard_chat")
        try:
            env = server_env(os.environ["REDIS_URL"], database_url)
            prepare(env)
            conversations, tokens = prepare_conversations(args.clients, args.room_size)
            server = SERVERS[args.server](env, cpus={0})
            recording = Recording(server.proc.pid) if args.profile else None
            try:
                result = uvloop.run(measure(args, server.url, conversations, tokens, server.proc.pid))
            finally:
                if recording is not None:
                    print(f"where the server's time went (samples: {recording.out}):", file=sys.stderr)
                    print(table(*recording.stop()), file=sys.stderr, flush=True)
                server.stop()
            from chat.models import Message

            # Acked means stored: the database must hold at least every acked message (at most one
            # per client_msg_id, which its unique constraint guarantees).
            result["acked"] = sum(step["acked"] for step in result["steps"])
            result["stored_messages"] = Message.objects.filter(conversation_id__in=conversations).count()
        finally:
            drop()
    result["server"] = args.server
    result["database"] = args.database
    print(json.dumps(result))
    print(
        f"chat ({args.server}, {args.database}): max clean rate {result['max_clean_rate']} msgs/s; "
        f"{result['stored_messages']} stored, {result['acked']} acked",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
