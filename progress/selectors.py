"""Batch-task read paths and access checks."""

from django.db.models import Q

from realtime.errors import NotFound
from realtime.paging import Page, decode_cursor, epoch_us, from_epoch_us, paged

from .events import task_snapshot
from .models import BatchTask


def access_task(user, task_id: int, *, lock: bool = False) -> BatchTask:
    """
    Return the task if ``user`` owns it or is staff.

    Raise ``NotFound("Task not found")`` when no task has that id or it is someone else's: the two
    answers are identical, so ids reveal nothing (docs/protocol.md, "not_found or forbidden").
    ``lock`` takes the row lock (inside a transaction).
    """
    queryset = BatchTask.objects.select_for_update() if lock else BatchTask.objects
    return _accessible(user, queryset.filter(pk=task_id).first())


def access_tasks(user, task_ids: list[int]) -> list[BatchTask]:
    """
    ``access_task`` for each of ``task_ids`` in one query; return the tasks in the order of the
    ids. Raise for the first id refused, as ``access_task`` would (``NotFound``).
    """
    found = BatchTask.objects.in_bulk(task_ids)
    return [_accessible(user, found.get(task_id)) for task_id in task_ids]


def _accessible(user, task: BatchTask | None) -> BatchTask:
    # The one access rule of access_task and access_tasks: ``task`` None is an unknown id, and
    # someone else's task answers exactly like it.
    if task is None or not (task.owner_id == user.pk or user.is_staff):
        raise NotFound("Task not found")
    return task


def task_page(user, *, limit: int, cursor: str | None) -> Page:
    """
    A page of ``user``'s task snapshots, newest first (``created_at`` descending, then id
    descending), after ``cursor`` (realtime/paging.py; ``Invalid`` when malformed).
    """
    after = decode_cursor("tasks", cursor, 2)
    tasks = BatchTask.objects.filter(owner=user)
    if after is not None:
        created_at, task_id = from_epoch_us(after[0]), after[1]
        tasks = tasks.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=task_id))
    rows = list(tasks.order_by("-created_at", "-pk")[: limit + 1])
    return paged(
        "tasks",
        rows,
        limit,
        key=lambda task: (epoch_us(task.created_at), task.pk),
        render=lambda page: [task_snapshot(task) for task in page],
    )
