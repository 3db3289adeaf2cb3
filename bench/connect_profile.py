"""
Where a connect's server time goes (issue 25): py-spy samples of the server process, every
thread, while ``bench/idle.py --profile`` opens its connections, sorted into the steps of the
connect path (docs/architecture.md, "One connection"). Samples of a thread that was waiting
(the event loop's ``select``, an idle worker thread, a lock) are left out, so each share is of
the time some thread of the server was running.

``record(pid)`` starts py-spy; ``Recording.stop()`` returns the table. ``python bench/connect_profile.py
FILE`` prints the table of a raw (folded) py-spy recording.
"""

import collections
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE_HZ = 250
# Leaf frames of a thread that is waiting, not running.
WAITING = (
    "EpollSelector.select",
    "_worker (concurrent/futures/thread.py",
    "Condition.wait",
    "Lock.acquire",
    "_closing_connections.<locals>.run",  # the SQLite turn (realtime/db.py)
    # A worker thread that woke the event loop then waits here for the GIL, which py-spy counts as
    # running: 26 % of the samples of a reconnect storm, for a one-byte send.
    "BaseSelectorEventLoop._write_to_self",
)
# The step a sample belongs to: the first pattern found anywhere in its stack, in this order.
STEPS = (
    # A drain's part (bench/storm.py --profile samples the old process too): these run only there.
    ("drain: going_away frames and closes", "close_with"),
    ("disconnect: hub unsubscribe", "Hub.unsubscribe"),
    ("disconnect: registry and presence", "ServerProcess.connection_closed"),
    ("drain: the registry, together", "unregister_drained"),
    ("disconnect: the rest of the consumer's", "RealtimeConsumer.disconnect"),
    ("drain: leaving the layer and the registry", "ServerProcess.close"),
    ("JWT validation (simplejwt)", "get_validated_token"),
    ("user read (token's user)", "JWTAuthentication.get_user"),
    ("session cookie and its user", "auth.get_user"),
    ("presence and session groups (database)", "_open_session"),
    ("presence announcement (Redis)", "flush_collected"),
    # The coalesced round trips (realtime/delivery/coalesce.py) run in tasks of their own.
    ("presence announcement (Redis)", "outbox.py:"),
    ("connection registry (Redis)", "RedisConnectionRegistry.register"),
    ("connect-rate counter (Redis)", "count_connect"),
    ("connection registry and connect-rate counter (Redis, coalesced)", "RedisConnectionRegistry._pipeline"),
    ("hub subscribe (Redis group add)", "Hub.subscribe"),
    ("hub group adds and discards (Redis, coalesced)", "Hub._batch"),
    ("frame handlers (chat.join's resume pages, ...)", "DispatchMixin.handle_frame"),
    ("frame handlers (chat.join's resume pages, ...)", "handlers.py:"),  # their worker-thread part
    ("welcome frame", "send_frame"),
    ("accept", "AsyncWebsocketConsumer.accept"),
    ("Daphne access log", "AccessLogGenerator"),
    ("autobahn's per-connection debug pformat", "pformat"),
    ("worker-thread hops (asgiref, executor, waking the loop)", "SyncToAsync"),
    ("worker-thread hops (asgiref, executor, waking the loop)", "run_in_executor"),
    ("worker-thread hops (asgiref, executor, waking the loop)", "_chain_future"),
    ("the process's first connection: hub start, gc.freeze", "ServerProcess.start"),
    ("Redis commands' writes (redis-py task per command)", "_send_packed_command"),
    ("channel layer reads (presence events coming back)", "Hub._read"),
    ("Daphne's per-second check of every connection", "Server.application_checker"),
    ("rest of the consumer's connect", "RealtimeConsumer.connect"),
    ("Channels' ASGI stack (router, middleware)", "ASGIApp.__call__"),
    ("Daphne: HTTP request and WebSocket handshake", "WebRequest.process"),
    ("Daphne: HTTP request and WebSocket handshake", "autobahn"),
    ("Twisted: TCP accept, reads, writes", "twisted"),
    ("asyncio event loop", "asyncio"),
)


def categorize(lines) -> tuple[int, list[tuple[str, int]]]:
    """(running samples, [(step, samples)] largest first) of py-spy's raw output lines."""
    steps: collections.Counter = collections.Counter()
    running = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = stack.split(";")[1:]  # the first is the thread
        if not frames or frames[-1].startswith(WAITING) or "selectors.py" in frames[-1]:
            continue
        running += int(count)
        step = next((name for name, pattern in STEPS if any(pattern in frame for frame in frames)), "other")
        steps[step] += int(count)
    return running, steps.most_common()


def table(running: int, steps: list[tuple[str, int]], ms_per_connect: float | None = None) -> str:
    """The steps as text lines: share of running samples, and of ``ms_per_connect`` when given."""
    lines = [f"{running} running samples ({RATE_HZ} Hz, every thread)"]
    for name, samples in steps:
        share = samples / max(1, running)
        cost = f"{share * ms_per_connect:6.2f} ms" if ms_per_connect else ""
        lines.append(f"{100 * share:5.1f}% {cost}  {name}")
    return "\n".join(lines)


class Recording:
    """A py-spy recording of process ``pid`` in progress."""

    def __init__(self, pid: int):
        self.out = Path(tempfile.mkstemp(prefix="connect-profile-", suffix=".folded")[1])
        self.proc = subprocess.Popen(
            [str(PY_SPY), "record", "-p", str(pid), "--threads", "--rate", str(RATE_HZ), "-f", "raw"]
            + ["-o", str(self.out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> tuple[int, list[tuple[str, int]]]:
        """Stop sampling; return ``categorize`` of what was recorded (the raw samples stay in ``self.out``)."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        return categorize(self.out.read_text().splitlines())


if __name__ == "__main__":
    print(table(*categorize(Path(sys.argv[1]).read_text().splitlines())))
