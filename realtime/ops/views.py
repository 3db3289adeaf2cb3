"""
Operations endpoints: ``GET /health``, ``GET /api/websocket/stats`` (staff), ``GET /metrics``.

Figures cover every server process: each publishes a snapshot to the connection registry every
``REALTIME["STATS_PUBLISH_S"]`` (realtime.delivery.stats), so they are at most that many seconds old.
"""

import time

import psutil
from django.db import connection
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.delivery import RedisConnectionRegistry, get_registry

from . import metrics
from .stats import aggregate

# No Redis configured (REDIS_URL, REDIS_SENTINELS): one process, registry in memory (development); not a failure.
NOT_CONFIGURED = "not configured (single process)"


def _check(fn) -> str:
    try:
        fn()
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def health(request):
    """
    ``GET /health``: 200 ``{"status": "healthy", ...}`` when the database and Redis (if configured) answer,
    503 ``{"status": "unhealthy", "checks": {name: "error: ..."}}`` when either does not (seed 001).
    ``uptime_s`` is the answering process's; ``websocket`` and ``broadcaster`` sum every process.
    """
    registry = get_registry()
    redis_check = _check(registry.ping) if isinstance(registry, RedisConnectionRegistry) else NOT_CONFIGURED
    checks = {"database": _check(_database_ping), "redis": redis_check}
    healthy = all(value in ("ok", NOT_CONFIGURED) for value in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": int(time.time() * 1000),
        "uptime_s": round(time.time() - psutil.Process().create_time(), 3),
        "checks": checks,
    }
    if not checks["redis"].startswith("error"):
        stats = aggregate(registry.processes())
        body["websocket"] = {
            "processes": stats["server"]["processes"],
            "connections": stats["connections"]["active"],
            "messages": stats["messages"]["total_sent"] + stats["messages"]["total_received"],
        }
        body["broadcaster"] = stats["broadcaster"]
    return JsonResponse(body, status=200 if healthy else 503)


class WebSocketStatsView(APIView):
    """``GET /api/websocket/stats`` (staff): seed 001's stats, summed over every live server process."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(aggregate(get_registry().processes()))


def prometheus_metrics(request):
    """``GET /metrics``: Prometheus text exposition (every process with PROMETHEUS_MULTIPROC_DIR)."""
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
