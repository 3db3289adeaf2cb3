"""
Stable error codes, close codes and the ``ProtocolError`` family.

A handler raises a ``ProtocolError`` subclass; the consumer renders it as one ``error`` frame
(docs/protocol.md) and keeps the connection open. Codes are part of the protocol: never rename.
"""

from enum import IntEnum, StrEnum

__all__ = [
    "BadFrame",
    "BadJson",
    "CloseCode",
    "Conflict",
    "ErrorCode",
    "Forbidden",
    "GoingAway",
    "Invalid",
    "LimitExceeded",
    "MessageTooBig",
    "NotFound",
    "ProtocolError",
    "RateLimited",
    "SessionReplaced",
    "Unauthorized",
    "Unavailable",
    "UnknownType",
]


class ErrorCode(StrEnum):
    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    LIMIT_EXCEEDED = "limit_exceeded"
    GOING_AWAY = "going_away"
    SESSION_REPLACED = "session_replaced"
    UNAVAILABLE = "unavailable"
    MESSAGE_TOO_BIG = "message_too_big"
    SERVER_ERROR = "server_error"


class CloseCode(IntEnum):
    """WebSocket close codes the server sends (RFC 6455 section 7.4; 4000-4999 are ours)."""

    GOING_AWAY = 1001  # server shutting down: reconnect (to another process)
    MESSAGE_TOO_BIG = 1009  # RFC 6455: frame over REALTIME["MAX_FRAME_BYTES"]: fix the client, stop
    TRY_AGAIN_LATER = 1013  # RFC 6455 registry: a connection limit was hit: reconnect with backoff
    UNAUTHORIZED = 4401  # bad, expired or forged token, inactive user, ended session: refresh, reconnect
    DISCONNECTED = 4403  # an administrator closed the user's connections: stop
    AUTH_TIMEOUT = 4408  # no `auth` frame within REALTIME["AUTH_TIMEOUT_S"]: reconnect and authenticate
    SEND_BUFFER_FULL = (
        4413  # the client stopped reading; its unread frames passed MAX_SEND_BUFFER_BYTES: reconnect, resume
    )
    SESSION_REPLACED = 4409  # single-session mode: the user connected elsewhere: stop (seed 004)
    RATE_LIMITED = 4429  # sustained frames over the rate limit: reconnect after a long backoff


class ProtocolError(Exception):
    """An error the client caused or may retry; rendered as ``{"type": "error", ...}``."""

    code: ErrorCode = ErrorCode.SERVER_ERROR
    default_message = "Server error"

    def __init__(self, message: str | None = None, *, details: dict | None = None):
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict:
        """The envelope's ``error`` object: ``{"code", "message", "details"?}`` (details only when set)."""
        error = {"code": self.code.value, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return error


class BadJson(ProtocolError):
    """The text frame is not valid JSON (RFC 8259, no NaN, no lone surrogates)."""

    code = ErrorCode.BAD_JSON
    default_message = "Frame is not valid JSON"


class BadFrame(ProtocolError):
    """The frame is JSON but not an envelope, or is binary; ``ref`` is the frame's own when it was readable."""

    code = ErrorCode.BAD_FRAME
    default_message = "Frame is not a valid envelope"

    def __init__(self, message: str | None = None, *, ref: str | int | None = None):
        super().__init__(message)
        self.ref = ref


class UnknownType(ProtocolError):
    """No handler is registered for the frame's type."""

    code = ErrorCode.UNKNOWN_TYPE

    def __init__(self, frame_type: str):
        super().__init__(f"Unknown message type: {frame_type}")


class Invalid(ProtocolError):
    """The frame's ``data`` failed validation; ``details`` maps field -> list of messages."""

    code = ErrorCode.INVALID
    default_message = "Invalid data"


class Unauthorized(ProtocolError):
    """The connection is not authenticated, or its credentials were refused."""

    code = ErrorCode.UNAUTHORIZED
    default_message = "Authentication required"


class Forbidden(ProtocolError):
    """The user is known to the object but lacks the right for this action."""

    code = ErrorCode.FORBIDDEN
    default_message = "Not allowed"


class NotFound(ProtocolError):
    """The object does not exist or is not visible to the user (the two look alike)."""

    code = ErrorCode.NOT_FOUND
    default_message = "Not found"


class Conflict(ProtocolError):
    """The write was based on a stale version; ``details`` carries the current state."""

    code = ErrorCode.CONFLICT
    default_message = "Conflict with a newer version"


class MessageTooBig(ProtocolError):
    """The frame is over ``REALTIME["MAX_FRAME_BYTES"]``; the connection is closed with 1009."""

    code = ErrorCode.MESSAGE_TOO_BIG
    default_message = "Frame too large"


class RateLimited(ProtocolError):
    """The frame is over the connection's rate limit; ``details.retry_after_ms`` says when to retry."""

    code = ErrorCode.RATE_LIMITED
    default_message = "Too many frames; slow down"


class LimitExceeded(ProtocolError):
    """A connection or subscription cap was hit; ``details.limit`` names the setting."""

    code = ErrorCode.LIMIT_EXCEEDED
    default_message = "Limit exceeded"


class GoingAway(ProtocolError):
    """The server process is shutting down; the connection is closed with 1001."""

    code = ErrorCode.GOING_AWAY
    default_message = "Server shutting down; reconnect"


class SessionReplaced(ProtocolError):
    """
    Single-session mode (``REALTIME["SINGLE_SESSION"]``, seed 004): a newer connection of the user took over; close
    4409.
    """

    code = ErrorCode.SESSION_REPLACED
    default_message = "You connected from somewhere else; this connection is closed"


class Unavailable(ProtocolError):
    """The database could not be reached or stayed locked: the command did not take effect; retry with backoff."""

    code = ErrorCode.UNAVAILABLE
    default_message = "The database is unavailable for a moment; retry (chat.send: with the same client_msg_id)"
