"""
Stop Autobahn from pretty-printing every connection's settings for a debug line nobody logs.

``WebSocketProtocol._connectionMade`` (autobahn/websocket/protocol.py, Autobahn 25 and 26) runs
``self.log.debug("\\n{attrs}", attrs=pformat(configAttrLog))`` for each new connection: the
``pformat`` of some 40 settings runs before txaio decides that debug is off. That was 3.7 % of
the server's time while 3,000 clients connected (``bench/idle.py --profile``). ``format_lazily``
gives the module a ``pformat`` that formats only when the line is written. Drop it when Autobahn
formats its debug lines lazily.
"""

from pprint import pformat


class _Deferred:
    """``pformat(value)`` computed when the log line is rendered, not before."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(pformat(self.value), spec)

    __str__ = __repr__ = lambda self: pformat(self.value)  # noqa: E731 (one body for both)


def format_lazily() -> None:
    """
    Replace ``autobahn.websocket.protocol.pformat`` (used there for debug-line arguments) with one
    that defers the formatting; ``Timings.__str__``, its one use that must return a ``str``, keeps
    the real one.
    """
    from autobahn.websocket import protocol

    protocol.pformat = _Deferred
    protocol.Timings.__str__ = lambda self: pformat(self._timings)
