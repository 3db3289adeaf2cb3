"""
Batch-task REST API (DRF): the same services as the socket handlers and the admin, so a pause
from REST is announced exactly like one from a socket. Errors use the envelope's codes
(realtime/rest.py): 400 invalid, 404 not_found (also another user's task: the two look alike),
409 conflict; 403 forbidden only for the producer endpoint's wrong ``X-Progress-Token`` (a
credential check, not visibility; docs/protocol.md, "not_found or forbidden").
"""

import secrets

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.errors import Conflict, Forbidden, NotFound
from realtime.ops import cluster_stats
from realtime.paging import PageIn, page_schema
from realtime.validation import validate

from . import services
from .events import document_data, task_snapshot
from .models import BatchTask
from .producers import cache_figures, report
from .selectors import access_task, task_page
from .serializers import CreateTaskIn, ProgressIn, TaskOut

Status = BatchTask.Status


class TaskListView(APIView):
    """
    ``/api/tasks/``: a page of the caller's tasks, newest first (``?limit=&cursor=``, as
    ``task.list``); create one from an upload (multipart).
    """

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="tasks_list", parameters=[PageIn], responses=page_schema("TaskPage", "tasks", TaskOut(many=True))
    )
    def get(self, request):
        args = validate(PageIn, request.query_params.dict(), text_input=True)
        return Response(task_page(request.user, limit=args["limit"], cursor=args.get("cursor")).reply("tasks"))

    @extend_schema(request={"multipart/form-data": CreateTaskIn}, responses={201: TaskOut})
    def post(self, request):
        args = validate(CreateTaskIn, request.data)
        task = services.create_task(owner=request.user, **args)
        # The owner alone sees the token external producers use (POST /api/tasks/{id}/progress).
        return Response({**task_snapshot(task), "progress_token": task.progress_token}, status=status.HTTP_201_CREATED)


class TaskDetailView(APIView):
    """``/api/tasks/{id}/``: the task and its documents (owner or staff)."""

    @extend_schema(responses=TaskOut)
    def get(self, request, pk: int):
        task = access_task(request.user, pk)
        documents = [document_data(d) for d in task.documents.all()]
        return Response({**task_snapshot(task), "documents": documents, "download": bool(task.result)})


class TaskCommandView(APIView):
    """``POST /api/tasks/{id}/pause|resume|cancel``: as the socket's ``task.pause`` etc."""

    command: str = ""
    STATUS = {"pause": Status.PAUSED, "resume": Status.RUNNING, "cancel": Status.CANCELLED}

    @extend_schema(request=None, responses={200: TaskOut, 409: None})
    def post(self, request, pk: int):
        task = access_task(request.user, pk)
        return Response(task_snapshot(services.request(task.pk, self.STATUS[self.command])))


class TaskDownloadView(APIView):
    """``GET /api/tasks/{id}/download``: the ZIP of a completed task (owner or staff); 409 before."""

    @extend_schema(responses={(200, "application/zip"): bytes, 409: None})
    def get(self, request, pk: int):
        task = access_task(request.user, pk)
        if task.status != Status.COMPLETED or not task.result:
            raise Conflict("The documents are not ready", details={"task": task_snapshot(task)})
        return FileResponse(
            task.result.open("rb"), as_attachment=True, filename=f"{task.name}.zip", content_type="application/zip"
        )


class TaskProgressView(APIView):
    """
    ``POST /api/tasks/{id}/progress``: progress from a producer outside Django, authenticated by
    the task's ``progress_token`` in the ``X-Progress-Token`` header (not a user's credentials).
    Coalesced like the worker's reports (``coalesced: true`` in the answer: held back, sent when the
    interval ends); ``status`` running/completed/failed/cancelled moves the task.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=ProgressIn,
        responses=TaskOut,
        parameters=[OpenApiParameter("X-Progress-Token", str, OpenApiParameter.HEADER, required=True)],
    )
    def post(self, request, pk: int):
        task = BatchTask.objects.filter(pk=pk).first()
        if task is None:
            raise NotFound("Task not found")
        if not secrets.compare_digest(request.headers.get("X-Progress-Token", ""), task.progress_token):
            raise Forbidden("Wrong or missing X-Progress-Token")
        task, coalesced = report(task, **validate(ProgressIn, request.data))
        # Coalesced: held back, it goes out (and is stored) when the interval ends.
        return Response({**task_snapshot(task), "coalesced": coalesced})


def broadcaster_stats(stats: dict | None = None) -> dict:
    """
    Seed 001's broadcaster figures, snake_case: fan-out summed over every server process
    (``stats``: realtime.ops.cluster_stats, read when not given) plus this process's producer
    cache (coalescing). The native and the compatibility endpoints both show these.
    """
    stats = cluster_stats() if stats is None else stats
    broadcaster = stats["broadcaster"]
    return {
        "total_broadcasts": broadcaster["total_broadcasts"],
        "total_messages": stats["messages"]["total_sent"],
        "successful_sends": broadcaster["successful_sends"],
        "failed_sends": broadcaster["failed_sends"],
        # Per delivery, publish -> socket write, over the last latency_window_s (realtime.delivery.stats).
        "average_latency_ms": broadcaster["average_latency_ms"],
        "latency_window_s": broadcaster["latency_window_s"],
        "latency_deliveries": broadcaster["latency_deliveries"],
        **cache_figures(),
        "last_update": max((p["updated_at"] for p in stats["processes"]), default=None),
    }


class BroadcasterStatsView(APIView):
    """
    ``GET /api/broadcaster/stats`` (staff): seed 001's broadcaster figures, snake_case, summed over
    every server process (fan-out) plus this process's producer cache (coalescing).
    """

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(broadcaster_stats())


class Seed001BroadcasterStatsView(APIView):
    """
    ``GET /compat/001/api/broadcaster/stats`` (staff): ``/api/broadcaster/stats`` in seed 001's
    camelCase fields (docs/migration.md, "Seed 001"); ``averageLatency`` in ms.
    """

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        figures = broadcaster_stats()
        return Response(
            {
                "totalBroadcasts": figures["total_broadcasts"],
                "totalMessages": figures["total_messages"],
                "successfulSends": figures["successful_sends"],
                "failedSends": figures["failed_sends"],
                "averageLatency": figures["average_latency_ms"],
                "queueSize": figures["queue_size"],
                "cacheSize": figures["cache_size"],
                "lastUpdate": figures["last_update"],
                "latencyWindowS": figures["latency_window_s"],
                "latencyDeliveries": figures["latency_deliveries"],
            }
        )


class Seed001WebSocketStatsView(APIView):
    """
    ``GET /compat/001/api/websocket/stats`` (staff): ``/api/websocket/stats`` (realtime.ops.cluster_stats)
    in seed 001's camelCase shape: ``server`` (``uptime`` and ``startTime`` in ms), ``connections``,
    ``messages``, ``rooms``, ``memory``.
    """

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        stats = cluster_stats()
        server, messages = stats["server"], stats["messages"]
        return Response(
            {
                "server": {
                    "uptime": round(server["uptime_s"] * 1000),
                    "startTime": server["start_time"],
                    "processes": server["processes"],
                },
                "connections": dict(stats["connections"]),
                "messages": {
                    "totalSent": messages["total_sent"],
                    "totalReceived": messages["total_received"],
                    "sentPerMinute": messages["sent_per_minute"],
                    "receivedPerMinute": messages["received_per_minute"],
                },
                "rooms": {"total": stats["rooms"]["total"], "clients": stats["rooms"]["clients"]},
                "memory": dict(stats["memory"]),
            }
        )
