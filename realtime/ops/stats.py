"""
The figures of every server process summed: what ``/health``, ``/api/websocket/stats`` and seed
001's broadcaster stats show. Each process publishes its ``ProcessStats`` snapshot to the
connection registry every ``REALTIME["STATS_PUBLISH_S"]`` (realtime.delivery.process).
"""

import psutil

from realtime.delivery import WINDOW_S, get_registry

__all__ = ["aggregate", "cluster_stats"]


def aggregate(snapshots: list[dict]) -> dict:
    """
    Sum process snapshots into seed 001's stats shape (snake_case): ``server``, ``connections``,
    ``messages``, ``rooms`` (distinct groups, subscriptions, the 50 largest), ``memory`` (RSS
    summed over processes against this host's RAM), ``broadcaster`` and ``processes``.
    """
    connections = {"total": 0, "active": 0, "authenticated": 0}
    messages = {"total_sent": 0, "total_received": 0, "sent_per_minute": 0.0, "received_per_minute": 0.0}
    groups: dict[str, int] = {}
    broadcasts = failed = window_deliveries = 0
    window_latency_ms_sum = 0.0
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
        # .get: a process still running the previous release publishes no window figures.
        window_deliveries += snap["broadcaster"].get("window_deliveries", 0)
        window_latency_ms_sum += snap["broadcaster"].get("window_latency_ms_sum", 0.0)
        rss += snap["memory_rss"]
    total_memory = psutil.virtual_memory().total
    started = min((snap["started_at"] for snap in snapshots), default=None)
    largest = sorted(groups.items(), key=lambda item: (-item[1], item[0]))[:50]
    return {
        "server": {
            "processes": len(snapshots),
            "start_time": started,
            "uptime_s": max((snap["uptime_s"] for snap in snapshots), default=0),
        },
        "connections": connections,
        "messages": {key: round(value, 1) if isinstance(value, float) else value for key, value in messages.items()},
        "rooms": {
            "total": len(groups),
            "clients": sum(groups.values()),
            "largest": [{"group": name, "members": members} for name, members in largest],
        },
        "memory": {"used": rss, "total": total_memory, "percentage": round(100 * rss / total_memory, 2)},
        "broadcaster": {
            "total_broadcasts": broadcasts,
            "successful_sends": messages["total_sent"],
            "failed_sends": failed,
            # Per delivery, publish -> write into the socket, over the last WINDOW_S (module docstring);
            # 0.0 when nothing was delivered in the window.
            "average_latency_ms": round(window_latency_ms_sum / window_deliveries, 3) if window_deliveries else 0.0,
            "latency_window_s": WINDOW_S,
            "latency_deliveries": window_deliveries,
        },
        "processes": [
            {key: snap[key] for key in ("process", "host", "pid", "uptime_s", "updated_at")}
            | {"connections": snap["connections"]["active"]}
            for snap in snapshots
        ],
    }


def cluster_stats() -> dict:
    """``aggregate`` over the snapshots of every live server process (at most STATS_PUBLISH_S old)."""
    return aggregate(get_registry().processes())
