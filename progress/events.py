"""Progress group names and event payloads: the only place that builds them."""

from .models import BatchTask, TaskDocument

# Status -> the event announcing it (docs/protocol.md, "Batch tasks").
STATUS_EVENTS = {
    BatchTask.Status.RUNNING: "task.started",
    BatchTask.Status.PAUSED: "task.paused",
    BatchTask.Status.COMPLETED: "task.completed",
    BatchTask.Status.FAILED: "task.failed",
    BatchTask.Status.CANCELLED: "task.cancelled",
}


def task_group(task_id: int) -> str:
    """Connections subscribed to one task (``task.subscribe``): ``progress.task.<id>``."""
    return f"progress.task.{task_id}"


def task_snapshot(task: BatchTask) -> dict:
    """Seed 001's progress payload (snake_case), plus ``version``: every task event's ``data``."""
    return {
        "task_id": task.pk,
        "name": task.name,
        "status": task.status,
        "progress": task.progress,
        "current": task.current,
        "total": task.total,
        "succeeded": task.succeeded,
        "failed": task.failed,
        "stage": task.stage,
        "eta_ms": task.eta_ms,
        "message": task.message,
        "error": task.error,
        "version": task.version,
    }


def document_data(document: TaskDocument) -> dict:
    """``task.document_generated`` / ``task.document_failed`` data (``index`` is the 0-based data row)."""
    return {
        "task_id": document.task_id,
        "index": document.index,
        "status": document.status,
        "output_name": document.output_name,
        "error": document.error,
    }
