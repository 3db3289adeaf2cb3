"""
A batch task's state machine: every status change, progress report, document record and lease
renewal, and the event each publishes after commit (docs/protocol.md, "Batch tasks").

The worker (progress/jobs.py, progress/reporter.py) writes here; so do the user actions in
progress/services.py, which queue the worker's job. This module imports neither, so the worker
and the services import it without an import cycle.

Ordering: each write takes the task's row lock and bumps ``version``; progress for a task that
reached a final state is dropped, so no ``task.progress`` can follow ``task.completed``.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realtime.errors import Conflict
from realtime.publish import publish_on_commit

from .events import STATUS_EVENTS, document_data, task_group, task_snapshot
from .models import BatchTask, TaskDocument

Status = BatchTask.Status

# status -> the statuses it may move to
TRANSITIONS = {
    Status.PENDING: {Status.RUNNING, Status.CANCELLED, Status.FAILED},
    Status.RUNNING: {Status.PAUSED, Status.COMPLETED, Status.FAILED, Status.CANCELLED},
    Status.PAUSED: {Status.RUNNING, Status.CANCELLED, Status.FAILED},
}


def worker_checkpoint(task_id: int) -> str:
    """Renew the worker's lease on the task (``heartbeat_at``) and return its current status."""
    BatchTask.objects.filter(pk=task_id).update(heartbeat_at=timezone.now())
    return BatchTask.objects.values_list("status", flat=True).get(pk=task_id)


def fail_abandoned_tasks() -> int:
    """
    Fail every running or paused task whose worker's lease ran out (no checkpoint for
    ``settings.TASK_LEASE_S`` seconds): its worker died. Return how many were failed.

    Every server process runs this every ``settings.TASK_SWEEP_S`` seconds (progress/apps.py,
    realtime.periodic), so no task stays ``running`` for ever and reads never write. Safe to run
    in several processes at once: each task's lease is checked again under its row lock.
    """
    expired = timezone.now() - timedelta(seconds=settings.TASK_LEASE_S)
    live = (Status.RUNNING, Status.PAUSED)
    candidates = list(BatchTask.objects.filter(status__in=live, heartbeat_at__lt=expired).values_list("pk", flat=True))
    failed = 0
    for task_id in candidates:
        with transaction.atomic():
            task = BatchTask.objects.select_for_update().get(pk=task_id)
            if task.status not in live or task.heartbeat_at is None or task.heartbeat_at >= expired:
                continue  # its worker checkpointed, or it finished, meanwhile
            transition(
                task_id,
                Status.FAILED,
                error=f"The worker stopped responding (no heartbeat for {settings.TASK_LEASE_S} s)",
            )
            failed += 1
    return failed


def record_document(task_id: int, index: int, *, output_name: str = "", error: str = "") -> TaskDocument:
    """Store row ``index``'s document (generated, or failed with ``error``) and publish its event."""
    status = TaskDocument.Status.FAILED if error else TaskDocument.Status.GENERATED
    document, _ = TaskDocument.objects.update_or_create(
        task_id=task_id, index=index, defaults={"status": status, "output_name": output_name, "error": error[:500]}
    )
    event = "task.document_failed" if error else "task.document_generated"
    publish_on_commit(task_group(task_id), event, document_data(document))
    return document


def _save(task: BatchTask, event: str, fields: list[str]) -> BatchTask:
    task.version += 1
    task.save(update_fields=[*fields, "version", "updated_at"])
    publish_on_commit(task_group(task.pk), event, task_snapshot(task))
    return task


def transition(task_id: int, status: str, *, message: str | None = None, error: str = "", **figures) -> BatchTask:
    """
    Move the task to ``status`` and publish its event (``task.started``, ``task.paused``,
    ``task.resumed`` for paused -> running, ``task.completed``, ``task.failed``,
    ``task.cancelled``) with the full snapshot. ``figures`` (current, total, succeeded, failed,
    stage) are saved with it, so the event carries the newest counts.

    Raise ``Conflict`` (with the current snapshot in ``details``) if the move is not allowed, for
    example pausing a completed task.
    """
    with transaction.atomic():
        task = BatchTask.objects.select_for_update().get(pk=task_id)
        if status not in TRANSITIONS.get(task.status, ()):
            raise Conflict(f"A {task.status} task cannot become {status}", details={"task": task_snapshot(task)})
        event = "task.resumed" if (task.status, status) == (Status.PAUSED, Status.RUNNING) else STATUS_EVENTS[status]
        fields = ["status", *figures]
        if task.status == Status.PENDING and status == Status.RUNNING:
            task.started_at = timezone.now()
            fields.append("started_at")
        if status in BatchTask.FINAL:
            task.finished_at = timezone.now()
            task.eta_ms = 0 if status == Status.COMPLETED else None
            fields += ["finished_at", "eta_ms"]
        if message is not None:
            task.message = message
            fields.append("message")
        if error:
            task.error = error
            fields.append("error")
        task.status = status
        for name, value in figures.items():
            setattr(task, name, value)
        return _save(task, event, fields)


def record_progress(task_id: int, **figures) -> BatchTask | None:
    """
    Save progress ``figures`` (current, total, succeeded, failed, stage, message, eta_ms) and
    publish ``task.progress``. Return None, saving nothing, when the task is no longer running
    or paused (a late report never follows the final event).
    """
    with transaction.atomic():
        task = BatchTask.objects.select_for_update().get(pk=task_id)
        if task.status in BatchTask.FINAL:
            return None
        for name, value in figures.items():
            setattr(task, name, value)
        return _save(task, "task.progress", list(figures))
