"""
Loaded by a test server started with this directory on PYTHONPATH: on SIGUSR2, collect with
``gc.DEBUG_SAVEALL`` and write the type names of the objects found in reference cycles, one per
line, to the file named by ``GC_PROBE_FILE`` (then a line ``done``).
"""

import gc
import os
import signal


def _write_cyclic_garbage(signum, frame):
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        names = [f"{type(obj).__module__}.{type(obj).__qualname__}" for obj in gc.garbage]
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
    with open(os.environ["GC_PROBE_FILE"], "w") as out:
        out.write("".join(f"{name}\n" for name in names) + "done\n")


signal.signal(signal.SIGUSR2, _write_cyclic_garbage)
