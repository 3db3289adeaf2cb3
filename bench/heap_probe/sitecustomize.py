"""
Loaded by a server started with this folder on ``PYTHONPATH`` and ``HEAP_PROBE_OUT`` set (bench/heap.py):
tracemalloc from the first import, and a snapshot written to ``<HEAP_PROBE_OUT>.<n>`` on SIGUSR2
(whole when it appears).
"""

import gc
import os
import signal
import tracemalloc

if os.environ.get("HEAP_PROBE_OUT"):
    tracemalloc.start(int(os.environ.get("HEAP_PROBE_DEPTH", "10")))
    _taken = [0]

    def _snapshot(*_):
        gc.collect()
        _taken[0] += 1
        target = f"{os.environ['HEAP_PROBE_OUT']}.{_taken[0]}"
        # Written aside and renamed: the reader sees the whole snapshot or none of it.
        tracemalloc.take_snapshot().dump(f"{target}.part")
        os.replace(f"{target}.part", target)

    signal.signal(signal.SIGUSR2, _snapshot)
