"""
Reporters for producers outside Django (``POST /api/tasks/{id}/progress``), one per task and
server process, so their updates are coalesced like the worker's (progress/reporter.py). The
cache holds the ``PRODUCER_CACHE_SIZE`` most recently used tasks.
"""

import threading
from collections import OrderedDict

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


def cache_figures() -> dict:
    """``{"cache_size": reporters cached, "queue_size": updates held back by coalescing}``."""
    with _lock:
        return {"cache_size": len(_reporters), "queue_size": sum(r.has_held() for r in _reporters.values())}
