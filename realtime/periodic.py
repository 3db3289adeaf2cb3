"""
Periodic jobs that the domain apps register and every server process runs (realtime.delivery.process).

An app registers a synchronous function in its ``AppConfig.ready()``; each server process calls
it every ``interval_s()`` seconds in the database thread (realtime.db ``database_call``), from
the process's start (its first WebSocket connection) until it closes. With several server
processes the job runs in each: it must be safe to run concurrently (take row locks, check again
under them). A job's failure is logged and the job runs again at its next interval.
"""

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PeriodicJob", "register", "registered"]


@dataclass(frozen=True)
class PeriodicJob:
    """``fn()`` run every ``interval_s()`` seconds (read when a process starts, so settings apply)."""

    name: str
    fn: Callable[[], object]
    interval_s: Callable[[], float]


_jobs: dict[str, PeriodicJob] = {}


def register(name: str, fn: Callable[[], object], *, interval_s: Callable[[], float]) -> None:
    """Register ``fn`` under ``name`` (registering a name again replaces the job: ``ready()`` may run twice)."""
    _jobs[name] = PeriodicJob(name, fn, interval_s)


def registered() -> tuple[PeriodicJob, ...]:
    """The registered jobs, in registration order."""
    return tuple(_jobs.values())
