"""What survives a full garbage collection is frozen; frozen garbage cycles go at the due full collection."""

import gc
import weakref

import pytest

from realtime.delivery.gc_pauses import GcFreezer

pytestmark = pytest.mark.any_database


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Node:
    """An object the cyclic collector tracks, pointing at itself: freed only by a collection."""

    def __init__(self):
        self.me = self


def tracked(obj) -> bool:
    """Whether collections still walk ``obj`` (``gc.get_objects`` leaves out the frozen ones)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def freezer(clock):
    freezer = GcFreezer(full_collect_s=600, clock=clock)
    yield freezer
    freezer.close()
    assert gc.get_freeze_count() == 0


def test_survivors_of_a_full_collection_are_frozen_and_later_ones_walk_only_new_objects(freezer):
    long_lived = Node()
    freezer.check()
    assert tracked(long_lived), "no full collection ran since the last check: nothing is frozen"
    gc.collect()  # a full collection, as CPython runs one when long-lived objects grew
    freezer.check()
    assert not tracked(long_lived)
    young = Node()
    assert tracked(young)


def test_a_frozen_cycle_is_kept_until_the_due_full_collection_frees_it(freezer, clock):
    cycle = Node()
    gone = weakref.ref(cycle)
    gc.collect()
    freezer.check()
    del cycle
    gc.collect()
    freezer.check()
    assert gone() is not None, "frozen: an ordinary full collection skips it"
    clock.now += 599
    freezer.check()
    assert gone() is not None
    clock.now += 1
    freezer.check()
    assert gone() is None


def test_an_object_released_while_frozen_is_freed_at_once_by_reference_counting(freezer):
    released = Node()
    released.me = None  # no cycle
    gone = weakref.ref(released)
    gc.collect()
    freezer.check()
    assert not tracked(released)
    del released
    assert gone() is None


async def test_a_server_process_freezes_only_when_configured_and_thaws_when_it_closes(channel_layer, settings):
    from realtime.delivery.process import close_process, get_process

    await get_process()
    assert gc.get_freeze_count() == 0  # tests (conftest.py) leave the collector alone
    await close_process()
    settings.REALTIME = {**settings.REALTIME, "GC_FREEZE": True}
    await get_process()
    assert gc.get_freeze_count() > 0
    await close_process()
    assert gc.get_freeze_count() == 0
