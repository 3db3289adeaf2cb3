"""
The batch worker inside the server process, for development without Redis.

With the in-memory channel layer (no ``REDIS_URL``), events published by a separate
``manage.py db_worker`` process could never reach the server's connections, so by default
(``settings.TASKS_WORKER_IN_SERVER``, true when ``REDIS_URL`` is unset) the server runs
django-tasks' own database worker loop in a daemon thread. With Redis, run ``manage.py db_worker``
processes beside the servers instead (deploy/, README).
"""

import logging
import os
import threading

from django_tasks_db.management.commands.db_worker import Worker

logger = logging.getLogger(__name__)
_started = threading.Event()


def start_in_server_worker() -> None:
    """Start one worker thread in this process (idempotent)."""
    if _started.is_set():
        return
    _started.set()
    worker = Worker(
        queue_names=["default"],
        interval=0.5,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"in-server-{os.getpid()}",
        excluded_queue_names=[],
    )
    threading.Thread(target=worker.run, name="batch-worker", daemon=True).start()
    logger.info("batch worker running inside the server (no REDIS_URL: events stay in this process)")
