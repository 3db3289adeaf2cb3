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


def start_on_first_request(app):
    """
    ``app`` (an ASGI application), starting the worker thread when it serves its first request,
    HTTP or WebSocket. A server process that never serves (Daphne's runserver stays up after
    "Couldn't listen" when the port is taken) then takes no task from the queue: one it ran would
    announce its progress only inside that process.
    """

    async def application(scope, receive, send):
        if not _started.is_set():
            start_in_server_worker()
        return await app(scope, receive, send)

    return application


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
