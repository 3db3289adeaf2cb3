"""The coalescing reporter and the task services it writes through."""

import pytest

from progress import lifecycle, services
from progress.models import BatchTask
from progress.reporter import ProgressReporter
from realtime.errors import Conflict
from tests.e2e.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def task(alice):
    return services.create_task(owner=alice, name="letters")


def test_at_most_one_progress_per_interval_and_only_on_a_big_enough_move(task):
    clock = FakeClock()
    reporter = ProgressReporter(task.pk, min_interval_ms=100, min_delta=1, clock=clock)
    reporter.start(total=1000)
    sent = [reporter.progress(current) for current in range(1, 1001)]  # 1,000 updates in no time
    assert sent.count(True) == 1  # the first; the rest wait for the interval
    clock.now = 0.1
    assert reporter.progress(1000) is True
    clock.now = 0.2
    assert reporter.progress(1000) is False  # moved by less than 1 %: nothing to say
    assert reporter.progress(1004) is False
    clock.now = 0.3
    assert reporter.progress(1000, stage="zipping") is True  # a new stage always counts
    reporter._drop_held()


def test_a_held_back_update_is_sent_when_the_interval_ends(task):
    # An interval long enough that a loaded machine makes the three calls within it.
    reporter = ProgressReporter(task.pk, min_interval_ms=1000, min_delta=1)
    reporter.start(total=100)
    assert reporter.progress(10) is True
    assert reporter.progress(20) is False
    assert reporter.progress(30) is False  # replaces the held 20
    wait_until(lambda: reporter.sent == 2, timeout=10, what="the held update to go out")
    task.refresh_from_db()
    assert (task.current, task.progress) == (30, 30.0)


def test_status_changes_are_never_coalesced_and_carry_the_newest_figures(task):
    reporter = ProgressReporter(task.pk, min_interval_ms=10_000, min_delta=1)
    reporter.start(total=10)
    reporter.progress(1, succeeded=1)
    reporter.progress(5, succeeded=4, failed=1)  # held back by the long interval
    paused = reporter.pause()
    assert (paused.status, paused.current, paused.succeeded, paused.failed) == ("paused", 5, 4, 1)
    assert reporter.resume().status == "running"
    done = reporter.finish(BatchTask.Status.COMPLETED, current=10, succeeded=9, failed=1, message="9 of 10")
    assert (done.status, done.progress, done.eta_ms, done.message) == ("completed", 100.0, 0, "9 of 10")
    assert done.finished_at is not None and done.started_at is not None
    # A report after the final state is dropped, never published after task.completed.
    assert lifecycle.record_progress(task.pk, current=3) is None
    task.refresh_from_db()
    assert task.current == 10


def test_impossible_transitions_are_conflicts_with_the_current_snapshot(task):
    with pytest.raises(Conflict) as excinfo:
        lifecycle.transition(task.pk, BatchTask.Status.PAUSED)  # a pending task cannot pause
    assert excinfo.value.details["task"]["status"] == "pending"
    lifecycle.transition(task.pk, BatchTask.Status.CANCELLED)
    with pytest.raises(Conflict):
        lifecycle.transition(task.pk, BatchTask.Status.RUNNING)


def test_eta_follows_the_smoothed_rate(task):
    clock = FakeClock()
    reporter = ProgressReporter(task.pk, min_interval_ms=0, min_delta=0, clock=clock)
    reporter.start(total=100)
    reporter.progress(0)
    for second in range(1, 6):
        clock.now = second
        reporter.progress(second * 10)  # 10 documents per second
    task.refresh_from_db()
    assert task.eta_ms == 5000  # 50 left at 10 per second
