"""
Short garbage-collector pauses in a process that holds many open connections (issues 7 and 8).

CPython's cyclic collector walks every object it tracks in a full (generation 2) collection and
runs one each time the long-lived objects have grown by a quarter. Each open connection keeps
about 300 tracked objects alive (the server's and the consumer's tasks, coroutines, futures,
contexts), so a process with 1,000 connections tracks about 380,000 and every full collection
stopped its event loop for 70-280 ms on the benchmark machine: the p99 of fan-out (README
"Performance").

``GcFreezer.check`` runs every second on the event loop. After each automatic full collection
it moves the survivors into the permanent generation (``gc.freeze()``), which collections skip,
then collects what is not frozen (cheap), so that the collector counts only that as long-lived
and its next full collection walks only what survived since. Frozen objects stay alive while
they are referenced and are freed by reference counting as usual; only garbage *cycles* among
them wait, for a real full collection (unfreeze, collect, freeze again) every
``REALTIME["GC_FULL_COLLECT_S"]``: the pause CPython takes several times a minute under load,
taken once in that interval.

``REALTIME["GC_FREEZE"] = False`` leaves the collector as CPython configures it.
"""

import gc
import logging
import time

logger = logging.getLogger(__name__)


class GcFreezer:
    """
    Freeze what survives each full collection; collect frozen garbage cycles now and then.

    ``full_collect_s``: longest time between real full collections, in seconds
    (``REALTIME["GC_FULL_COLLECT_S"]``). ``clock``: monotonic seconds (tests pass their own).
    """

    def __init__(self, full_collect_s: float, clock=time.monotonic):
        self.full_collect_s = full_collect_s
        self.clock = clock
        self.full_collection()  # what the process holds before its first connection: modules, settings

    def check(self) -> None:
        """Run the real full collection when due; else, if CPython ran one since the last check,
        freeze its survivors."""
        if self.clock() - self._last_full >= self.full_collect_s:
            self.full_collection()
        elif gc.get_stats()[2]["collections"] != self._seen_full_collections:
            gc.freeze()
            gc.collect()  # only what is not frozen: the collector's count of long-lived objects restarts from it
            self._seen_full_collections = gc.get_stats()[2]["collections"]

    def full_collection(self) -> None:
        """Collect every object, frozen ones included, and freeze the survivors (one long pause)."""
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        gc.collect()
        self._last_full = self.clock()
        self._seen_full_collections = gc.get_stats()[2]["collections"]
        logger.info(
            "full garbage collection: %d collected, %d objects frozen, %.0f ms",
            collected,
            gc.get_freeze_count(),
            1000 * (time.perf_counter() - started),
        )

    def close(self) -> None:
        """Hand the frozen objects back to the collector (the process stops serving)."""
        gc.unfreeze()
