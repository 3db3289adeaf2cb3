"""
The explicit registry of client frame types -> handler functions.

Apps register handlers at import time from their ``AppConfig.ready()``::

    @handler("chat.send")
    def send(ctx: HandlerContext, data: dict) -> dict: ...

A handler is a plain (sync) function: the consumer runs it in a worker thread, so it may use
the ORM. It returns the ``ack`` data, or raises a ``ProtocolError``.

A write that many connections send at once (``chat.send``) can register a batch handler
instead, which takes the calls that arrived together and commits them in one transaction
(realtime.delivery.group_commit)::

    @batch_handler("chat.send")
    def send(calls: list[tuple[HandlerContext, dict]]) -> list[dict | Exception]: ...
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "RESERVED_TYPES",
    "batch_handler",
    "get_handler",
    "groups_for_session",
    "handler",
    "is_batched",
    "registered_types",
    "session_groups",
]

# Frame types the consumer answers itself; apps cannot take them over.
RESERVED_TYPES = frozenset({"auth", "auth.refresh", "ping", "ack", "error", "welcome", "pong"})

_handlers: dict[str, Callable] = {}
_batched: set[str] = set()
_session_group_providers: list[Callable] = []


def handler(frame_type: str) -> Callable[[Callable], Callable]:
    """
    Register the decorated function for client frames of ``frame_type``.

    Raise ``ImproperlyConfigured`` at startup if the type is reserved or already registered.
    """
    return _registering(frame_type, batched=False)


def _registering(frame_type: str, *, batched: bool) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        if frame_type in RESERVED_TYPES:
            raise ImproperlyConfigured(f"Frame type {frame_type!r} is reserved by the realtime core.")
        if frame_type in _handlers:
            raise ImproperlyConfigured(
                f"Frame type {frame_type!r} is registered twice "
                f"({_handlers[frame_type].__module__} and {fn.__module__})."
            )
        _handlers[frame_type] = fn
        if batched:
            _batched.add(frame_type)
        return fn

    return register


def batch_handler(frame_type: str) -> Callable[[Callable], Callable]:
    """
    Register ``fn(calls) -> outcomes`` for client frames of ``frame_type``, run on the frames of
    every connection that arrived while the previous batch ran (realtime.delivery.group_commit).

    ``calls`` is a list of ``(HandlerContext, data)``; ``fn`` returns one outcome per call, in
    order: the ``ack`` data, or the exception (a ``ProtocolError``, a database error) to answer
    that call with. An exception raised by ``fn`` answers every call of the batch. Raise
    ``ImproperlyConfigured`` like ``handler``.
    """
    return _registering(frame_type, batched=True)


def is_batched(frame_type: str) -> bool:
    """Whether ``frame_type``'s handler is a batch handler."""
    return frame_type in _batched


def get_handler(frame_type: str) -> Callable | None:
    """Return the handler registered for ``frame_type``, or None."""
    return _handlers.get(frame_type)


def registered_types() -> list[str]:
    """Return every registered client frame type, sorted (docs/protocol.md lists them all)."""
    return sorted(_handlers)


def session_groups(fn: Callable) -> Callable:
    """
    Register ``fn(user) -> Iterable[str]``: groups every new authenticated connection of
    ``user`` subscribes to (chat: the user's conversations, so unread badges update live).

    Providers run in a worker thread at session start and may use the ORM.
    """
    _session_group_providers.append(fn)
    return fn


def groups_for_session(user) -> list[str]:
    """Return the groups of every registered provider for ``user`` (sync; call from a thread)."""
    return [group for provider in _session_group_providers for group in provider(user)]
