"""
Graceful shutdown under Daphne: on SIGTERM, close every connection with 1001, then stop.

Stock Daphne drops every socket on SIGTERM without a close frame (docs/platform-facts.md), so clients
see 1006 and cannot tell a restart from a network fault. Once the first connection starts the
process's ``ServerProcess``, SIGTERM instead runs ``drain``: the process stops listening (new
connections go to another process, or are refused by the kernel until this one's successor
binds the port), a handshake already under way is refused with 1001, open connections get a
``going_away`` error frame and close 1001 (clients reconnect elsewhere),
the process waits up to ``REALTIME["DRAIN_TIMEOUT_S"]`` for their disconnects, removes them from
the registry together (a user whose last connection it was stays online ``PRESENCE_DRAIN_GRACE_S``
more, realtime.delivery.presence.connections_drained), leaves the channel layer's groups
together, and stops Twisted's reactor, which lets Daphne exit as usual. Other servers (uvicorn)
keep their own SIGTERM handling, and so does ``manage.py runserver`` with its autoreloader
(``install_drain_on_sigterm``).

Once drained, the process ends as soon as Daphne returns, without CPython's finalization: with
2,000 connections drained, tearing down the heap took 2.1-2.5 s of CPU after the last disconnect
(``make bench-storm``), while a process manager waits for the exit to start the successor that
the clients are reconnecting to. Logs are flushed first.
"""

import asyncio
import atexit
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from realtime.conf import realtime_settings
from realtime.envelope import error_frame
from realtime.errors import CloseCode, GoingAway
from realtime.metrics import mark_this_process_dead
from realtime.servers import resume_accepting

if TYPE_CHECKING:
    from .process import ServerProcess

logger = logging.getLogger(__name__)


def install_drain_on_sigterm(process: "ServerProcess") -> bool:
    """
    Make SIGTERM drain ``process`` when it runs under Daphne's (Twisted's) running reactor in the
    main thread; return whether it did.

    Signal handlers can only be set from the main thread (``set_wakeup_fd``): ``manage.py
    runserver`` with its autoreloader serves from another thread, and its parent process restarts
    the server on a code change, so there SIGTERM keeps its default (the process ends, clients see
    1006 and reconnect). Under uvicorn the reactor is absent and uvicorn handles SIGTERM itself.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not getattr(reactor, "running", False):
        return False
    if threading.current_thread() is not threading.main_thread():
        logger.info(
            "SIGTERM drain not installed: the server's event loop is not in the main thread (runserver's autoreloader)"
        )
        return False
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: asyncio.ensure_future(drain(process, reactor))
    )
    return True


def stop_listening(reactor) -> None:
    """Close every listening socket of ``reactor`` (TCP and Unix ports: Daphne's ``-b/-p``, ``-u``, ``--fd``)."""
    from twisted.internet.tcp import Port

    # A port paused at the handshake bound is not among the reactor's readers. Nothing is
    # accepted between this and the loop below: the reactor does not run in between.
    resume_accepting()
    for reader in reactor.getReaders():
        if isinstance(reader, Port):
            reader.stopListening()


async def drain(process: "ServerProcess", reactor) -> None:
    """Close ``process``'s connections with 1001, wait for them, leave the layer, stop ``reactor``."""
    if process.draining:
        return
    process.start_draining()
    logger.info("SIGTERM: draining %d connections", len(process.connections))
    # Accepting while draining sent clients that reconnect at once after 1001 (client.js) back
    # to this process in a loop: make bench-storm counted 1,236 connections to drain for 1,000
    # clients, and the drain timed out.
    stop_listening(reactor)
    text = error_frame(GoingAway())
    for conn in list(process.connections.values()):
        await conn.close_with(text, CloseCode.GOING_AWAY)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + realtime_settings.DRAIN_TIMEOUT_S
    while process.connections and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if process.connections:
        logger.warning(
            "drain: %d connections still open after %s s", len(process.connections), realtime_settings.DRAIN_TIMEOUT_S
        )
    await process.unregister_drained()
    await process.close()
    mark_this_process_dead()
    atexit.register(_exit_at_once)
    reactor.stop()


def _exit_at_once() -> None:
    # Registered last, so it runs first among atexit handlers; os._exit skips the rest of them
    # (logging's flush, done here) and the finalization (module teardown, freeing every object).
    # Database sockets close with the process, as on any exit: nothing is left uncommitted, the
    # drain waited for every connection's last command.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
