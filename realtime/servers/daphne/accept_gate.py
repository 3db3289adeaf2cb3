"""
Accept-side backpressure under Daphne: at ``REALTIME["MAX_HANDSHAKES_IN_PROGRESS"]`` the process
stops accepting connections, and the kernel's listen backlog holds the next ones until a
handshake finishes.

Refusing them instead (1013, ``realtime.consumer.connect_rate``) cost both sides: the server
paid most of a connect for each refusal (TCP accept, the HTTP request, the WebSocket handshake,
an error frame, the close), and the client waited at least 5 s before its next try (client.js).
``make bench-storm`` with 2,000 clients counted 3,380 such refusals, and the restarted server
was busy less than half of the storm while clients sat out their waits.

Daphne's ``-b``/``-p`` endpoint listens with Twisted's default backlog of 50; past it the kernel
drops a new connection's SYN and the client resends it after 1 s, 3 s, 7 s. So each listening
socket's backlog is raised to ``LISTEN_BACKLOG`` (``listen()`` again on the bound socket; Linux
caps it at ``net.core.somaxconn``, 4096 by default since 5.4).

Pausing is ``stopReading`` on Twisted's listening ports: they stay bound, nothing is refused,
and a connection waits in the kernel without costing the process anything. Twisted accepts up to
a hundred connections per wake-up, so the ones accepted with the one that reached the bound are
let through (``realtime.consumer.connect_rate.Handshake``).
"""

import logging

logger = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096

_ports: list = []  # every listening port of this process (Daphne's endpoints), bound or closed
_paused = False


def track_listening_ports() -> None:
    """Patch ``daphne.server.Server.listen_success`` to keep each listening port and raise its backlog."""
    from daphne.server import Server  # only once Daphne is loaded: importing it installs Twisted's reactor

    listen_success = Server.listen_success

    def listen_success_tracked(self, port):
        listen_success(self, port)
        _ports.append(port)
        try:
            port.socket.listen(LISTEN_BACKLOG)
        except (AttributeError, OSError):  # not a socket port: it keeps its backlog
            logger.warning("could not raise the listen backlog of %r", port, exc_info=True)

    Server.listen_success = listen_success_tracked


def _open(port) -> bool:
    return bool(port.connected) and not port.disconnecting


def pause_accepting() -> bool:
    """Stop accepting on every listening port; whether there was one to pause (else the caller refuses)."""
    global _paused
    if not _paused:
        ports = [port for port in _ports if _open(port)]
        if not ports:
            return False
        for port in ports:
            port.stopReading()
        _paused = True
    return True


def resume_accepting() -> None:
    """Accept again on every listening port still bound (a draining process has closed them)."""
    global _paused
    if _paused:
        _paused = False
        for port in _ports:
            if _open(port):
                port.startReading()
