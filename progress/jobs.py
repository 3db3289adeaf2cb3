"""
The batch job, run by the django-tasks database worker (``manage.py db_worker``).

``generate_documents(task_id)`` renders one document per data row into a ZIP, reporting progress
through ``ProgressReporter``. Between documents it renews its lease and obeys the task's status:
``paused`` waits (lease still renewed), ``cancelled`` stops. A worker that dies stops renewing the
lease; the periodic sweep fails the task (``lifecycle.fail_abandoned_tasks``).
"""

import logging
import tempfile
import time
import zipfile

from django.core.files import File
from django.db import connections
from django_tasks import task

from realtime.errors import Conflict

from . import lifecycle
from .generation import BatchInputError, Renderer, RowError, load_template, read_rows
from .models import BatchTask
from .reporter import ProgressReporter

logger = logging.getLogger(__name__)
Status = BatchTask.Status
# How often a paused job looks at its task again (seconds).
PAUSE_POLL_S = 0.5


@task()
def generate_documents(task_id: int) -> None:
    """The queued job: run ``run_batch`` and close this worker thread's database connections."""
    try:
        run_batch(task_id)
    finally:
        connections.close_all()


def _wait_while_paused(task_id: int) -> str:
    status = lifecycle.worker_checkpoint(task_id)
    while status == Status.PAUSED:
        time.sleep(PAUSE_POLL_S)
        status = lifecycle.worker_checkpoint(task_id)
    return status


def run_batch(task_id: int) -> None:
    """Generate every document of the pending task ``task_id``; see the module docstring."""
    batch = BatchTask.objects.get(pk=task_id)
    if batch.status != Status.PENDING:
        logger.info("task %s is %s; nothing to run", task_id, batch.status)
        return
    try:
        with batch.data_file.open("rb") as data, batch.template.open("rb") as template:
            rows = read_rows(data.read(), batch.data_file.name)
            renderer = load_template(template.read(), batch.template.name)
    except BatchInputError as exc:
        lifecycle.transition(task_id, Status.FAILED, error=str(exc), message="Bad input")
        return
    reporter = ProgressReporter(task_id)
    try:
        _generate(task_id, batch, rows, renderer, reporter)
    except Exception as exc:
        logger.exception("task %s failed in the worker", task_id)
        reporter.close()
        try:
            lifecycle.transition(task_id, Status.FAILED, error=f"Worker error: {exc}")
        except Conflict:
            pass  # it was cancelled or failed meanwhile
        raise
    finally:
        reporter.close()


def _generate(task_id: int, batch: BatchTask, rows: list[dict], renderer: Renderer, reporter: ProgressReporter) -> None:
    reporter.start(total=len(rows), stage="rendering")
    succeeded = failed = 0
    with tempfile.TemporaryFile() as archive:
        # A DOCX is a deflated ZIP already: storing it costs nothing, deflating it again gains nothing.
        compression = zipfile.ZIP_STORED if renderer.kind == "docx" else zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(archive, "w", compression) as zip_file:
            for index, row in enumerate(rows):
                if _wait_while_paused(task_id) == Status.CANCELLED:
                    return
                try:
                    name, content = renderer.render(index, row)
                except RowError as exc:
                    failed += 1
                    lifecycle.record_document(task_id, index, error=str(exc))
                else:
                    zip_file.writestr(name, content)
                    succeeded += 1
                    lifecycle.record_document(task_id, index, output_name=name)
                reporter.progress(index + 1, succeeded=succeeded, failed=failed)
        reporter.progress(len(rows), stage="saving")
        archive.seek(0)
        batch.result.save(f"task-{task_id}.zip", File(archive), save=False)
        BatchTask.objects.filter(pk=task_id).update(result=batch.result.name)
    while True:  # a pause requested after the last document is obeyed before completing
        if _wait_while_paused(task_id) == Status.CANCELLED:
            return
        try:
            reporter.finish(
                Status.COMPLETED,
                current=len(rows),
                succeeded=succeeded,
                failed=failed,
                stage="done",
                message=f"{succeeded} of {len(rows)} documents generated",
            )
            return
        except Conflict:
            continue
