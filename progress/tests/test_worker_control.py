"""Pause, resume and cancel take effect between documents; a dead worker's task does not stay running."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from progress import jobs, lifecycle, services
from progress.models import BatchTask
from progress.selectors import access_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_rows(monkeypatch):
    """Each document takes ~20 ms, so the test can act mid-batch."""
    original = jobs.load_template

    def load_slow(content, name):
        renderer = original(content, name)
        render = renderer.render

        def slow(index, row):
            time.sleep(0.02)
            return render(index, row)

        renderer.render = slow
        return renderer

    monkeypatch.setattr(jobs, "load_template", load_slow)
    monkeypatch.setattr(jobs, "PAUSE_POLL_S", 0.02)


def make_task(alice, uploads, rows: int) -> BatchTask:
    data, template = uploads("n\n" + "".join(f"{i}\n" for i in range(rows)), b"{{ n }}", "n.txt")
    return services.create_task(owner=alice, name="many", data_file=data, template=template)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_pause_holds_the_worker_between_documents_and_resume_finishes(alice, media_root, uploads, slow_rows):
    task = make_task(alice, uploads, 40)
    worker = threading.Thread(target=jobs.generate_documents.func, args=(task.pk,))  # closes its connection
    worker.start()
    wait_for(lambda: BatchTask.objects.get(pk=task.pk).current >= 5)
    services.request(task.pk, BatchTask.Status.PAUSED)
    time.sleep(0.1)  # the document in hand finishes
    held = BatchTask.objects.get(pk=task.pk).documents.count()
    time.sleep(0.3)
    assert BatchTask.objects.get(pk=task.pk).documents.count() == held < 40  # nothing while paused
    services.request(task.pk, BatchTask.Status.RUNNING)
    worker.join(10)
    task.refresh_from_db()
    assert (task.status, task.succeeded) == ("completed", 40)


def test_cancel_stops_the_worker_and_nothing_follows(alice, media_root, uploads, slow_rows):
    task = make_task(alice, uploads, 40)
    worker = threading.Thread(target=jobs.generate_documents.func, args=(task.pk,))  # closes its connection
    worker.start()
    wait_for(lambda: BatchTask.objects.get(pk=task.pk).current >= 3)
    services.request(task.pk, BatchTask.Status.CANCELLED)
    worker.join(10)
    task.refresh_from_db()
    assert task.status == "cancelled" and task.documents.count() < 40 and not task.result


def test_a_task_whose_worker_died_is_failed_by_the_sweep_and_reads_never_write(alice, settings):
    settings.TASK_LEASE_S = 30
    orphan = services.create_task(owner=alice, name="orphan")
    lifecycle.transition(orphan.pk, BatchTask.Status.RUNNING)
    BatchTask.objects.filter(pk=orphan.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=31))
    alive = services.create_task(owner=alice, name="alive")
    lifecycle.transition(alive.pk, BatchTask.Status.RUNNING)
    lifecycle.worker_checkpoint(alive.pk)

    assert access_task(alice, orphan.pk).status == "running"  # a read changes nothing
    assert lifecycle.fail_abandoned_tasks() == 1
    failed = access_task(alice, orphan.pk)
    assert failed.status == "failed" and "stopped responding" in failed.error
    assert access_task(alice, alive.pk).status == "running"
    assert lifecycle.fail_abandoned_tasks() == 0  # once
