"""
Per-process counters behind ``/health`` and ``/api/websocket/stats``, and their sum over processes.

Each process counts here and in Prometheus (realtime.metrics) from the same calls, publishes a
snapshot to the connection registry every ``REALTIME["STATS_PUBLISH_S"]``, and the stats view
sums the snapshots of every live process (seed 001's ``GET /api/websocket/stats`` shape).

``broadcaster.average_latency_ms`` is delivery latency: for each event written into a client's
socket in the last ``WINDOW_S`` (60 s), the milliseconds from its publish (realtime.publish, the
event's ``ts``) to that write, averaged over those deliveries on every process. It used to be one
sample per event and process, to the *last* member's write, averaged since the process started,
so a past burst or a large group kept it far above what any client saw (issue 20).
"""

import os
import socket
import time
from collections import deque

import psutil
from prometheus_client import Counter

from realtime import metrics

# The span of the windowed figures (``*_per_minute``, ``average_latency_ms``), in seconds. A
# window ends at a snapshot and starts at the latest earlier snapshot at least WINDOW_S old (or at
# the process start), so it spans WINDOW_S to WINDOW_S + STATS_PUBLISH_S.
WINDOW_S = 60


class ProcessStats:
    """Counters of one server process; the ``*_per_minute`` and latency figures cover the last ``WINDOW_S``."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock  # replaceable in tests
        self.started_at = time.time()
        self.connections_total = 0  # accepted since start
        self.active = 0
        self.authenticated = 0
        self.received = 0  # frames from clients
        self.sent = 0  # frames to clients
        self.broadcasts = 0  # events delivered to this process's members (one per group message)
        self.failed_sends = 0
        self.deliveries_timed = 0  # event writes into a socket whose latency is in delivery_latency_ms_sum
        self.delivery_latency_ms_sum = 0.0  # publish -> write, summed over those writes
        # (clock s, sent, received, deliveries_timed, delivery_latency_ms_sum) at start and at each snapshot
        self._samples: deque[tuple[float, int, int, int, float]] = deque([(self.clock(), 0, 0, 0, 0.0)])
        # Prometheus's child counter per frame type: ``labels()`` checks and locks on every call,
        # 2 % of the event loop at 1,000 chat messages/s (a frame in, its ack and its event out).
        self._frames_in: dict[str, Counter] = {}
        self._frames_out: dict[str, Counter] = {}

    # -- counting (the consumer and the hub call these) -------------------------------------

    def opened(self) -> None:
        self.connections_total += 1
        self.active += 1
        metrics.CONNECTIONS_OPENED.inc()
        metrics.CONNECTIONS.labels("anonymous").inc()

    def session_started(self) -> None:
        self.authenticated += 1
        metrics.CONNECTIONS.labels("anonymous").dec()
        metrics.CONNECTIONS.labels("authenticated").inc()

    def closed(self, was_authenticated: bool) -> None:
        self.active -= 1
        state = "authenticated" if was_authenticated else "anonymous"
        if was_authenticated:
            self.authenticated -= 1
        metrics.CONNECTIONS.labels(state).dec()

    def frame_in(self, frame_type: str) -> None:
        self.received += 1
        counter = self._frames_in.get(frame_type)
        if counter is None:
            counter = self._frames_in[frame_type] = metrics.FRAMES_IN.labels(frame_type)
        counter.inc()

    def frames_out(self, frame_type: str, count: int = 1) -> None:
        self.sent += count
        counter = self._frames_out.get(frame_type)
        if counter is None:
            counter = self._frames_out[frame_type] = metrics.FRAMES_OUT.labels(frame_type)
        counter.inc(count)

    def broadcast(
        self,
        frame_type: str,
        delivered: int,
        failed: int,
        fanout_latency_s: float,
        delivery_latency_s_sum: float = 0.0,
        timed: int = 0,
    ) -> None:
        """
        Count one event handed to this process's members: ``delivered`` and ``failed`` writes,
        ``fanout_latency_s`` from publish to the last write (the Prometheus histogram), and the
        publish-to-write latencies of ``timed`` of the delivered writes, summed.
        """
        self.broadcasts += 1
        self.frames_out(frame_type, delivered)
        self.failed_sends += failed
        if failed:
            metrics.DELIVERY_FAILURES.inc(failed)
        self.deliveries_timed += timed
        self.delivery_latency_ms_sum += delivery_latency_s_sum * 1000
        metrics.FANOUT_LATENCY.observe(fanout_latency_s)

    # -- snapshots ---------------------------------------------------------------------------

    def _window(self) -> tuple[float, float, int, float]:
        """Sent and received per minute, deliveries timed and their latency sum (ms), over the last ``WINDOW_S``."""
        now = self.clock()
        self._samples.append((now, self.sent, self.received, self.deliveries_timed, self.delivery_latency_ms_sum))
        while now - self._samples[1][0] >= WINDOW_S:
            self._samples.popleft()
        then, sent, received, timed, latency_ms_sum = self._samples[0]
        span = max(now - then, 1.0)
        return (
            (self.sent - sent) * 60 / span,
            (self.received - received) * 60 / span,
            self.deliveries_timed - timed,
            self.delivery_latency_ms_sum - latency_ms_sum,
        )

    def snapshot(self, process_id: str, groups: dict[str, int]) -> dict:
        """This process's figures as published to the registry (JSON-safe; ``groups``: name -> local members)."""
        sent_pm, received_pm, window_timed, window_latency_ms_sum = self._window()
        return {
            "process": process_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": int(self.started_at * 1000),
            "uptime_s": round(time.time() - self.started_at, 3),
            "updated_at": int(time.time() * 1000),
            "connections": {
                "total": self.connections_total,
                "active": self.active,
                "authenticated": self.authenticated,
            },
            "messages": {
                "total_sent": self.sent,
                "total_received": self.received,
                "sent_per_minute": round(sent_pm, 1),
                "received_per_minute": round(received_pm, 1),
            },
            "broadcaster": {
                "total_broadcasts": self.broadcasts,
                "failed_sends": self.failed_sends,
                # Deliveries written in the last WINDOW_S and their publish -> write latencies (ms), summed.
                "window_deliveries": window_timed,
                "window_latency_ms_sum": round(window_latency_ms_sum, 3),
            },
            "groups": groups,
            "memory_rss": psutil.Process().memory_info().rss,
        }
