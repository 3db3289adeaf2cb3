"""Batch-task read paths and access checks."""

from realtime.errors import Forbidden, NotFound

from .models import BatchTask
from .services import fail_if_abandoned


def access_task(user, task_id: int, *, lock: bool = False) -> BatchTask:
    """
    Return the task if ``user`` owns it or is staff.

    Raise ``NotFound`` when no task has that id, ``Forbidden`` when it is someone else's (issue 5:
    "own tasks; staff any; others forbidden"); neither reveals any of its data. ``lock`` takes the
    row lock (inside a transaction).
    """
    queryset = BatchTask.objects.select_for_update() if lock else BatchTask.objects
    task = queryset.filter(pk=task_id).first()
    if task is None:
        raise NotFound("Task not found")
    if not (task.owner_id == user.pk or user.is_staff):
        raise Forbidden("This task belongs to another user")
    return task if lock else fail_if_abandoned(task)


def tasks_for(user) -> list[BatchTask]:
    """``user``'s tasks, newest first, with abandoned ones failed (``fail_if_abandoned``)."""
    return [fail_if_abandoned(task) for task in BatchTask.objects.filter(owner=user)]
