"""
The user actions on batch tasks: create one (and queue its document job), pause, resume or
cancel it. The socket handlers, REST and the admin all call these; the status changes themselves
are progress/lifecycle.py's, which the worker uses too (docs/protocol.md, "Batch tasks").
"""

from django.db import transaction

from . import lifecycle
from .jobs import generate_documents
from .models import BatchTask


def create_task(*, owner, name: str, total: int = 0, template=None, data_file=None) -> BatchTask:
    """
    Create a ``pending`` task owned by ``owner``. With a ``template`` and a ``data_file`` (uploaded
    files), the document job is queued for the worker after commit (progress/jobs.py).
    """
    with transaction.atomic():
        task = BatchTask.objects.create(owner=owner, name=name, total=total)
        if template is not None and data_file is not None:
            task.template.save(template.name, template, save=False)
            task.data_file.save(data_file.name, data_file, save=False)
            task.save(update_fields=["template", "data_file"])
            transaction.on_commit(lambda: generate_documents.enqueue(task.pk))
    return task


def request(task_id: int, status: str) -> BatchTask:
    """
    A user's pause (``paused``), resume (``running``) or cancel (``cancelled``): the status
    changes and is announced now; the worker obeys between documents. Raise ``Conflict`` when
    the task cannot move there (pausing a finished task, resuming a running one).
    """
    return lifecycle.transition(
        task_id, status, message={"paused": "Paused", "running": "", "cancelled": "Cancelled"}[status]
    )
