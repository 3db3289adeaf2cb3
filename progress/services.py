"""
Every write to a batch task, and the event it publishes after commit (docs/protocol.md, "Batch
tasks"). The reporter (progress/reporter.py), the socket handlers, REST and the admin all write here.

Ordering: each write takes the task's row lock and bumps ``version``; progress for a task that
reached a final state is dropped, so no ``task.progress`` can follow ``task.completed``.
"""

from django.db import transaction
from django.utils import timezone

from realtime.errors import Conflict
from realtime.publish import publish_on_commit

from .events import STATUS_EVENTS, task_group, task_snapshot
from .models import BatchTask

Status = BatchTask.Status

# status -> the statuses it may move to
TRANSITIONS = {
    Status.PENDING: {Status.RUNNING, Status.CANCELLED, Status.FAILED},
    Status.RUNNING: {Status.PAUSED, Status.COMPLETED, Status.FAILED, Status.CANCELLED},
    Status.PAUSED: {Status.RUNNING, Status.CANCELLED, Status.FAILED},
}


def create_task(*, owner, name: str, total: int = 0) -> BatchTask:
    """Create a ``pending`` task of ``total`` documents owned by ``owner``."""
    return BatchTask.objects.create(owner=owner, name=name, total=total)


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
