"""Batch-task WebSocket handlers: parse, authorise, call a selector, return the ack data."""

from realtime.context import HandlerContext
from realtime.paging import PageIn
from realtime.registry import handler
from realtime.validation import validate

from . import services
from .events import task_group, task_snapshot
from .models import BatchTask
from .selectors import access_task, access_tasks, task_page
from .serializers import TaskIdIn, TaskIdsIn


@handler("task.list")
def list_tasks(ctx: HandlerContext, data: dict) -> dict:
    """
    A page of the user's own tasks, newest first (``limit``, ``cursor``: realtime/paging.py); subscribes to nothing.
    """
    args = validate(PageIn, data)
    return task_page(ctx.user, limit=args["limit"], cursor=args.get("cursor")).reply("tasks")


@handler("task.subscribe")
def subscribe(ctx: HandlerContext, data: dict) -> dict:
    """
    Follow the tasks' events; the ack carries each task's snapshot as of the subscription, so a
    late subscriber starts from the truth. All or nothing: one unknown id (or another user's,
    which answers alike) refuses the whole command.
    """
    task_ids = list(dict.fromkeys(validate(TaskIdsIn, data)["task_ids"]))
    tasks = access_tasks(ctx.user, task_ids)
    for task in tasks:
        ctx.subscribe(task_group(task.pk))
    return {"tasks": [task_snapshot(task) for task in tasks]}


@handler("task.unsubscribe")
def unsubscribe(ctx: HandlerContext, data: dict) -> dict:
    """Stop following the tasks (ids not followed are ignored)."""
    task_ids = validate(TaskIdsIn, data)["task_ids"]
    for task_id in task_ids:
        ctx.unsubscribe(task_group(task_id))
    return {"task_ids": task_ids}


def _request(ctx: HandlerContext, data: dict, status: str) -> dict:
    task = access_task(ctx.user, validate(TaskIdIn, data)["task_id"])
    return {"task": task_snapshot(services.request(task.pk, status))}


@handler("task.pause")
def pause(ctx: HandlerContext, data: dict) -> dict:
    """Pause a running task (the worker stops after the current document)."""
    return _request(ctx, data, BatchTask.Status.PAUSED)


@handler("task.resume")
def resume(ctx: HandlerContext, data: dict) -> dict:
    """Resume a paused task."""
    return _request(ctx, data, BatchTask.Status.RUNNING)


@handler("task.cancel")
def cancel(ctx: HandlerContext, data: dict) -> dict:
    """Cancel a pending, running or paused task (the worker stops after the current document)."""
    return _request(ctx, data, BatchTask.Status.CANCELLED)
