"""
The frame gate of ``RealtimeConsumer``: what every incoming frame passes before dispatch.

In order: the connection's frame rate (``RATE_PER_MIN``/``RATE_BURST``), text only, the size
limit (``MAX_FRAME_BYTES``, RFC 6455's 1009 close), the envelope (the endpoint's codec:
realtime.codec), then the frame type's own rate (``TYPE_RATE_LIMITS``). A frame that fails is a
``Refusal``: the error frame to send, the ``ref`` it answers, and the close code when the
connection must end (1009 for a frame over the limit, 4429 for sustained rate abuse).
"""

from dataclasses import dataclass
from typing import Any

from realtime import metrics
from realtime.codec import Codec
from realtime.conf import realtime_settings
from realtime.envelope import Frame
from realtime.errors import BadFrame, CloseCode, MessageTooBig, ProtocolError, RateLimited

from .limits import FrameRateLimiter, Verdict


@dataclass
class Refusal(Exception):
    """A frame the gate refused: send ``error`` answering ``ref``; then close with ``close_code`` if set.

    ``stat`` is the frame's label in the process stats (None: already counted as its type), and
    ``limit`` the setting that refused it, for the connection log.
    """

    error: ProtocolError
    ref: Any = None
    close_code: int | None = None
    stat: str | None = "invalid"
    limit: str | None = None


def _ref_of(codec: Codec, text: str | None):
    """The ``ref`` of a refused frame, when it is readable (``codec.decode``) within the size limit; else None."""
    if text is None or len(text) > realtime_settings.MAX_FRAME_BYTES:
        return None
    try:
        return codec.decode(text).ref
    except BadFrame as exc:
        return exc.ref
    except ProtocolError:
        return None


def _rate_limited(verdict: Verdict, ref, stat: str | None) -> Refusal:
    metrics.RATE_LIMIT_HITS.labels(verdict.scope).inc()
    error = RateLimited(details={"retry_after_ms": verdict.retry_after_ms, "limit": verdict.scope})
    if verdict.abusive:
        return Refusal(error, ref, CloseCode.RATE_LIMITED, stat, limit="RATE_ABUSE_FRAMES")
    return Refusal(error, ref, None, stat)


class FrameGate:
    """Size, rate and envelope checks for one connection's incoming frames, read with ``codec``."""

    __slots__ = ("codec", "limiter")

    def __init__(self, codec: Codec):
        self.codec = codec
        self.limiter = FrameRateLimiter()

    def admit(self, text: str | None) -> Frame:
        """Return the parsed frame of a ``websocket.receive``'s ``text``; raise ``Refusal``."""
        verdict = self.limiter.check_frame()
        if verdict.retry_after_ms:
            # Echo the command's ref, so a client can fail the command it is waiting on.
            raise _rate_limited(verdict, _ref_of(self.codec, text), "refused")
        if text is None:
            raise Refusal(BadFrame("Binary frames are not accepted; send JSON text"))
        limit = realtime_settings.MAX_FRAME_BYTES
        # A str has at most 4 UTF-8 bytes per character: encode only when it could be over.
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit):
            raise Refusal(
                MessageTooBig(f"Frames are limited to {limit} bytes"),
                close_code=CloseCode.MESSAGE_TOO_BIG,
                limit="MAX_FRAME_BYTES",
            )
        try:
            return self.codec.decode(text)
        except ProtocolError as exc:
            raise Refusal(exc, getattr(exc, "ref", None)) from None

    def admit_type(self, frame: Frame) -> None:
        """Apply ``frame.type``'s own rate limit (``TYPE_RATE_LIMITS``); raise ``Refusal``."""
        verdict = self.limiter.check_type(frame.type)
        if verdict.retry_after_ms:
            raise _rate_limited(verdict, frame.ref, None)
