"""
Prometheus counters of the real-time core (prometheus-client), incremented by every layer and
served at ``GET /metrics`` (realtime.ops.metrics).

With several server processes on one host, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by them (deploy/): every process writes its values there and ``/metrics``,
whichever process answers, reports the sum (prometheus-client's multiprocess mode). Without it,
``/metrics`` reports the answering process only.

Frame-type labels are bounded: a type no handler is registered for is counted as ``unknown``.
"""

import os

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)

__all__ = [
    "CLOSES",
    "CONNECTIONS",
    "CONNECTIONS_OPENED",
    "DELIVERY_FAILURES",
    "ERRORS",
    "FANOUT_LATENCY",
    "FRAMES_IN",
    "FRAMES_OUT",
    "LIMIT_REFUSALS",
    "LOST_PUBLISHES",
    "RATE_LIMIT_HITS",
    "SLOW_CLIENT_CLOSES",
    "mark_this_process_dead",
]

CONNECTIONS = Gauge("switchboard_ws_connections", "Open WebSocket connections", ["state"], multiprocess_mode="livesum")
CONNECTIONS_OPENED = Counter("switchboard_ws_connections_opened", "WebSocket connections accepted")
CLOSES = Counter("switchboard_ws_closes", "Connections the server closed, by close code", ["code"])
FRAMES_IN = Counter("switchboard_ws_frames_received", "Frames received from clients, by type", ["type"])
FRAMES_OUT = Counter("switchboard_ws_frames_sent", "Frames written to clients, by type", ["type"])
ERRORS = Counter("switchboard_ws_errors", "Error frames sent, by error code", ["code"])
RATE_LIMIT_HITS = Counter("switchboard_ws_rate_limit_hits", "Frames refused by a rate limit, by bucket", ["bucket"])
LIMIT_REFUSALS = Counter("switchboard_ws_limit_refusals", "Connections or subscriptions refused by a cap", ["limit"])
ACCEPT_PAUSES = Counter(
    "switchboard_ws_accept_pauses",
    "Times the process stopped accepting at MAX_HANDSHAKES_IN_PROGRESS (new connections waited in the listen backlog)",
)
DELIVERY_FAILURES = Counter(
    "switchboard_ws_delivery_failures", "Event deliveries that could not be written (socket gone)"
)
LOST_PUBLISHES = Counter(
    "switchboard_lost_publishes", "Publishes that failed or were refused over capacity (clients told with resync)"
)
SLOW_CLIENT_CLOSES = Counter(
    "switchboard_ws_slow_client_closes", "Connections closed (4413) because the client stopped reading"
)
FANOUT_LATENCY = Histogram(
    "switchboard_fanout_latency_seconds",
    "From publish to the last local member's write, per process and event",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def mark_this_process_dead() -> None:
    """Drop this process's live gauges from the multiprocess directory (graceful shutdown)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)
