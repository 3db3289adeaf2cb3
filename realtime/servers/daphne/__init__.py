"""
Daphne, the production server: its direct write path and the patches to its internals.

``install()`` (called by ``RealtimeConfig.ready()``) applies, when Daphne is the server loaded
(``daphne.server`` imported: the ``daphne`` command, or the ``daphne`` app that ``runserver``
needs) and every project below is at a version in ``TESTED``:

- ``close_codes``: RFC 6455's 1001, 1009 and 1013 reach clients (Autobahn refuses them);
- ``cycles``: a closed connection's objects are freed at once, not at the next full collection;
- ``send_buffer``: a client that stops reading is closed with 4413 past ``MAX_SEND_BUFFER_BYTES``;
- ``receive_queue``: Daphne stops reading a client past ``MAX_RECEIVE_QUEUE_FRAMES`` queued frames;
- ``writes``: eager socket writes, and ``writer_for``'s direct fan-out path (prepared frames);
- ``debug_format``: Autobahn's per-connection debug line is formatted only if it is logged;
- ``application_queue``: each application instance's queue without ``asyncio.Queue``'s idle 3 KB;
- ``protocol_state``: a protocol without its own copy of the factory's options, nor the handshake
  once open, nor an empty deque;
- ``accept_gate``: listening sockets with a backlog of 4,096, and ``pause_accepting`` /
  ``resume_accepting`` for the handshake bound.

Each patch module names the upstream code it works around, so it can go when upstream changes.
"""

import logging
import sys

from realtime.versions import Tested, describe_untested, untested

from . import accept_gate
from .application_queue import lean_application_queues
from .close_codes import allow_rfc6455_close_codes
from .cycles import free_closed_connections
from .debug_format import format_lazily
from .protocol_state import trim_protocol_state
from .receive_queue import bound_receive_queues
from .send_buffer import bound_send_buffers
from .writes import DirectWriter, direct_writer, write_eagerly

__all__ = [
    "TESTED",
    "accepting_paused",
    "install",
    "installed",
    "pause_accepting",
    "resume_accepting",
    "writer_for",
]

logger = logging.getLogger(__name__)

# The versions these patches were read from and measured with (make test, make bench-compare).
TESTED = (
    Tested("daphne", ">=4.2.3,<4.3", "4.2.3"),
    Tested("twisted", ">=26.10,<27", "26.10.0"),
    Tested("autobahn", ">=25.0,<27", "26.10.2"),
)

_installed = False


def install() -> bool:
    """
    Apply the patches once, when Daphne is loaded and at a tested version; return whether they
    are in place. An untested version is logged and left alone (``realtime.E002`` reports it).
    """
    global _installed
    if _installed or "daphne.server" not in sys.modules:
        return _installed
    outside = untested(TESTED)
    if outside:
        logger.error("Daphne patches not applied: %s", describe_untested(outside))
        return False
    allow_rfc6455_close_codes()
    free_closed_connections()
    bound_send_buffers()
    bound_receive_queues()
    write_eagerly()
    format_lazily()
    lean_application_queues()
    trim_protocol_state()
    accept_gate.track_listening_ports()
    _installed = True
    return True


def installed() -> bool:
    """Whether ``install()`` applied the patches in this process."""
    return _installed


def pause_accepting() -> None:
    """Stop accepting connections (the kernel's backlog holds them), once the patches are in."""
    if _installed:
        accept_gate.pause_accepting()


def resume_accepting() -> None:
    """Accept connections again on the ports ``pause_accepting`` paused that are still bound."""
    accept_gate.resume_accepting()


def accepting_paused() -> bool:
    """Whether ``pause_accepting`` has the listening ports paused."""
    return accept_gate.paused()


def writer_for(send) -> DirectWriter | None:
    """The direct writer for Daphne's own ASGI ``send`` once the patches are in; else None (ASGI)."""
    return direct_writer(send) if _installed else None
