"""
Accept-side backpressure under Daphne: at ``REALTIME["MAX_HANDSHAKES_IN_PROGRESS"]`` the process
stops accepting connections, and the kernel's listen backlog holds the next ones until a
handshake finishes.

Refusing them instead (1013, ``realtime.consumer.connect_rate``) cost both sides: the server
paid most of a connect for each refusal (TCP accept, the HTTP request, the WebSocket handshake,
an error frame, the close), and the client waited at least 5 s before its next try (client.js).
``make bench-storm`` with 5,000 clients counted 8,600-10,900 such refusals, and the restarted
server was busy 65-71 % of the storm while clients sat out their waits: the last one was done
after 80-84 s, 30 s with this (README, "Reconnect storm").

A slower server or a longer queue has its limit: a client that gives up waiting (the bench's
30 s) leaves a connection the process still accepts and works on. The backlog is large because
a smaller one (1,024) did no better in the storm (its overflow waits on SYN retransmits).

Daphne's ``-b``/``-p`` endpoint listens with Twisted's default backlog of 50; past it the kernel
drops a new connection's SYN and the client resends it after 1 s, 3 s, 7 s. So each listening
socket's backlog is raised to ``LISTEN_BACKLOG`` (``listen()`` again on the bound socket; Linux
caps it at ``net.core.somaxconn``, 4096 by default since 5.4).

Pausing is ``stopReading`` on Twisted's listening ports: they stay bound, nothing is refused,
and a connection waits in the kernel without costing the process anything. A connection is
counted once its HTTP request has been read, a loop turn or two after its accept, so the ones
accepted meanwhile are let through past the bound (``realtime.consumer.connect_rate.Handshake``).
To keep those few, a port accepts at most ``ACCEPTS_PER_READ`` connections per wake-up: Twisted
starts at 100 and adds 20 after each full one, without bound, which a storm keeps doing. In a
profiled 5,000-client storm without this cap, hundreds of handshakes outlived Daphne's 5 s
handshake timeout (1006, ``make bench-storm --profile``).
"""

import logging

from realtime import metrics

logger = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096
ACCEPTS_PER_READ = 20

_ports: list = []  # every listening port of this process (Daphne's endpoints), bound or closed
_paused = False


def track_listening_ports() -> None:
    """
    Patch ``daphne.server.Server.listen_success`` to keep each listening port, raise its backlog
    and bound its accepts per wake-up.
    """
    from daphne.server import Server  # only once Daphne is loaded: importing it installs Twisted's reactor

    listen_success = Server.listen_success

    def listen_success_tracked(self, port):
        listen_success(self, port)
        _ports.append(port)
        bound_accepts(port)
        try:
            port.socket.listen(LISTEN_BACKLOG)
        except (AttributeError, OSError):  # not a socket port: it keeps its backlog
            logger.warning("could not raise the listen backlog of %r", port, exc_info=True)

    Server.listen_success = listen_success_tracked


def bound_accepts(port) -> None:
    """Make ``port`` accept at most ``ACCEPTS_PER_READ`` connections each time it is readable."""
    read = port.doRead

    def doRead():  # noqa: N802 (Twisted's name; the reactor calls the instance's attribute)
        port.numberAccepts = min(port.numberAccepts, ACCEPTS_PER_READ)
        return read()

    port.doRead = doRead


def _open(port) -> bool:
    return bool(port.connected) and not port.disconnecting


def pause_accepting() -> None:
    """Stop accepting on every listening port still bound (none: nothing is paused)."""
    global _paused
    if not _paused:
        ports = [port for port in _ports if _open(port)]
        for port in ports:
            port.stopReading()
        if ports:
            _paused = True
            metrics.ACCEPT_PAUSES.inc()


def paused() -> bool:
    """Whether ``pause_accepting`` has paused the ports (``resume_accepting`` not called since)."""
    return _paused


def resume_accepting() -> None:
    """Accept again on every listening port still bound (a draining process has closed them)."""
    global _paused
    if _paused:
        _paused = False
        for port in _ports:
            if _open(port):
                port.startReading()
