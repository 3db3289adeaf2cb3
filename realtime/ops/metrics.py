"""
``GET /metrics``: the Prometheus text exposition of the counters in ``realtime.metrics``.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every process of the host writes its values there and the
answer, whichever process gives it, is their sum (prometheus-client's multiprocess mode).
"""

import os
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess


def _forget_dead_processes(directory: str) -> None:
    # Live gauges of a process that died without cleanup (SIGKILL) would count forever;
    # their files carry the pid, and every process of one multiprocess dir shares this host.
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:
            pass


def render() -> tuple[bytes, str]:
    """Return ``(body, content_type)`` of the Prometheus text exposition of every process."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    _forget_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST
