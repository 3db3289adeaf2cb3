"""
Operations: what support staff and monitoring see of the real-time core.

- ``views`` and ``urls``: ``GET /health``, ``GET /api/websocket/stats`` (staff), ``GET /metrics``;
- ``stats``: every process's figures summed (``cluster_stats``);
- ``metrics``: the Prometheus exposition of the counters in ``realtime.metrics``;
- ``admin``: the user admin with presence, open connections and "Disconnect";
- ``logs``: the logging filter that keeps tokens out of log lines.

This module imports nothing at load time: ``settings.LOGGING`` loads ``realtime.ops.logs`` before
Django's apps are ready, and everything else here needs them.
"""

__all__ = ["cluster_stats"]


def cluster_stats() -> dict:
    """Every live server process's figures summed (``realtime.ops.stats.aggregate``), at most
    ``REALTIME["STATS_PUBLISH_S"]`` old: seed 001's ``/api/websocket/stats`` shape."""
    from .stats import cluster_stats

    return cluster_stats()
