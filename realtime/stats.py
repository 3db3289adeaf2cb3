"""
Per-process counters behind ``/health`` and ``/api/websocket/stats``, and their sum over processes.

Each process counts here and in Prometheus (realtime.metrics) from the same calls, publishes a
snapshot to the connection registry every ``REALTIME["STATS_PUBLISH_S"]``, and the stats view
sums the snapshots of every live process (seed 001's ``GET /api/websocket/stats`` shape).
"""

import os
import socket
import time
from collections import deque

import psutil

from . import metrics


class ProcessStats:
    """Counters of one server process; the ``*_per_minute`` figures cover the last 60 s."""

    def __init__(self):
        self.started_at = time.time()
        self.connections_total = 0  # accepted since start
        self.active = 0
        self.authenticated = 0
        self.received = 0  # frames from clients
        self.sent = 0  # frames to clients
        self.broadcasts = 0  # events delivered to this process's members (one per group message)
        self.failed_sends = 0
        self.latency_ms_sum = 0.0
        self._samples: deque[tuple[float, int, int]] = deque()  # (monotonic s, sent, received)

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
        metrics.FRAMES_IN.labels(frame_type).inc()

    def frames_out(self, frame_type: str, count: int = 1) -> None:
        self.sent += count
        metrics.FRAMES_OUT.labels(frame_type).inc(count)

    def broadcast(self, frame_type: str, delivered: int, failed: int, latency_s: float) -> None:
        self.broadcasts += 1
        self.frames_out(frame_type, delivered)
        self.failed_sends += failed
        if failed:
            metrics.DELIVERY_FAILURES.inc(failed)
        self.latency_ms_sum += latency_s * 1000
        metrics.FANOUT_LATENCY.observe(latency_s)

    # -- snapshots ---------------------------------------------------------------------------

    def _per_minute(self) -> tuple[float, float]:
        now = time.monotonic()
        self._samples.append((now, self.sent, self.received))
        while now - self._samples[0][0] > 60:
            self._samples.popleft()
        then, sent, received = self._samples[0]
        span = max(now - then, 1.0)
        return (self.sent - sent) * 60 / span, (self.received - received) * 60 / span

    def snapshot(self, process_id: str, groups: dict[str, int]) -> dict:
        """This process's figures as published to the registry (JSON-safe; ``groups``: name -> local members)."""
        sent_pm, received_pm = self._per_minute()
        return {
            "process": process_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": int(self.started_at * 1000),
            "uptime_s": round(time.time() - self.started_at, 3),
            "updated_at": int(time.time() * 1000),
            "connections": {"total": self.connections_total, "active": self.active, "authenticated": self.authenticated},
            "messages": {
                "total_sent": self.sent,
                "total_received": self.received,
                "sent_per_minute": round(sent_pm, 1),
                "received_per_minute": round(received_pm, 1),
            },
            "broadcaster": {
                "total_broadcasts": self.broadcasts,
                "failed_sends": self.failed_sends,
                "latency_ms_sum": round(self.latency_ms_sum, 3),
            },
            "groups": groups,
            "memory_rss": psutil.Process().memory_info().rss,
        }


def aggregate(snapshots: list[dict]) -> dict:
    """
    Sum process snapshots into seed 001's stats shape (snake_case): ``server``, ``connections``,
    ``messages``, ``rooms`` (distinct groups, subscriptions, the 50 largest), ``memory`` (RSS
    summed over processes against this host's RAM), ``broadcaster`` and ``processes``.
    """
    connections = {"total": 0, "active": 0, "authenticated": 0}
    messages = {"total_sent": 0, "total_received": 0, "sent_per_minute": 0.0, "received_per_minute": 0.0}
    groups: dict[str, int] = {}
    broadcasts = failed = 0
    latency_sum = 0.0
    rss = 0
    for snap in snapshots:
        for key in connections:
            connections[key] += snap["connections"][key]
        for key in messages:
            messages[key] += snap["messages"][key]
        for name, members in snap["groups"].items():
            groups[name] = groups.get(name, 0) + members
        broadcasts += snap["broadcaster"]["total_broadcasts"]
        failed += snap["broadcaster"]["failed_sends"]
        latency_sum += snap["broadcaster"]["latency_ms_sum"]
        rss += snap["memory_rss"]
    total_memory = psutil.virtual_memory().total
    started = min((snap["started_at"] for snap in snapshots), default=None)
    largest = sorted(groups.items(), key=lambda item: (-item[1], item[0]))[:50]
    return {
        "server": {"processes": len(snapshots), "start_time": started,
                   "uptime_s": max((snap["uptime_s"] for snap in snapshots), default=0)},
        "connections": connections,
        "messages": {key: round(value, 1) if isinstance(value, float) else value for key, value in messages.items()},
        "rooms": {"total": len(groups), "clients": sum(groups.values()),
                  "largest": [{"group": name, "members": members} for name, members in largest]},
        "memory": {"used": rss, "total": total_memory, "percentage": round(100 * rss / total_memory, 2)},
        "broadcaster": {
            "total_broadcasts": broadcasts,
            "successful_sends": messages["total_sent"],
            "failed_sends": failed,
            "average_latency_ms": round(latency_sum / broadcasts, 3) if broadcasts else 0.0,
        },
        "processes": [
            {key: snap[key] for key in ("process", "host", "pid", "uptime_s", "updated_at")}
            | {"connections": snap["connections"]["active"]}
            for snap in snapshots
        ],
    }
