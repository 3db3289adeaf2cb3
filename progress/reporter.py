"""
``ProgressReporter``: how any producer reports a task's progress (seed 001's progress broadcaster).

    reporter = ProgressReporter(task_id)
    reporter.start(total=1000)
    for i, row in enumerate(rows, 1):
        ...
        reporter.progress(current=i, succeeded=ok, failed=bad, stage="rendering")
    reporter.finish("completed")

Callable from any process and any sync code (the worker, a management command, a shell); async
code calls it through ``asgiref.sync.sync_to_async``. Producers outside Django use
``POST /api/tasks/{id}/progress`` (which uses this class).

Coalescing (seed 001: incremental updates, at most one push per interval): per task, at most one
``task.progress`` per ``settings.PROGRESS_MIN_INTERVAL_MS`` (100) and only when progress moved by
at least ``settings.PROGRESS_MIN_DELTA_PCT`` percent (1) or the stage changed. An update held back by
the interval is sent when the interval ends, unless a newer one replaced it. Status changes
(``start``, ``pause``, ``resume``, ``finish``) are never coalesced: they drop what is held back
and go out at once, carrying the newest figures. ETA comes from an exponentially smoothed rate.
"""

import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from . import lifecycle
from .models import BatchTask

# Weight of the newest rate sample in the smoothed rate (documents per second).
ETA_SMOOTHING = 0.3


class ProgressReporter:
    """Reports one task's progress; thread-safe (a flush timer thread sends held-back updates)."""

    def __init__(
        self,
        task_id: int,
        *,
        min_interval_ms: float | None = None,
        min_delta: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_id = task_id
        self.interval_s = (settings.PROGRESS_MIN_INTERVAL_MS if min_interval_ms is None else min_interval_ms) / 1000
        self.min_delta = settings.PROGRESS_MIN_DELTA_PCT if min_delta is None else min_delta
        self.clock = clock
        self.total = 0
        self.sent = 0  # task.progress events published by this reporter
        self._lock = threading.Lock()
        self._last_sent_at: float | None = None
        self._last_sent: tuple[float, str] | None = None  # (percent, stage)
        self._held: dict | None = None
        self._timer: threading.Timer | None = None
        self._rate: float | None = None
        self._sample: tuple[float, int] | None = None  # (time, current) of the last rate sample

    # -- status changes: never coalesced ---------------------------------------------------

    def start(self, total: int, stage: str = "") -> BatchTask:
        """pending -> running with ``total`` documents (``task.started``)."""
        self.total = total
        return self._transition(BatchTask.Status.RUNNING, total=total, stage=stage)

    def pause(self) -> BatchTask:
        return self._transition(BatchTask.Status.PAUSED)

    def resume(self) -> BatchTask:
        return self._transition(BatchTask.Status.RUNNING)

    def finish(self, status: str, *, message: str | None = None, error: str = "", **figures) -> BatchTask:
        """Move to a final ``status`` (completed, failed, cancelled) with the final figures."""
        return self._transition(status, message=message, error=error, **figures)

    def _transition(self, status: str, **kwargs) -> BatchTask:
        with self._lock:
            held = self._drop_held()
            figures = {k: v for k, v in (held or {}).items() if k in ("current", "succeeded", "failed", "stage")}
            return lifecycle.transition(self.task_id, status, **{**figures, **kwargs})

    # -- progress: coalesced ---------------------------------------------------------------

    def progress(
        self,
        current: int,
        *,
        total: int | None = None,
        succeeded: int | None = None,
        failed: int | None = None,
        stage: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Report ``current`` documents done; return True if a ``task.progress`` was sent now."""
        with self._lock:
            now = self.clock()
            if total is not None:
                self.total = total
            update = {"current": current, "total": self.total, "eta_ms": self._eta_ms(now, current)}
            for name, value in (("succeeded", succeeded), ("failed", failed), ("stage", stage), ("message", message)):
                if value is not None:
                    update[name] = value
            percent = 100 * current / self.total if self.total else 0.0
            if self._last_sent is not None:
                last_percent, last_stage = self._last_sent
                if abs(percent - last_percent) < self.min_delta and update.get("stage", last_stage) == last_stage:
                    if self._held is not None:
                        self._held = update  # the held update goes out with the newest counts
                    return False
            if self._last_sent_at is None or now - self._last_sent_at >= self.interval_s:
                self._drop_held()
                self._send(update, now)
                return True
            self._held = update
            if self._timer is None:
                self._timer = threading.Timer(self.interval_s - (now - self._last_sent_at), self._send_held)
                self._timer.daemon = True
                self._timer.start()
            return False

    def close(self) -> None:
        """Drop any held-back update and its timer (the task ended elsewhere, e.g. cancelled)."""
        with self._lock:
            self._drop_held()

    def has_held(self) -> bool:
        """True while an update is held back by the interval (seed 001's broadcast queue)."""
        return self._held is not None

    def _send_held(self) -> None:
        # Runs in the timer's own short-lived thread: close the database connection it opened.
        try:
            with self._lock:
                self._timer = None
                if self._held is not None:
                    update, self._held = self._held, None
                    self._send(update, self.clock())
        finally:
            connections.close_all()

    def _send(self, update: dict, now: float) -> None:
        if lifecycle.record_progress(self.task_id, **update) is not None:
            self.sent += 1
        self._last_sent_at = now
        percent = 100 * update["current"] / update["total"] if update["total"] else 0.0
        self._last_sent = (percent, update.get("stage", self._last_sent[1] if self._last_sent else ""))

    def _drop_held(self) -> dict | None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, None
        return held

    def _eta_ms(self, now: float, current: int) -> int | None:
        if self._sample is not None and now > self._sample[0] and current >= self._sample[1]:
            instant = (current - self._sample[1]) / (now - self._sample[0])
            self._rate = instant if self._rate is None else ETA_SMOOTHING * instant + (1 - ETA_SMOOTHING) * self._rate
        self._sample = (now, current)
        if not self._rate or not self.total:
            return None
        return int(max(self.total - current, 0) / self._rate * 1000)
