"""
Reporters for producers outside Django (``POST /api/tasks/{id}/progress``), one per task and
server process, so their updates are coalesced like the worker's (progress/reporter.py). The
cache holds the ``PRODUCER_CACHE_SIZE`` most recently used tasks.
"""

import threading
from collections import OrderedDict

from .models import BatchTask
from .reporter import ProgressReporter

PRODUCER_CACHE_SIZE = 1000

_reporters: "OrderedDict[int, ProgressReporter]" = OrderedDict()
_lock = threading.Lock()


def reporter_for(task_id: int) -> ProgressReporter:
    """Return this process's reporter of ``task_id`` (created on first use)."""
    with _lock:
        reporter = _reporters.pop(task_id, None) or ProgressReporter(task_id)
        _reporters[task_id] = reporter
        while len(_reporters) > PRODUCER_CACHE_SIZE:
            _reporters.popitem(last=False)
        return reporter


def report(task: BatchTask, *, status: str | None = None, error: str = "", **figures) -> tuple[BatchTask, bool]:
    """
    Apply one external producer's report to ``task`` through its cached reporter: ``status``
    ``running`` starts a pending task, a final status finishes it (never coalesced), anything else
    is progress (coalesced). Return the task as stored and whether the report was held back.
    """
    reporter = reporter_for(task.pk)
    if status == BatchTask.Status.RUNNING and task.status == BatchTask.Status.PENDING:
        reporter.start(total=figures.get("total", task.total))
    elif status in BatchTask.FINAL:
        final = {k: v for k, v in figures.items() if k in ("current", "total", "succeeded", "failed", "stage")}
        return reporter.finish(status, message=figures.get("message"), error=error, **final), False
    sent = reporter.progress(**figures)
    task.refresh_from_db()
    return task, not sent


def cache_figures() -> dict:
    """``{"cache_size": reporters cached, "queue_size": updates held back by coalescing}``."""
    with _lock:
        return {"cache_size": len(_reporters), "queue_size": sum(r.has_held() for r in _reporters.values())}
